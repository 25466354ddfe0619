"""Whatever stands at `--db` or beside it, the daemon says in one line what is wrong and exits 2.

An empty path, DuckDB's in-memory database, a network name, a folder, a file of another program
(SQLite, CSV, empty), a read-only folder or file, a full disk: one critical line, exit code 2, no
traceback, and nothing of the user's touched. A SQLite file never makes DuckDB fetch an
extension, a path that merely contains "lock" is no lock conflict, and a full disk leaves a
database from which a restart, once there is space again, ends exactly where an uninterrupted
run ends.

Read-only folders and small disks are made for real where the machine allows it: a folder made
immutable (`chattr +i`, as root, whom permissions do not stop) or read-only (`chmod`, as anyone
else), a small tmpfs mounted as root. Where it cannot be made the test says so and is skipped.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_reconcile import process_state_restored

import gexbot.live as live
import gexbot.shell.dbfile as dbfile
from gexbot.errors import ConfigError, StorageError
from gexbot.model_io import write_model

SIM = ["--variant", "es", "--source", "sim", "--start", "2026-10-05", "--log-level", "WARNING"]


def _run(argv: list[str], caplog: pytest.LogCaptureFixture) -> tuple[int, list[str]]:
    """Exit code and the critical lines of one in-process run of the daemon."""
    caplog.clear()
    with process_state_restored():
        code = live.main(argv)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text
    assert all(record.exc_info is None for record in caplog.records)
    return code, lines


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize(
    ("db", "says"),
    [
        ("", "names no file"),
        (":memory:", "DuckDB's in-memory database, which keeps nothing"),
        (":memory:named", "DuckDB's in-memory database, which keeps nothing"),
        ("md:trades", "not a local file"),
        ("sqlite:trades.db", "not a local file"),
        ("s3://bucket/trades.db", "not a local file"),
        ("https://example.com/trades.db", "not a local file"),
        (".", "names no file"),
        ("..", "names no file"),
    ],
)
def test_a_db_that_is_no_local_file_is_refused(
    db: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, lines = _run([*SIM, "--minutes", "2", "--db", db], caplog)
    assert code == 2
    (line,) = lines
    assert says in line
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    code, lines = _run([*SIM, "--minutes", "2", "--db", str(tmp_path)], caplog)
    assert code == 2
    assert lines == [f"{tmp_path} is a folder; name a DuckDB file inside it"]
    assert list(tmp_path.iterdir()) == []


def _sqlite(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("CREATE TABLE trades (id INTEGER)")
        con.commit()


FOREIGN = {
    "a SQLite database": (_sqlite, "(a SQLite database)"),
    "a CSV file": (lambda p: p.write_text("timestamp,symbol\n"), "(it does not start as one)"),
    "a CSV file named .csv": (lambda p: p.write_text("a,b\n1,2\n"), "(it does not start as"),
    "an empty file": (lambda p: p.write_bytes(b""), "(an empty file)"),
    "random bytes": (lambda p: p.write_bytes(os.urandom(4096)), "(it does not start as one)"),
}


@pytest.mark.parametrize("name", list(FOREIGN))
def test_a_file_of_another_program_is_not_a_duckdb_database_and_stays_untouched(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make, says = FOREIGN[name]
    db = tmp_path / ("trades.csv" if name.endswith(".csv") else "trades.db")
    make(db)
    before = _files(tmp_path)
    code, lines = _run([*SIM, "--minutes", "2", "--db", str(db)], caplog)
    assert code == 2
    (line,) = lines
    assert line.startswith(f"{db} is not a DuckDB database {says}")
    assert _files(tmp_path) == before


def test_duckdb_never_fetches_an_extension_for_a_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "trades.db"
    _sqlite(db)
    before = db.read_bytes()
    with pytest.raises(ConfigError) as caught:
        dbfile.connect(db)  # past the header check, straight to DuckDB
    assert "download" not in str(caught.value).lower()
    assert "http" not in str(caught.value).lower()
    assert db.read_bytes() == before


def test_a_path_that_merely_contains_lock_is_no_lock_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "locked" / "lock.db"

    def refuse(path: str, **_: Any) -> None:
        raise duckdb.IOException(f'IO Error: Cannot open file "{path}": Permission denied')

    monkeypatch.setattr(dbfile.duckdb, "connect", refuse)
    with pytest.raises(StorageError, match=r"lock\.db: cannot write \(IO Error: Cannot open"):
        dbfile.connect(db)


def test_a_real_lock_conflict_is_still_one(tmp_path: Path) -> None:
    db = tmp_path / "quant.db"
    holder = subprocess.Popen(  # noqa: S603 (our own interpreter)
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]);"
         " print('held', flush=True); sys.stdin.readline()", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(dbfile.FileHeld):
            dbfile.connect(db)
    finally:
        holder.communicate("\n", timeout=60)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` (a folder or a file) made unwritable for real, or the test skipped saying why."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root without chattr: cannot make a folder read-only for root")
    made = subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False)  # noqa: S603
    if made.returncode != 0:
        pytest.skip(f"chattr +i failed here ({made.stderr.decode().strip()}): cannot make"
                    " a folder read-only for root on this file system")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)  # noqa: S603


def test_a_read_only_database_folder_is_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "es.db"
    assert _run([*SIM, "--minutes", "3", "--db", str(db)], caplog)[0] == 0
    before = _files(folder)
    with read_only(folder):
        code, lines = _run([*SIM, "--minutes", "6", "--db", str(db)], caplog)
    assert code == 2
    (line,) = lines
    assert line.startswith(f"{db}: cannot write (")
    assert line.endswith("make the folder writable or pass another --db")
    assert _files(folder) == before


def test_a_read_only_database_file_is_one_line_even_under_a_lock_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "lock"
    folder.mkdir()
    db = folder / "locked.db"
    assert _run([*SIM, "--minutes", "3", "--db", str(db)], caplog)[0] == 0
    with read_only(db):
        code, lines = _run([*SIM, "--minutes", "6", "--db", str(db)], caplog)
    assert code == 2
    (line,) = lines
    assert "cannot write" in line
    assert "held open by another process" not in line


def test_a_new_database_in_a_read_only_folder_is_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with read_only(tmp_path):
        code, lines = _run([*SIM, "--minutes", "3", "--db", str(tmp_path / "es.db")], caplog)
    assert code == 2
    (line,) = lines
    assert "cannot create the lock file es.db.es.lock" in line
    assert list(tmp_path.iterdir()) == []


def test_a_replay_beside_read_only_recordings_is_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recordings = tmp_path / "recordings"
    assert _run([*SIM, "--minutes", "3", "--record", str(recordings), "--db",
                 str(tmp_path / "live.db")], caplog)[0] == 0
    folder = recordings / "es"
    before = _files(folder)
    with read_only(folder):
        code, lines = _run(["--variant", "es", "--replay", str(folder)], caplog)
    assert code == 2
    (line,) = lines
    assert "replay-es.db: cannot create the lock file" in line
    assert "pass another --db" in line
    assert _files(folder) == before


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[None]:
    """A tmpfs of `size` mounted on `folder`, or the test skipped saying why."""
    if os.geteuid() != 0:
        pytest.skip("a small file system needs root to mount a tmpfs")
    folder.mkdir()
    made = subprocess.run(  # noqa: S603 (fixed arguments)
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],  # noqa: S607
        capture_output=True, check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.decode().strip()})")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)  # noqa: S603, S607


def _tables(db: Path) -> list[list[tuple[Any, ...]]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return [con.execute(sql).fetchall() for sql in (
            'SELECT * FROM decisions ORDER BY "at"',
            'SELECT * FROM trades ORDER BY "timestamp", entry_time',
            "SELECT * FROM state",
        )]


def test_a_full_disk_is_one_line_and_a_restart_after_freeing_space_resumes_exactly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = [*SIM, "--days", "3"]
    assert _run([*run, "--db", str(tmp_path / "reference.db")], caplog)[0] == 0
    disk = tmp_path / "disk"
    with small_disk(disk, "3200k"):
        db = disk / "es.db"
        code, lines = _run([*run, "--db", str(db)], caplog)
        assert code == 2
        (line,) = lines
        assert line.startswith(f"{db}: no space left on device; free some space and start again")
        assert "it resumes after 2026-10-0" in line
        subprocess.run(["mount", "-o", "remount,size=40m", str(disk)], check=True)  # noqa: S603, S607
        assert _run([*run, "--db", str(db)], caplog) == (0, [])
        assert _tables(db) == _tables(tmp_path / "reference.db")


def test_a_model_that_cannot_be_written_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gexbot.model_io import read_model
    from gexbot.settings import load_variant, resolve_path

    model = read_model(resolve_path(load_variant("es", None).model_path))
    out = tmp_path / "models" / "hmm_es.json"

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("gexbot.model_io.os.replace", full)
    with pytest.raises(StorageError, match=r"hmm_es\.json: no space left on device"):
        write_model(out, model)
    monkeypatch.undo()
    assert list(out.parent.iterdir()) == []
    with read_only(out.parent), pytest.raises(StorageError, match=r"cannot write .*--out"):
        write_model(out, model)
