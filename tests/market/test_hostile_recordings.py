"""Recordings as another tool, a damaged disk or a hostile hand may write them.

Every line the matching rule can use is used whatever JSON type its other parameters have; a
line too long, too deep or with a key twice is left out with a warning and the rest is read; a
header's values are data, never a path or a log line.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import tracemalloc
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_state import process_state_restored

from gexbot.errors import ConfigError
from gexbot.market import recdecode, recfile
from gexbot.market.replay import ReplayTransport, minute_key, query_params
from gexbot.shell.logs import TextFormatter, escape_controls
from tests.market.test_replay import SPX_SPY, et, header, line, write

DAY_FILE = "es/2026-11-20.jsonl.gz"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"symbol": "$SPX", "period": 1, "frequency": 1.0}, {"period": "1", "frequency": "1.0"}),
        ({"symbol": "$SPX", "needPreviousClose": True, "extended": False},
         {"needPreviousClose": "true", "extended": "false"}),
        ({"symbol": "$SPX", "startDate": 1763650800000}, {"startDate": "1763650800000"}),
        ({"symbol": "$SPX", "gone": None}, {}),
        ({"symbol": "$SPX", "nested": {"a": [1, "b"]}}, {"nested": '{"a":[1,"b"]}'}),
        ({"symbol": "$SPX", "list": [1, 2]}, {"list": "[1,2]"}),
    ],
)
def test_parameters_the_rule_does_not_compare_never_make_a_line_unusable(
    tmp_path: Path, params: dict[str, Any], expected: dict[str, str]
) -> None:
    write(tmp_path / DAY_FILE, header(), line(et(10, 31), "pricehistory", params, "answer"))
    served = ReplayTransport([tmp_path]).get("pricehistory", {"symbol": "$SPX"}, et(10, 31))
    assert served.body == "answer"
    assert served.params == {"symbol": "$SPX", **expected}


def test_a_number_where_the_rule_compares_is_its_query_text(tmp_path: Path) -> None:
    write(tmp_path / DAY_FILE, header(), line(et(10, 31), "chains", {"symbol": 500}, "numeric"))
    assert ReplayTransport([tmp_path]).get("chains", {"symbol": "500"}, et(10, 31)).body == (
        "numeric"
    )


@pytest.mark.parametrize("value", [["$SPX"], {"s": "$SPX"}, None])
def test_what_the_rule_compares_must_be_text_or_a_number(
    tmp_path: Path, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / DAY_FILE, header(), line(et(10, 31), "chains", {"symbol": value}, "x"),
          line(et(10, 31), "chains", {"symbol": "$SPX"}, "good"))
    with caplog.at_level(logging.WARNING, logger="gexbot.replay"):
        replay = ReplayTransport([tmp_path])
        assert replay.get("chains", {"symbol": "$SPX"}, et(10, 31)).body == "good"
    assert f"params.symbol is {type(value).__name__}, not text or a number" in caplog.text


def test_query_params_refuses_what_is_no_object() -> None:
    with pytest.raises(ValueError, match="params is not an object"):
        query_params("quotes", ["symbols", "$SPX"])


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(
    "raw",
    [
        # Deep in the body: found when the line is served.
        json.dumps(line(et(10, 31), "quotes", SPX_SPY, "@")).replace('"@"', _deep(100_000)),
        # Deep in the parameters: found when the day is indexed.
        json.dumps(line(et(10, 31), "quotes", SPX_SPY | {"x": "@"}, 1)).replace(
            '"@"', _deep(100_000)),
        # A key twice, in the line or in its parameters.
        json.dumps(line(et(10, 31), "quotes", SPX_SPY, 1))[:-1] + ', "body": 2}',
        json.dumps(line(et(10, 31), "quotes", SPX_SPY, 1)).replace(
            '"symbols"', '"fields": "quote", "symbols"'),
        # More after the object.
        json.dumps(line(et(10, 31), "quotes", SPX_SPY, 1)) + " {}",
    ],
    ids=["deep body", "deep params", "key twice", "parameter twice", "extra data"],
)
def test_a_line_no_reader_should_trust_is_left_out_and_the_rest_read(
    tmp_path: Path, raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / DAY_FILE, header(), line(et(10, 30), "quotes", SPX_SPY, "before"), raw,
          line(et(10, 32), "quotes", SPX_SPY, "after"))
    with caplog.at_level(logging.WARNING, logger="gexbot.replay"):
        replay = ReplayTransport([tmp_path])
        served = [replay.get("quotes", SPX_SPY, et(10, m)).body for m in (30, 31, 32)]
    assert served == ["before", None, "after"]
    assert "left out" in caplog.text
    assert any(said in caplog.text for said in ("nested too deeply", "appears twice",
                                                 "extra data after the object"))


def test_a_body_is_read_as_it_was_live(tmp_path: Path) -> None:
    """A key twice inside an answer was read as its last value live; a replay reads the same."""
    raw = json.dumps(line(et(10, 31), "quotes", SPX_SPY, "@")).replace(
        '"@"', '{"$SPX": 1, "$SPX": 2}')
    write(tmp_path / DAY_FILE, header(), raw)
    assert ReplayTransport([tmp_path]).get("quotes", SPX_SPY, et(10, 31)).body == {"$SPX": 2}


def _bomb(path: Path, line_bytes: int) -> Path:
    """A recording whose second line expands to `line_bytes` from a few hundred KB of gzip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    with path.open("wb") as handle:
        handle.write(deflate.compress(json.dumps(header()).encode() + b"\n"))
        start = json.dumps(line(et(10, 31), "quotes", SPX_SPY, "@")).split('"@"')[0]
        handle.write(deflate.compress(start.encode() + b'"'))
        block = b"x" * (1 << 20)
        for _ in range(line_bytes >> 20):
            handle.write(deflate.compress(block))
        handle.write(deflate.compress(b'", "error": null}\n'))
        good = line(et(10, 32), "quotes", SPX_SPY, "after")
        handle.write(deflate.compress(json.dumps(good).encode() + b"\n"))
        handle.write(deflate.flush())
    return path


def test_a_line_that_expands_beyond_the_bound_costs_no_more_than_the_bound(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _bomb(tmp_path / DAY_FILE, 200 << 20)
    assert path.stat().st_size < 400_000
    tracemalloc.start()
    try:
        with caplog.at_level(logging.WARNING, logger="gexbot.replay"):
            replay = ReplayTransport([tmp_path])
            assert replay.get("quotes", SPX_SPY, et(10, 32)).body == "after"
            assert replay.get("quotes", SPX_SPY, et(10, 31)).body is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < recdecode.MAX_LINE_BYTES + (16 << 20)
    assert "1 line(s) longer than 33,554,432 bytes (the longest 209,715," in caplog.text


def test_a_line_over_the_bound_at_the_end_of_a_cut_file_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recdecode, "MAX_LINE_BYTES", 1 << 20)
    path = _bomb(tmp_path / DAY_FILE, 4 << 20)
    data = path.read_bytes()
    decoded = recdecode.decode(data[: len(data) // 2])
    assert [json.loads(raw)["format"] for raw in decoded.lines] == ["gexbot-recording"]
    assert any("a last line of more than 1,048,576 bytes was left out" in said
               for said in decoded.problems)


def test_every_line_a_replay_leaves_out_is_listed_with_its_minute_when_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What reconcile weighs a difference against: each line lost, and where it stood."""
    monkeypatch.setattr(recdecode, "MAX_LINE_BYTES", 1 << 20)
    path = _bomb(tmp_path / DAY_FILE, 4 << 20)
    deep = json.dumps(line(et(10, 33), "quotes", SPX_SPY, "@"), separators=(",", ":"))
    with gzip.open(path, "at", encoding="utf-8") as handle:
        handle.write(deep.replace('"@"', _deep(100_000)) + "\n")
        handle.write("not json\n")
        handle.write(json.dumps(line(et(10, 34), "quotes", SPX_SPY, "last")) + "\n")
    replay = ReplayTransport([tmp_path])
    assert replay.get("quotes", SPX_SPY, et(10, 34)).body == "last"
    left = replay.left_out(et(10, 30).date())
    assert [(item.why, item.minute) for item in left] == [
        ("1 line(s) too long to read", None),
        ("Expecting value: line 1 column 1 (char 0)", None),
        ("nested too deeply to read", minute_key(et(10, 33))),
    ]
    # Numbered as a reader of the file counts: the line too long to read is line 2.
    assert [item.where for item in left] == [str(path), f"{path}: line 5", f"{path}: line 4"]
    assert ReplayTransport([path]).left_out(
        et(10, 30).date() - timedelta(days=1)) == []


def test_lines_are_numbered_as_a_reader_of_the_file_counts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recdecode, "MAX_LINE_BYTES", 8)
    data = (gzip.compress(b"one\n\nthree\n" + b"x" * 20 + b"\nfive\n")
            + gzip.compress(b"six\nseven\n"))
    decoded = recdecode.decode(data)
    assert list(zip(decoded.numbers, decoded.lines, strict=True)) == [
        (1, b"one"), (3, b"three"), (5, b"five"), (6, b"six"), (7, b"seven")]


def test_a_header_longer_than_any_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "2026-11-20.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"format": "gexbot-recording", "pad": "' + b"x" * (4 << 20)))
    with pytest.raises(ConfigError, match="line 1 is longer than 1,048,576 bytes"):
        ReplayTransport([path])


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"variant": "../../x"}, "recording header's variant '../../x' is not a variant name"),
        ({"variant": "es\n2026-11-20 10:31:00 CRITICAL"}, "variant 'es\\n2026-11-20 10:31"),
        ({"variant": "/etc/passwd"}, "is not a variant name"),
        ({"session": 20261120}, "no valid session date (got 20261120)"),
        ({"session": "2026-11-20\n"}, "no valid session date (got '2026-11-20\\n')"),
        ({"model": "@40"}, "line 1: nested more than 32 levels deep"),
        ({"preset": "@100000"}, "line 1: nested more than 32 levels deep"),
    ],
)
def test_a_headers_values_are_data(tmp_path: Path, change: dict[str, Any], says: str) -> None:
    path = tmp_path / "2026-11-20.jsonl.gz"
    text = json.dumps(header() | change)
    for levels in (40, 100_000):
        text = text.replace(f'"@{levels}"', _deep(levels))
    path.write_bytes(gzip.compress(text.encode() + b"\n"))
    with pytest.raises(ConfigError) as raised:
        ReplayTransport([path])
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert says in message
    assert "\n" not in message


def test_control_characters_never_forge_a_log_line() -> None:
    record = logging.LogRecord("gexbot", logging.WARNING, __file__, 1, "skipped: %s", (
        "HTTP 500\n2026-10-13 09:58:00 ES  LONG fill 6,313.75\r\x1b[1A\x85\u2028",), None)
    text = TextFormatter().format(record)
    assert "\n" not in text
    assert text.endswith(
        "skipped: HTTP 500\\n2026-10-13 09:58:00 ES  LONG fill 6,313.75\\r\\x1b[1A\\x85\\u2028"
    )
    assert escape_controls("tab\tstays") == "tab\tstays"


def test_a_file_name_with_a_newline_is_one_log_line(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from gexbot.shell.logs import setup_logging

    folder = tmp_path / "es\n2026-11-20 10:31:00 LONG"
    write(folder / "2026-11-20.jsonl.gz", header(), "not json")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        setup_logging("INFO", "text", ())
        ReplayTransport([folder]).get("quotes", SPX_SPY, et(10, 31))
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert "es\\n2026-11-20 10:31:00 LONG" in lines[0]
    assert "line 2 left out" in lines[0]


def test_the_recorder_appends_to_a_file_whose_header_it_can_read_only(tmp_path: Path) -> None:
    path = tmp_path / DAY_FILE
    text = json.dumps(header()).replace('"es"', '"es", "model": ' + _deep(100_000), 1)
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(text.encode() + b"\n"))
    before = path.read_bytes()
    assert recfile.is_header_line(text.encode()) is False
    from gexbot.market.recording import RecordingTransport
    from gexbot.market.transport import Exchange

    class Answer:
        def get(self, endpoint: Any, params: dict[str, str], at: Any) -> Exchange:
            return Exchange(at=at, endpoint=endpoint, params=params, status=200, body={})

    recorder = RecordingTransport(Answer(), tmp_path, "es")
    recorder.get("quotes", SPX_SPY, et(10, 31))
    recorder.close()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["2026-11-20.jsonl.gz"]


def _typed(text: str) -> Any:
    """A query parameter as another tool might record it: numbers and booleans as such."""
    if text in ("true", "false"):
        return text == "true"
    return int(text) if text.isdigit() else text


def test_a_day_recorded_with_numbers_and_booleans_replays_as_traded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gexbot import live, reconcile

    db, folder = tmp_path / "live.db", tmp_path / "recordings"
    with process_state_restored():
        assert live.main(["--variant", "es", "--source", "sim", "--start", "2026-10-05",
                          "--days", "1", "--minutes", "45", "--db", str(db),
                          "--record", str(folder)]) == 0
        path = next(folder.rglob("*.jsonl.gz"))
        first, *rest = gzip.decompress(path.read_bytes()).splitlines()
        typed = 0
        lines = [first]
        for raw in rest:
            item = json.loads(raw)
            item["params"] = {key: _typed(value) for key, value in item["params"].items()}
            typed += sum(not isinstance(value, str) for value in item["params"].values())
            lines.append(json.dumps(item).encode())
        assert typed > 100
        path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
        capsys.readouterr()
        assert reconcile.main(["--db", str(db), "--replay", str(folder)]) == 0
    said = capsys.readouterr().out
    assert "identical: 1 session(s) 2026-10-05, 45 decisions" in said
    assert "left out" not in said
