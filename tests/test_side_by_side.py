"""ES and NQ side by side on one machine, with default arguments: one shared database file.

Two real daemons (subprocesses) write `quant_trading_data.db` in the same folder at the same
time, each opening the file only to write. Every minute of each variant is decided and written,
and each variant's rows are exactly those it writes when it runs alone in a file of its own:
nothing of one variant reaches the other. At a human pace a reader holds the file for a while
as well, so both daemons journal minutes and write them afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from gexbot.run.runner import DEFAULT_DB
from gexbot.shell.journal import journal_path

SIM = ["--source", "sim", "--start", "2026-10-05", "--seed", "3"]
TABLES = {
    "decisions": 'SELECT * FROM decisions WHERE variant = ? ORDER BY "at"',
    "trades": 'SELECT * FROM trades WHERE variant = ? ORDER BY "timestamp", entry_time',
    "state": 'SELECT "at" FROM state WHERE variant = ?',
}


def _start(variant: str, folder: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "gexbot.live", "--variant", variant, *SIM, *extra],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _finish(process: subprocess.Popen[str]) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert "Traceback" not in output
    return output


def _rows(db: Path, variant: str) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {name: con.execute(sql, [variant]).fetchall() for name, sql in TABLES.items()}


def _alone(folder: Path, *extra: str) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    """Each variant's rows when it runs with `extra` in a folder (and database) of its own."""
    processes = {}
    for variant in ("es", "nq"):
        (folder / variant).mkdir(parents=True)
        processes[variant] = _start(variant, folder / variant, *extra)
    for process in processes.values():
        _finish(process)
    return {variant: _rows(folder / variant / DEFAULT_DB, variant) for variant in processes}


def _every_minute(rows: list[tuple[Any, ...]], count: int) -> None:
    minutes = [row[1] for row in rows]
    assert len(minutes) == count
    assert minutes == [minutes[0] + timedelta(minutes=n) for n in range(count)]


def test_es_and_nq_at_full_speed_share_the_default_database(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    args = ("--days", "1", "--speed", "max")
    es, nq = _start("es", shared, *args), _start("nq", shared, *args)
    output = _finish(es) + _finish(nq)
    assert "in use by another gexbot" not in output
    alone = _alone(tmp_path / "alone", *args)
    for variant in ("es", "nq"):
        ours = _rows(shared / DEFAULT_DB, variant)
        assert ours == alone[variant]
        _every_minute(ours["decisions"], 390)
        assert {row[0] for row in ours["decisions"]} == {variant}
        assert not journal_path(shared / DEFAULT_DB, variant).exists()
    with duckdb.connect(str(shared / DEFAULT_DB), read_only=True) as con:
        symbols = con.execute("SELECT DISTINCT variant, symbol FROM trades ORDER BY 1").fetchall()
    assert symbols == [("es", "$SPX"), ("nq", "$NDX")]


def test_es_and_nq_at_a_human_pace_take_turns_with_a_reader(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    db = shared / DEFAULT_DB
    args = ("--speed", "120", "--minutes", "16")
    es, nq = _start("es", shared, *args), _start("nq", shared, *args)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with duckdb.connect(str(db), read_only=True) as reader:
                done = reader.execute("SELECT count(DISTINCT variant) FROM state").fetchone()
                if done is not None and done[0] == 2:
                    time.sleep(2.0)  # hold the file across a few minutes of both daemons
                    break
        except duckdb.Error:
            pass  # a daemon is writing, or the file is not there yet
        time.sleep(0.05)
    output = _finish(es) + _finish(nq)
    assert "database held by another process" in output
    alone = _alone(tmp_path / "alone", "--speed", "max", "--minutes", "16")
    for variant in ("es", "nq"):
        ours = _rows(db, variant)
        _every_minute(ours["decisions"], 16)
        assert {row[0] for row in ours["decisions"]} == {variant}
        assert ours == alone[variant]
        assert not journal_path(db, variant).exists()
