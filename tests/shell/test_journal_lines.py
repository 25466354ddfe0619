"""A damaged journal keeps every good minute: each bad line is set aside, and the daemon starts.

Whatever sits between two good lines (half a line, a list, a string, binary, deep nesting, a
line of wrong types or shapes, a duplicate), both good minutes are written to the database, the
bad line goes unchanged to `<db>.<variant>.pending-rejected`, one warning says so, and the next
start is as clean as the first.
"""

from __future__ import annotations

import json
import logging
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_journal import journal_of, pending
from test_store import minute, query, state

from gexbot.errors import ConfigError
from gexbot.shell.journal import MAX_LINE_BYTES, journal_path, rejected_path
from gexbot.shell.state_codec import state_to_json
from gexbot.shell.store import Store

Edit = Callable[[dict[str, Any]], None]


def _set(key: str, value: object) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        document[key] = value

    return edit


def _decision_value(column: int, value: object) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        document["decisions"][0][column] = value

    return edit


def _trade_of(variant: str) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        row = list(document["decisions"][0][:12])
        row[11] = variant
        document["trades"] = [row]

    return edit


RAW_LINES = {
    "a list": b"[1, 2, 3]",
    "a string": b'"pending"',
    "a number": b"42",
    "null": b"null",
    "binary": bytes(range(128, 256)),
    "NUL bytes": b"\x00" * 64,
    "half an object": b'{"format": "gexbot-pending", "version": 2, "var',
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep nesting in an object": b'{"format": "gexbot-pending", "state": ' + b"[" * 100_000
    + b"]" * 100_000 + b"}",
    "a line too long": b'"' + b"x" * MAX_LINE_BYTES + b'"',
}
EDITS: dict[str, Edit] = {
    "version 1": _set("version", 1),
    "no format": _set("format", None),
    "minute without offset": _set("minute", "2026-11-17T10:33:00"),
    "minute not a time": _set("minute", "soon"),
    "minute a number": _set("minute", 5),
    "decisions not a list": _set("decisions", {"0": 1}),
    "decision row too short": _set("decisions", [["es"]]),
    "a list as the spot": _decision_value(2, [6800.0]),
    "a text as the spot": _decision_value(2, "6800"),
    "a boolean as the spot": _decision_value(2, True),
    "a float as excluded_contracts": _decision_value(18, 3.5),
    "a huge excluded_contracts": _decision_value(18, 10**30),
    "a time with extra keys": _decision_value(1, {"datetime": "2026-11-17T10:33:00-05:00",
                                                   "x": 1}),
    "a time that is not one": _decision_value(1, {"datetime": "never"}),
    "a decision of another minute": _decision_value(1, {"datetime": minute(9).isoformat()}),
    "a trade of nq": _trade_of("nq"),
    "state not text": _set("state", {"balance": 1}),
    "state unreadable": _set("state", '{"format": "gexbot-state", "version": 99}'),
    "state of another minute": _set("state", state_to_json(state(7))),
    "state deeply nested": _set("state", "[" * 100_000 + "]" * 100_000),
}


def _edited(edit: Edit) -> Callable[[Path], bytes]:
    def line(db: Path) -> bytes:
        journal = journal_of(db)
        journal.append([pending(3)])
        document = json.loads(journal.path.read_text())
        journal.path.unlink()
        edit(document)
        return json.dumps(document).encode()

    return line


def _raw(data: bytes) -> Callable[[Path], bytes]:
    return lambda _db: data


CASES = {**{name: _raw(data) for name, data in RAW_LINES.items()},
         **{name: _edited(edit) for name, edit in EDITS.items()}}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_line_between_good_ones_is_set_aside_and_both_minutes_kept(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "quant.db"
    Store(db, "es").open().close()
    bad = CASES[name](db)
    journal = journal_of(db)
    journal.append([pending(1)])
    with journal.path.open("ab") as handle:
        handle.write(bad + b"\n")
    journal.append([pending(2)])

    with caplog.at_level(logging.WARNING), Store(db, "es") as store:
        restored = store.restore()
        assert restored is not None
        assert restored.last_minute == minute(2)
    set_aside = [m for m in caplog.messages if "set aside" in m]
    assert len(set_aside) == 1
    assert set_aside[0].startswith(f"{journal.path}: 1 line(s) set aside in")
    assert set_aside[0].endswith("kept 2 minute(s)")
    assert "\n" not in set_aside[0]
    assert rejected_path(db, "es").read_bytes() == bad + b"\n"
    assert not journal_path(db, "es").exists()
    assert query(db, 'SELECT "at" FROM decisions ORDER BY "at"') == [(minute(1),), (minute(2),)]

    caplog.clear()
    with caplog.at_level(logging.WARNING), Store(db, "es") as store:
        again = store.restore()
        assert again is not None
        assert again.last_minute == minute(2)
    assert caplog.messages == []


def test_a_minute_journaled_twice_is_kept_once(tmp_path: Path) -> None:
    db = tmp_path / "quant.db"
    Store(db, "es").open().close()
    journal = journal_of(db)
    journal.append([pending(1), pending(2), pending(2), pending(1), pending(3)])
    with Store(db, "es") as store:
        restored = store.restore()
        assert restored is not None
        assert restored.last_minute == minute(3)
    assert query(db, 'SELECT "at" FROM decisions ORDER BY "at"') == [
        (minute(1),), (minute(2),), (minute(3),)
    ]
    assert len(rejected_path(db, "es").read_text().splitlines()) == 2


def test_set_aside_lines_are_added_to_earlier_ones(tmp_path: Path) -> None:
    db = tmp_path / "quant.db"
    Store(db, "es").open().close()
    rejected_path(db, "es").write_bytes(b"an earlier line\n")
    journal_path(db, "es").write_bytes(b"[]\n")
    Store(db, "es").open().close()
    assert rejected_path(db, "es").read_bytes() == b"an earlier line\n[]\n"


def test_a_journal_that_is_a_symbolic_link_is_refused_and_its_target_kept(
    tmp_path: Path,
) -> None:
    db = tmp_path / "quant.db"
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    journal_path(db, "es").symlink_to(target)
    with pytest.raises(ConfigError, match=r"quant\.db\.es\.pending is a symbolic link"):
        Store(db, "es").open()
    assert target.read_text() == "keep me\n"
    assert not db.exists()


@pytest.mark.parametrize("ending", [b"\n", b""], ids=["a line", "the last line, unended"])
def test_a_huge_line_costs_a_bounded_amount_of_memory_and_is_set_aside_whole(
    tmp_path: Path, ending: bytes
) -> None:
    db = tmp_path / "quant.db"
    Store(db, "es").open().close()
    journal = journal_of(db)
    journal.append([pending(1)])
    huge = b'{"format": "' + b"x" * (10 * MAX_LINE_BYTES) + b'"}'
    with journal.path.open("ab") as handle:
        handle.write(huge + ending)
    del huge
    tracemalloc.start()
    try:
        with Store(db, "es") as store:
            restored = store.restore()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert restored is not None
    assert restored.last_minute == minute(1)
    assert peak < 3 * MAX_LINE_BYTES  # the whole line would be 10 times that, read thrice
    set_aside = rejected_path(db, "es").read_bytes()
    assert len(set_aside) == 10 * MAX_LINE_BYTES + len(b'{"format": ""}\n')
    assert set_aside.startswith(b'{"format": "xxx')
    assert set_aside.endswith(b'xxx"}\n')
