"""No command removes, truncates or overwrites a file that another process holds or a user made.

A replay starts afresh in `replay-<variant>.db` beside the recordings, but removes the previous
one only after taking its lock and checking that gexbot made it for a replay of this variant;
reconcile keeps its databases in a new folder of its own; the trainer replaces only a model
file. Everything else at those paths is refused in one line and left byte for byte as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from test_reconcile import process_state_restored, run_live, run_reconcile

import gexbot.train_hmm as train_hmm
from gexbot.shell.lock import InstanceLock
from gexbot.shell.store import Store

RECORD = ["--source", "sim", "--start", "2026-10-05", "--days", "1", "--minutes", "20"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A live database and the recording of its 20 minutes, in one folder."""
    root = tmp_path_factory.mktemp("recorded")
    assert run_live([*RECORD, "--record", str(root / "recordings"), "--db",
                     str(root / "live.db")]) == 0
    return root


@pytest.fixture
def recordings(recorded: Path, tmp_path: Path) -> Path:
    """A copy of the recordings of ES: the default replay database goes beside them."""
    folder = tmp_path / "es"
    shutil.copytree(recorded / "recordings" / "es", folder)
    return folder


def _critical(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]


def _snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry of `folder`: a file's bytes, a link's target."""
    return {
        path.name: os.readlink(path) if path.is_symlink() else path.read_bytes()
        for path in sorted(folder.iterdir())
        if not path.is_dir()
    }


def test_a_replay_replaces_only_the_database_an_earlier_replay_made(recordings: Path) -> None:
    db = recordings / "replay-es.db"
    assert run_live(["--replay", str(recordings)]) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        first = con.execute('SELECT * FROM decisions ORDER BY "at"').fetchall()
        made_for = con.execute("SELECT value FROM meta WHERE variant = '' AND key = 'made_for'"
                               ).fetchall()
    assert len([row for row in first if row[14] != "SKIP"]) == 20
    assert made_for == [("replay",)]
    assert run_live(["--replay", str(recordings)]) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute('SELECT * FROM decisions ORDER BY "at"').fetchall() == first


def test_a_second_replay_while_the_first_runs_is_refused_and_removes_nothing(
    recordings: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert run_live(["--replay", str(recordings)]) == 0
    with InstanceLock(recordings / "replay-es.db", "es"):  # what the running replay holds
        before = _snapshot(recordings)
        assert run_live(["--replay", str(recordings)]) == 2
        assert _snapshot(recordings) == before
    (line,) = _critical(caplog)
    assert "replay-es.db is in use by another gexbot ES daemon" in line


def _text_file(db: Path, _other: Path) -> None:
    db.write_text("my own notes\n")


def _users_duckdb(db: Path, _other: Path) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE prices (day DATE, close DOUBLE)")


def _live_database(db: Path, _other: Path) -> None:
    with Store(db, "es") as store:
        store.set_meta("note", "a trading database someone copied here")


def _older_gexbot_database(db: Path, _other: Path) -> None:
    _live_database(db, _other)
    with duckdb.connect(str(db)) as con:
        con.execute("DELETE FROM meta WHERE variant = ''")


def _replay_with_nq_rows(db: Path, _other: Path) -> None:
    with Store(db, "es", made_for="replay"):
        pass
    with Store(db, "nq") as store:
        store.set_meta("note", "nq wrote here with --db")


def _link_to_a_users_file(db: Path, other: Path) -> None:
    other.write_text("a file the link points to\n")
    db.symlink_to(other)


USER_FILES: dict[str, Callable[[Path, Path], None]] = {
    "a text file": _text_file,
    "a user's own DuckDB database": _users_duckdb,
    "a trading database": _live_database,
    "a database of an older gexbot": _older_gexbot_database,
    "a replay database holding NQ rows": _replay_with_nq_rows,
    "a symbolic link": _link_to_a_users_file,
}


@pytest.mark.parametrize("name", list(USER_FILES))
def test_a_file_a_user_made_at_the_replay_path_is_left_untouched(
    recordings: Path, tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    USER_FILES[name](recordings / "replay-es.db", tmp_path / "target.txt")
    before = _snapshot(recordings)
    outside = _snapshot(tmp_path)
    assert run_live(["--replay", str(recordings)]) == 2
    (line,) = _critical(caplog)
    assert "replay-es.db" in line
    assert "--db" in line
    after = _snapshot(recordings)
    assert {key: after[key] for key in before} == before
    assert set(after) - set(before) <= {"replay-es.db.es.lock"}
    assert _snapshot(tmp_path) == outside


def test_reconcile_keeps_its_databases_in_a_new_folder_and_leaves_the_rest(
    recorded: Path, tmp_path: Path
) -> None:
    keep = tmp_path / "audit"
    keep.mkdir()
    (keep / "replay-es-1.db").write_text("a file of the user's\n")
    (keep / "replay-es-1.db.backup").write_text("another\n")
    (keep / "replay-es-1-model.json").write_text("{}\n")
    before = _snapshot(keep)
    for _ in range(2):
        assert run_reconcile(["--db", str(recorded / "live.db"), "--replay",
                              str(recorded / "recordings"), "--keep", str(keep)]) == 0
    assert _snapshot(keep) == before
    runs = sorted(path for path in keep.iterdir() if path.is_dir())
    assert len(runs) == 2
    for folder in runs:
        assert folder.name.startswith("reconcile-")
        assert (folder / "replay-es-1.db").is_file()


def _train(out: Path) -> int:
    with process_state_restored():
        return train_hmm.main(["--variant", "es", "--source", "sim", "--end", "2026-09-30",
                               "--restarts", "1", "--out", str(out)])


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda out: out.write_text("notes\n"), "exists and is not an HMM model file"),
        (lambda out: out.write_text('{"format": "something else"}'), "is not an HMM model file"),
        (lambda out: out.write_bytes(b"\x00\xff" * 10), "is not an HMM model file"),
        (lambda out: out.mkdir(), "is a folder"),
        (lambda out: out.symlink_to(out.with_name("elsewhere.json")), "is a symbolic link"),
    ],
)
def test_the_trainer_replaces_only_a_model_file(
    tmp_path: Path, make: Callable[[Path], object], says: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = tmp_path / "hmm_es.json"
    make(out)
    before = _snapshot(tmp_path)
    assert _train(out) == 2
    (line,) = _critical(caplog)
    assert says in line
    assert _snapshot(tmp_path) == before
