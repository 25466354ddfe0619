"""The single-instance lock: one holder per database, across processes, released on exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gexbot.errors import ConfigError
from gexbot.shell.lock import InstanceLock, lock_path

REPO = Path(__file__).resolve().parents[2]
TRY_LOCK = """
import sys
from pathlib import Path
from gexbot.errors import ConfigError
from gexbot.shell.lock import InstanceLock
try:
    InstanceLock(Path(sys.argv[1])).acquire()
except ConfigError as problem:
    print(problem)
else:
    print("acquired")
"""
HOLD_LOCK = """
import sys
from pathlib import Path
from gexbot.shell.lock import InstanceLock
lock = InstanceLock(Path(sys.argv[1]))
lock.acquire()
print("held", flush=True)
sys.stdin.readline()
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def try_lock_elsewhere(database: Path) -> str:
    """What another process gets when it tries to take the lock."""
    done = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", TRY_LOCK, str(database)],
        capture_output=True, text=True, env=_env(), timeout=60, check=True,
    )
    return done.stdout.strip()


def test_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    assert lock_path(tmp_path / "quant.db") == tmp_path / "quant.db.lock"


def test_second_process_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    database = tmp_path / "quant.db"
    with InstanceLock(database) as lock:
        assert lock.held
        assert (tmp_path / "quant.db.lock").read_text().strip() == str(os.getpid())
        message = try_lock_elsewhere(database)
    assert message == (
        f"{database} is in use by another gexbot (pid {os.getpid()});"
        " stop it or pass another --db"
    )


def test_lock_is_free_again_after_release(tmp_path: Path) -> None:
    database = tmp_path / "quant.db"
    lock = InstanceLock(database)
    lock.acquire()
    lock.release()
    assert not lock.held
    assert try_lock_elsewhere(database) == "acquired"
    lock.acquire()
    assert lock.held
    lock.release()


def test_lock_of_a_killed_process_is_free(tmp_path: Path) -> None:
    database = tmp_path / "quant.db"
    with subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", HOLD_LOCK, str(database)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(),
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            refusal = f"in use by another gexbot \\(pid {holder.pid}\\)"
            with pytest.raises(ConfigError, match=refusal):
                InstanceLock(database).acquire()
        finally:
            holder.kill()
            holder.wait(timeout=60)
    with InstanceLock(database) as lock:
        assert lock.held
        assert lock.path.read_text().strip() == str(os.getpid())


def test_second_lock_in_the_same_process_is_refused_too(tmp_path: Path) -> None:
    database = tmp_path / "quant.db"
    with InstanceLock(database), pytest.raises(ConfigError, match="in use by another gexbot"):
        InstanceLock(database).acquire()


def test_missing_folder_is_one_line(tmp_path: Path) -> None:
    database = tmp_path / "absent" / "quant.db"
    with pytest.raises(ConfigError, match=r"cannot create the lock file quant\.db\.lock") as caught:
        InstanceLock(database).acquire()
    assert "\n" not in str(caught.value)
