"""The results database is checked before a backtest or a sweep begins its work.

A backtest or a sweep may compute for minutes; a `--db` it cannot write must be refused before
that, in one line naming the file, with nothing built, computed or created.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gexbot import backtest
from gexbot import sweep as sweep_cli
from gexbot.research.resultsdb import check_results_database, results_database

SIM = ["--variant", "es", "--source", "sim", "--seed", "3", "--start", "2026-10-05",
       "--days", "1"]


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A DuckDB file another process holds open for writing (a daemon, a notebook), and its pid."""
    path = tmp_path / "held.db"
    holder = subprocess.Popen(  # noqa: S603 (our own interpreter)
        [sys.executable, "-c",
         "import duckdb, sys; con = duckdb.connect(sys.argv[1]);"
         " con.execute('CREATE TABLE t (x INTEGER)'); print('ready', flush=True);"
         " sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "ready\n"
    yield path, holder.pid
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=60)


def _bad_databases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    text = tmp_path / "notes.txt"
    text.write_text("my notes\n" * 50)
    empty = tmp_path / "empty.db"
    empty.touch()
    lite = tmp_path / "lite.sqlite"
    sqlite3.connect(lite).execute("CREATE TABLE t (x INTEGER)").connection.commit()
    (tmp_path / "folder").mkdir()
    return {
        "text": (text, f"{text} is not a DuckDB database (it does not start as one)"),
        "empty": (empty, f"{empty} is not a DuckDB database (an empty file)"),
        "sqlite": (lite, f"{lite} is not a DuckDB database (a SQLite database)"),
        "folder": (tmp_path / "folder", f"{tmp_path / 'folder'} is a folder"),
        "no folder": (tmp_path / "nowhere" / "r.db", f"no folder {tmp_path / 'nowhere'}"),
        "memory": (Path(":memory:"), "--db :memory: is DuckDB's in-memory database"),
        "service": (Path("md:results"), "--db md:results is not a local file"),
    }


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b""
            for p in sorted(folder.rglob("*"))}


def _refused_at_once(capsys: pytest.CaptureFixture[str], code: int, says: str) -> None:
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert says in lines[0]
    assert out == ""  # no summary: nothing was computed
    assert "building" not in err


@pytest.mark.parametrize("kind", ["text", "empty", "sqlite", "folder", "no folder", "memory",
                                  "service"])
@pytest.mark.parametrize("command", ["backtest", "sweep"])
def test_a_results_database_that_cannot_be_written_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, kind: str
) -> None:
    db, says = _bad_databases(tmp_path)[kind]
    grid = tmp_path / "grid.yaml"
    grid.write_text("strategy.ofi.long_above: [1.5, 2.0]\n")
    before = _files(tmp_path)
    out = ["--out", str(tmp_path / "features"), "--db", str(db)]
    if command == "backtest":
        code = backtest.main([*SIM, *out])
    else:
        code = sweep_cli.main([*SIM, *out, "--grid", str(grid), "--no-progress"])
    _refused_at_once(capsys, code, says)
    assert _files(tmp_path) == before


@pytest.mark.parametrize("command", ["backtest", "sweep"])
def test_a_database_another_process_holds_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], held: tuple[Path, int], command: str
) -> None:
    db, _ = held
    grid = tmp_path / "grid.yaml"
    grid.write_text("strategy.ofi.long_above: [1.5, 2.0]\n")
    out = ["--out", str(tmp_path / "features"), "--db", str(db)]
    if command == "backtest":
        code = backtest.main([*SIM, *out])
    else:
        code = sweep_cli.main([*SIM, *out, "--grid", str(grid), "--no-progress"])
    _refused_at_once(capsys, code, f"{db} is held open by another process")
    assert not (tmp_path / "features").exists()


def test_a_database_the_run_created_is_removed_when_the_run_fails(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    check_results_database(path)
    assert not path.exists()
    seen = []

    def fail_inside() -> None:
        with results_database(path):
            seen.append(path.exists())
            raise RuntimeError("the write failed")

    with pytest.raises(RuntimeError):
        fail_inside()
    assert seen == [True]
    assert not path.exists()
    with results_database(path):
        pass
    with pytest.raises(RuntimeError):
        fail_inside()
    assert path.exists()
