"""Replay: the matching rule, reading files and folders, damaged files, closed days, training.

Recordings for the rule are written with Python's gzip module, as another tool would write the
format, so the reader is held to the format and not to the recorder's habits.
"""

from __future__ import annotations

import gzip
import json
import logging
import signal
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from gexbot import live, train_hmm
from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.errors import EXIT_CONFIG, ConfigError, TransientError
from gexbot.market.feed import MarketFeed, history_params, quote_params
from gexbot.market.parse import check_exchange, parse_snapshot
from gexbot.market.recording import RecordingTransport
from gexbot.market.replay import ReplayTransport
from gexbot.market.sim import SimMarket
from gexbot.model_io import read_model
from gexbot.settings import Preset, load_variant

DAY = date(2026, 11, 20)


def et(hour: int, minute: int, second: float = 0.0, day: date = DAY) -> datetime:
    whole = int(second)
    return datetime(day.year, day.month, day.day, hour, minute, whole,
                    round((second - whole) * 1_000_000), tzinfo=EASTERN)


def header(variant: str = "es", day: date = DAY, **extra: Any) -> dict[str, Any]:
    return {"format": "gexbot-recording", "version": 1, "variant": variant,
            "session": day.isoformat(), **extra}


def line(at: datetime, endpoint: str, params: dict[str, str], body: Any, status: int | None = 200,
         error: str | None = None) -> dict[str, Any]:
    return {"at": at.isoformat(timespec="milliseconds"), "endpoint": endpoint, "params": params,
            "status": status, "body": body, "error": error}


def write(path: Path, *items: dict[str, Any] | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for item in items:
            handle.write((item if isinstance(item, str) else json.dumps(item)) + "\n")
    return path


@pytest.fixture(scope="module")
def preset() -> Preset:
    return load_variant("es")


@pytest.fixture(scope="module")
def calendar(preset: Preset) -> TradingCalendar:
    return TradingCalendar("XNYS", preset.strategy.flatten_minutes_before_close)


# --- the matching rule ---------------------------------------------------------------------

SPX_SPY = {"symbols": "$SPX,SPY", "fields": "quote,reference"}


@pytest.fixture
def rule(tmp_path: Path) -> ReplayTransport:
    write(
        tmp_path / "es" / "2026-11-20.jsonl.gz",
        header(),
        line(et(10, 31, 0.4), "quotes", SPX_SPY, "A"),
        line(et(10, 31, 2.0), "quotes", {"symbols": "$SPX"}, "B"),
        line(et(10, 31, 0.5), "pricehistory", {"symbol": "$SPX", "endDate": "1"}, "C"),
        line(et(10, 31, 0.6), "chains", {"symbol": "$SPX"}, "D"),
        line(et(10, 31, 0.7), "chains", {"symbol": "$NDX"}, "E"),
        line(et(10, 32, 0.4), "quotes", SPX_SPY, "F"),
        line(et(10, 32, 9.0), "quotes", SPX_SPY, "G", status=429, error="HTTP 429"),
    )
    return ReplayTransport([tmp_path])


@pytest.mark.parametrize(
    ("endpoint", "params", "at", "expected"),
    [
        ("quotes", SPX_SPY, et(10, 31, 5), "A"),
        ("quotes", {"symbols": "SPY,$SPX"}, et(10, 31), "A"),
        ("quotes", {"symbols": "$SPX"}, et(10, 31, 59.999), "B"),
        ("quotes", {"symbols": "$SPX,QQQ"}, et(10, 31), None),
        ("pricehistory", {"symbol": "$SPX", "endDate": "999"}, et(10, 31, 30), "C"),
        ("pricehistory", {"symbol": "$NDX"}, et(10, 31), None),
        ("chains", {"symbol": "$NDX"}, et(10, 31), "E"),
        ("chains", {"symbol": "$SPX"}, et(10, 32), None),
        ("quotes", SPX_SPY, et(10, 32), "G"),
        ("quotes", SPX_SPY, et(10, 30, 59.999), None),
        ("quotes", SPX_SPY, et(10, 31, 1).astimezone(UTC), "A"),
    ],
)
def test_the_matching_rule(rule: ReplayTransport, endpoint: Any, params: dict[str, str],
                           at: datetime, expected: str | None) -> None:
    answer = rule.get(endpoint, params, at)
    assert answer.body == expected
    if expected is None:
        assert answer.status is None


def test_a_recorded_failure_is_served_as_recorded(rule: ReplayTransport) -> None:
    answer = rule.get("quotes", SPX_SPY, et(10, 32, 30))
    assert (answer.status, answer.error) == (429, "HTTP 429")
    with pytest.raises(TransientError) as raised:
        check_exchange(answer)
    assert raised.value.kind == "rate_limited"


def test_no_match_fails_like_a_dropped_connection(rule: ReplayTransport) -> None:
    answer = rule.get("chains", {"symbol": "$SPX"}, et(11, 0))
    assert (answer.status, answer.body) == (None, None)
    assert answer.error is not None
    assert "not recorded" in answer.error
    assert "11:00" in answer.error
    with pytest.raises(TransientError) as raised:
        check_exchange(answer)
    assert raised.value.kind == "connection"


def test_a_day_without_recording_answers_nothing(rule: ReplayTransport) -> None:
    assert rule.get("quotes", SPX_SPY, et(10, 31, day=date(2026, 11, 23))).status is None


# --- files, folders, headers ---------------------------------------------------------------


def test_files_and_folders_are_found_once(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "es" / "2026-11-20.jsonl.gz", header())
    write(tmp_path / "a" / "deep" / "es" / "2026-11-23.jsonl.gz", header(day=date(2026, 11, 23)))
    (tmp_path / "a" / "notes.txt").write_text("not a recording")
    replay = ReplayTransport([tmp_path / "a", first])
    assert replay.sessions() == [date(2026, 11, 20), date(2026, 11, 23)]
    assert replay.files(DAY) == [first]
    assert replay.variant == "es"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"plain text", "not a gzip file"),
        (gzip.compress(b"not json\n"), "line 1 is not JSON"),
        (gzip.compress(b'{"format": "other"}\n'), "not a gexbot recording"),
        (gzip.compress(json.dumps(header() | {"version": 2}).encode() + b"\n"), "upgrade gexbot"),
        (gzip.compress(json.dumps(header() | {"variant": ""}).encode() + b"\n"), "no variant"),
        (gzip.compress(json.dumps(header() | {"session": "today"}).encode() + b"\n"),
         "no valid session"),
    ],
)
def test_a_bad_file_is_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as raised:
        ReplayTransport([path])
    assert str(path) in str(raised.value)


def test_missing_paths_and_empty_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such recording"):
        ReplayTransport([tmp_path / "nowhere"])
    with pytest.raises(ConfigError, match="no recordings"):
        ReplayTransport([tmp_path])


def test_mixed_variants_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "es" / "2026-11-20.jsonl.gz", header())
    write(tmp_path / "nq" / "2026-11-20.jsonl.gz", header("nq"))
    with pytest.raises(ConfigError, match=r"several variants \(es, nq\)"):
        ReplayTransport([tmp_path])


def test_two_files_of_a_day_are_merged_later_winning(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path / "1" / "2026-11-20.jsonl.gz", header(),
          line(et(10, 31), "quotes", SPX_SPY, "first"))
    write(tmp_path / "2" / "2026-11-20.jsonl.gz", header(),
          line(et(10, 31), "quotes", SPX_SPY, "second"))
    with caplog.at_level(logging.WARNING, logger="gexbot.replay"):
        replay = ReplayTransport([tmp_path / "1", tmp_path / "2"])
    assert "2 recordings" in caplog.text
    assert replay.get("quotes", SPX_SPY, et(10, 31)).body == "second"


# --- damaged and foreign lines -------------------------------------------------------------


def test_a_truncated_end_keeps_the_lines_before(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "2026-11-20.jsonl.gz", header(),
                 *(line(et(10, m), "quotes", SPX_SPY, m) for m in range(31, 41)))
    path.write_bytes(path.read_bytes()[:-30])
    with caplog.at_level(logging.WARNING, logger="gexbot.replay"):
        replay = ReplayTransport([path])
        assert replay.get("quotes", SPX_SPY, et(10, 31)).body == 31
    assert "did not finish" in caplog.text or "cut short" in caplog.text
    served = [replay.get("quotes", SPX_SPY, et(10, m)).body for m in range(31, 41)]
    assert served[:5] == [31, 32, 33, 34, 35]
    assert served[-1] is None


def test_bad_lines_are_left_out_with_a_warning(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    good = line(et(10, 31), "quotes", SPX_SPY, "good")
    path = write(
        tmp_path / "2026-11-20.jsonl.gz", header(),
        '{"at": "2026-11-20T10:31:00.000-05:00", "endpoint": "quo',
        line(et(10, 31), "oauth", {}, "token"),
        {key: value for key, value in good.items() if key != "body"},
        line(et(10, 31), "quotes", {"symbols": 5}, "x"),  # type: ignore[dict-item]
        good | {"at": "2026-11-20T10:31:00"},
        good | {"status": "200"},
        good | {"error": 5},
        "[1, 2]",
        good,
    )
    with caplog.at_level(logging.WARNING, logger="gexbot.replay"):
        replay = ReplayTransport([path])
        assert replay.get("quotes", SPX_SPY, et(10, 31)).body == "good"
    assert caplog.text.count("left out:") == 5
    assert "7 unreadable lines left out in all" in caplog.text


def test_a_header_again_after_a_restart_is_no_bad_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "2026-11-20.jsonl.gz", header(),
                 line(et(10, 31), "quotes", SPX_SPY, "before"), header(),
                 line(et(10, 32), "quotes", SPX_SPY, "after"))
    with caplog.at_level(logging.WARNING, logger="gexbot.replay"):
        replay = ReplayTransport([path])
        assert replay.get("quotes", SPX_SPY, et(10, 32)).body == "after"
    assert caplog.text == ""


def test_exchanges_of_another_day_than_the_header_are_pointed_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    next_day = DAY + timedelta(days=1)
    path = write(tmp_path / "2026-11-20.jsonl.gz", header(),
                 line(et(10, 31), "quotes", SPX_SPY, "today"),
                 line(et(10, 31, day=next_day), "quotes", SPX_SPY, "tomorrow"))
    with caplog.at_level(logging.WARNING, logger="gexbot.replay"):
        assert ReplayTransport([path]).get("quotes", SPX_SPY, et(10, 31)).body == "today"
    assert (f"1 exchange(s) made on another day than the header's session {DAY}"
            in caplog.text)


def test_lines_in_another_key_order_are_read(tmp_path: Path) -> None:
    reordered = {"error": None, "body": {"x": 1}, "status": 200,
                 "params": {"symbol": "$SPX"}, "endpoint": "chains",
                 "at": "2026-11-20T15:31:00.000Z"}
    path = write(tmp_path / "2026-11-20.jsonl.gz", header(), reordered)
    assert ReplayTransport([path]).get("chains", {"symbol": "$SPX"}, et(10, 31)).body == {"x": 1}


# --- what the simulated market said, said again ---------------------------------------------


def test_the_sim_market_replays_bit_for_bit(tmp_path: Path, preset: Preset,
                                            calendar: TradingCalendar) -> None:
    sim = SimMarket(preset, calendar, 3)
    recorder = RecordingTransport(sim, tmp_path, "es")
    session = calendar.session(date(2026, 10, 14))
    minutes = [session.open + timedelta(minutes=m) for m in (0, 1, 77, 389)]
    live_feed = MarketFeed(recorder, preset, calendar)
    said = [live_feed.exchanges(session, m, m) for m in minutes]
    refused = recorder.get("chains", {"symbol": "$XYZ"}, minutes[1])
    recorder.close()

    replay = ReplayTransport([tmp_path])
    feed = MarketFeed(replay, preset, calendar)
    for minute, exchanges in zip(minutes, said, strict=True):
        again = feed.exchanges(session, minute, minute)
        for before, after in zip(exchanges, again, strict=True):
            assert (after.status, after.error) == (before.status, before.error)
            assert json.dumps(after.body) == json.dumps(before.body)
        first = parse_snapshot(*exchanges, at=minute, session=session, symbol="$SPX", proxy="SPY",
                               limits=preset.data)
        second = parse_snapshot(*again, at=minute, session=session, symbol="$SPX", proxy="SPY",
                               limits=preset.data)
        assert (first.spot, first.ofi_sample, first.previous_close) == (
            second.spot, second.ofi_sample, second.previous_close)
        assert np.array_equal(first.closes, second.closes)
        assert np.array_equal(first.chain.gamma, second.chain.gamma, equal_nan=True)
    served = replay.get("chains", {"symbol": "$XYZ"}, minutes[1])
    assert (served.status, served.body, served.error) == (refused.status, refused.body,
                                                          refused.error)


# --- through the daemon: closed days --------------------------------------------------------


@pytest.fixture
def quiet_live() -> Iterator[None]:
    """Undo what the daemon's main does to the process (log handlers, signal handlers)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        handler.filters.clear()
    root.setLevel(level)
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def run_live(argv: Sequence[str]) -> int:
    return live.main(["--variant", "es", "--log-level", "WARNING", *argv])


@pytest.mark.usefixtures("quiet_live")
def test_a_closed_day_is_skipped_and_the_session_traded(
    tmp_path: Path, preset: Preset, calendar: TradingCalendar, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recordings"
    assert run_live(["--source", "sim", "--start", "2026-11-25", "--days", "1", "--minutes", "30",
                     "--record", str(folder), "--db", str(tmp_path / "live.db")]) == 0
    holiday = date(2026, 11, 26)
    recorder = RecordingTransport(SimMarket(preset, calendar, 1), folder, "es")
    for minute in range(3):
        recorder.get("quotes", quote_params(preset),
                     datetime(2026, 11, 26, 10, minute, tzinfo=EASTERN))
    recorder.close()
    assert sorted(p.name for p in (folder / "es").iterdir()) == [
        "2026-11-25.jsonl.gz", "2026-11-26.jsonl.gz"]
    capsys.readouterr()

    replayed = tmp_path / "replay.db"
    assert run_live(["--replay", str(folder), "--db", str(replayed)]) == 0
    assert f"{holiday}: the exchange was closed that day; recording skipped" in (
        capsys.readouterr().out)
    with duckdb.connect(str(replayed), read_only=True) as con:
        days = con.execute("SELECT DISTINCT CAST(timezone('America/New_York', \"at\") AS DATE)"
                           " FROM decisions").fetchall()
        replay_rows = con.execute('SELECT * FROM decisions ORDER BY "at" LIMIT 30').fetchall()
    with duckdb.connect(str(tmp_path / "live.db"), read_only=True) as con:
        live_rows = con.execute('SELECT * FROM decisions ORDER BY "at"').fetchall()
    assert days == [(date(2026, 11, 25),)]
    assert replay_rows == live_rows

    holiday_only = folder / "es" / "2026-11-26.jsonl.gz"
    assert run_live(["--replay", str(holiday_only), "--db", str(tmp_path / "h.db")]) == 0
    said = capsys.readouterr().out
    assert f"{holiday}: the exchange was closed that day; recording skipped" in said
    assert "no trading session to run" in said
    with duckdb.connect(str(tmp_path / "h.db"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM decisions").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM trades").fetchone() == (0,)


@pytest.mark.usefixtures("quiet_live")
def test_a_replay_trades_with_the_model_the_recording_names(
    tmp_path: Path, preset: Preset, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(preset.model_file().read_text())
    document["transmat"] = [[0.9, 0.1], [0.2, 0.8]]  # a model other than the shipped one
    other = tmp_path / "hmm_other.json"
    other.write_text(json.dumps(document))
    folder, live_db = tmp_path / "recordings", tmp_path / "live.db"
    assert run_live(["--source", "sim", "--start", "2026-10-06", "--days", "1", "--model",
                     str(other), "--record", str(folder), "--db", str(live_db)]) == 0
    capsys.readouterr()
    replayed = tmp_path / "replay.db"
    assert run_live(["--replay", str(folder), "--db", str(replayed), "--log-level", "INFO"]) == 0
    assert "replaying with the HMM model the recordings name" in capsys.readouterr().out
    with duckdb.connect(str(live_db), read_only=True) as con:
        expected = con.execute('SELECT * FROM decisions ORDER BY "at"').fetchall()
    with duckdb.connect(str(replayed), read_only=True) as con:
        assert con.execute('SELECT * FROM decisions ORDER BY "at"').fetchall() == expected
    shipped = tmp_path / "shipped.db"
    assert run_live(["--replay", str(folder), "--db", str(shipped), "--model",
                     str(preset.model_file()), "--log-level", "INFO"]) == 0
    assert "replaying with the HMM model" not in capsys.readouterr().out


# --- training on recordings -----------------------------------------------------------------


def test_train_hmm_on_recordings_matches_training_on_the_market(
    tmp_path: Path, preset: Preset, calendar: TradingCalendar, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sessions = calendar.sessions_ending(date(2026, 10, 23), 6)
    recorder = RecordingTransport(SimMarket(preset, calendar, 1), tmp_path / "rec", "es")
    for session in sessions:
        last = session.close - timedelta(minutes=1)
        recorder.get("pricehistory", history_params(preset, session, last), last)
    # A recorder that stopped before the last minute of the 26th: that day cannot be used.
    stopped = calendar.session(date(2026, 10, 26))
    early = stopped.close - timedelta(minutes=30)
    recorder.get("pricehistory", history_params(preset, stopped, early), early)
    recorder.close()

    common = ["--variant", "es", "--restarts", "2", "--force"]
    # Seven recorded sessions, the preset trains on ten: refused unless --sessions says so.
    assert train_hmm.main([*common, "--replay", str(tmp_path / "rec"),
                           "--out", str(tmp_path / "replayed.json")]) == EXIT_CONFIG
    assert not (tmp_path / "replayed.json").exists()
    said = capsys.readouterr()
    assert "the recordings hold 7 trading sessions, the preset trains on 10: record more" \
        " sessions, or pass --sessions 7 to train on these" in said.out + said.err
    assert train_hmm.main([*common, "--replay", str(tmp_path / "rec"), "--sessions", "8",
                           "--out", str(tmp_path / "replayed.json")]) == EXIT_CONFIG
    with caplog.at_level(logging.WARNING, logger="gexbot.train_hmm"):
        assert train_hmm.main([*common, "--replay", str(tmp_path / "rec"), "--sessions", "7",
                               "--out", str(tmp_path / "replayed.json")]) == 0
    assert "2026-10-26: pricehistory: not recorded" in caplog.text
    assert train_hmm.main([*common, "--source", "sim", "--end", "2026-10-23", "--sessions", "6",
                           "--out", str(tmp_path / "sim.json")]) == 0
    replayed, simulated = (read_model(tmp_path / name) for name in ("replayed.json", "sim.json"))
    assert replayed.metadata["source"] == "replay"
    assert replayed.metadata["n_observations"] == simulated.metadata["n_observations"]
    assert (replayed.metadata["last_session"], replayed.metadata["sessions"]) == (
        "2026-10-23", 6)  # the 26th was left out, and the metadata says so
    for name in ("means", "variances", "transmat", "start_prob"):
        assert np.array_equal(getattr(replayed, name), getattr(simulated, name)), name

    assert train_hmm.main([*common, "--replay", str(tmp_path / "rec"), "--sessions", "2",
                           "--out", str(tmp_path / "two.json")]) == 0
    two = read_model(tmp_path / "two.json").metadata
    assert (two["first_session"], two["last_session"], two["sessions"]) == (
        "2026-10-23", "2026-10-23", 1)
