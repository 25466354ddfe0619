"""The results databases of backtests and sweeps are opened as the daemon's file is.

Only a local DuckDB file, or a new one, is used: DuckDB's in-memory database (which keeps
nothing), a network name, an empty name or another program's file (SQLite, CSV, empty, random
bytes) is refused in one line before any work is done, and the file stays as it was. DuckDB
never installs or loads an extension by itself, and every connection of the package goes
through the one module that makes sure of it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

import gexbot
from gexbot.errors import ConfigError, StorageError
from gexbot.research.resultsdb import results_database
from gexbot.research.sweepdb import SweepStore

PACKAGE = Path(gexbot.__file__).parent


def _backtest_results(path: Path) -> None:
    with results_database(path):
        pass


def _sweep_results(path: Path) -> None:
    SweepStore(path).close()


OPENERS: dict[str, Callable[[Path], None]] = {
    "backtest results": _backtest_results,
    "sweep results": _sweep_results,
}


def _sqlite(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("CREATE TABLE runs (id INTEGER)")
        con.commit()


FOREIGN: dict[str, tuple[Callable[[Path], object], str]] = {
    "a SQLite database": (_sqlite, "(a SQLite database)"),
    "a CSV file": (lambda p: p.write_text("run,pnl\n1,2\n"), "(it does not start as one)"),
    "an empty file": (lambda p: p.write_bytes(b""), "(an empty file)"),
    "random bytes": (lambda p: p.write_bytes(os.urandom(4096)), "(it does not start as one)"),
}


def test_every_duckdb_connection_of_the_package_goes_through_one_module() -> None:
    callers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "duckdb.connect(" in path.read_text(encoding="utf-8")
    )
    assert callers == ["shell/dbfile.py"]


@pytest.mark.parametrize("opener", list(OPENERS))
@pytest.mark.parametrize("kind", list(FOREIGN))
def test_another_programs_file_is_refused_and_left_as_it_was(
    tmp_path: Path, opener: str, kind: str
) -> None:
    make, says = FOREIGN[kind]
    path = tmp_path / "results.db"
    make(path)
    before = path.read_bytes()
    with pytest.raises(ConfigError) as refused:
        OPENERS[opener](path)
    assert str(refused.value).startswith(f"{path} is not a DuckDB database {says}")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.db"]


@pytest.mark.parametrize("opener", list(OPENERS))
@pytest.mark.parametrize(
    ("name", "says"),
    [
        (":memory:", "in-memory database, which keeps nothing"),
        ("", "names no file"),
        ("md:results", "not a local file"),
        ("s3://bucket/results.db", "not a local file"),
    ],
)
def test_a_name_that_is_no_local_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opener: str, name: str, says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=says):
        OPENERS[opener](Path(name))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("opener", list(OPENERS))
def test_a_file_held_by_another_process_is_one_line_even_under_a_lock_folder(
    tmp_path: Path, opener: str
) -> None:
    folder = tmp_path / "lock"
    folder.mkdir()
    path = folder / "results.db"
    OPENERS[opener](path)
    holder = subprocess.Popen(  # noqa: S603 (our own interpreter)
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]);"
         " print('held', flush=True); sys.stdin.readline()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match="is held open by another process") as refused:
            OPENERS[opener](path)
        assert "\n" not in str(refused.value)
    finally:
        holder.communicate("\n", timeout=60)
    OPENERS[opener](path)


def test_a_full_disk_while_a_run_is_stored_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "results.db"
    with pytest.raises(StorageError) as refused, results_database(path):
        raise duckdb.IOException(f'IO Error: Could not write "{path}": No space left on device')
    assert str(refused.value) == f"{path}: no space left on device; free some space and start again"
