"""The daemon as users meet it: read while it runs at a human pace, stopped with SIGTERM.

The daemon is a real subprocess on the simulated market at `--speed 60` (one session minute a
second); the reader is this test process opening the file read-only, as `duckdb -readonly` or a
notebook would.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from gexbot.core.session import EASTERN
from gexbot.shell.journal import journal_path

COMMAND = [sys.executable, "-m", "gexbot.live", "--variant", "es", "--source", "sim",
           "--days", "1", "--start", "2026-10-05", "--seed", "3", "--speed", "60"]


def _read(db: Path, sql: str) -> list[tuple[Any, ...]] | None:
    """Rows of `sql`, or None while the daemon is writing (it holds the file then)."""
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute(sql).fetchall()
    except duckdb.Error:
        return None


def _wait_for_minutes(db: Path, count: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _read(db, "SELECT count(*) FROM decisions") if db.exists() else None
        if rows is not None and rows[0][0] >= count:
            return int(rows[0][0])
        time.sleep(0.1)
    raise AssertionError(f"the daemon did not commit {count} minutes in {timeout} s")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    db = tmp_path / "live.db"
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [*COMMAND, "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield process, db
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def test_sigterm_exits_0_within_5_seconds_leaving_a_readable_file(
    daemon: tuple[subprocess.Popen[str], Path],
) -> None:
    process, db = daemon
    _wait_for_minutes(db, 3)
    asked = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert time.monotonic() - asked < 5.0
    assert process.returncode == 0, output
    assert "SIGTERM received: finishing the current minute" in output
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute('SELECT "at" FROM decisions ORDER BY "at"').fetchall()
        (state_at,) = con.execute('SELECT "at" FROM state').fetchone() or (None,)
    minutes = [at for (at,) in rows]
    assert minutes
    assert state_at == minutes[-1]
    assert not journal_path(db, "es").exists()


def test_a_reader_between_minutes_loses_no_later_minute(
    daemon: tuple[subprocess.Popen[str], Path],
) -> None:
    process, db = daemon
    _wait_for_minutes(db, 2)
    with duckdb.connect(str(db), read_only=True) as reader:
        seen = reader.execute("SELECT count(*) FROM decisions").fetchone()
        trades = reader.execute("SELECT count(*) FROM trades").fetchone()
        assert seen is not None
        assert seen[0] >= 2
        assert trades is not None
        time.sleep(2.5)  # holds the file across a few of the daemon's commits
    before = seen[0]
    after = _wait_for_minutes(db, before + 6)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "database held by another process" in output
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute('SELECT "at" FROM decisions ORDER BY "at"').fetchall()
    minutes = [at for (at,) in rows]
    assert len(minutes) >= after
    first = minutes[0].astimezone(EASTERN)
    assert (first.hour, first.minute) == (9, 30)
    assert minutes == [minutes[0] + timedelta(minutes=n) for n in range(len(minutes))]
    assert not journal_path(db, "es").exists()
