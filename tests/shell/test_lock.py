"""The single-instance lock: one holder per database and variant, across processes, released on
exit, and a lock path that is not a plain file of its own is never written."""

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
    InstanceLock(Path(sys.argv[1]), sys.argv[2]).acquire()
except ConfigError as problem:
    print(problem)
else:
    print("acquired")
"""
HOLD_LOCK = """
import sys
from pathlib import Path
from gexbot.shell.lock import InstanceLock
lock = InstanceLock(Path(sys.argv[1]), "es")
lock.acquire()
print("held", flush=True)
sys.stdin.readline()
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def try_lock_elsewhere(database: Path, variant: str = "es") -> str:
    """What another process gets when it tries to take the lock."""
    done = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", TRY_LOCK, str(database), variant],
        capture_output=True, text=True, env=_env(), timeout=60, check=True,
    )
    return done.stdout.strip()


def test_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    assert lock_path(tmp_path / "quant.db", "es") == tmp_path / "quant.db.es.lock"


def test_second_process_of_the_variant_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    database = tmp_path / "quant.db"
    with InstanceLock(database, "es") as lock:
        assert lock.held
        assert (tmp_path / "quant.db.es.lock").read_text().strip() == str(os.getpid())
        message = try_lock_elsewhere(database)
    assert message == (
        f"{database} is in use by another gexbot ES daemon (pid {os.getpid()});"
        " stop it or pass another --db"
    )


def test_the_other_variant_locks_the_same_database(tmp_path: Path) -> None:
    database = tmp_path / "quant.db"
    with InstanceLock(database, "es"):
        assert try_lock_elsewhere(database, "nq") == "acquired"


def test_lock_is_free_again_after_release(tmp_path: Path) -> None:
    database = tmp_path / "quant.db"
    lock = InstanceLock(database, "es")
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
            refusal = f"in use by another gexbot ES daemon \\(pid {holder.pid}\\)"
            with pytest.raises(ConfigError, match=refusal):
                InstanceLock(database, "es").acquire()
        finally:
            holder.kill()
            holder.wait(timeout=60)
    with InstanceLock(database, "es") as lock:
        assert lock.held
        assert lock.path.read_text().strip() == str(os.getpid())


def test_second_lock_in_the_same_process_is_refused_too(tmp_path: Path) -> None:
    database = tmp_path / "quant.db"
    with InstanceLock(database, "es"), pytest.raises(ConfigError, match="in use by another"):
        InstanceLock(database, "es").acquire()


def test_missing_folder_is_one_line(tmp_path: Path) -> None:
    database = tmp_path / "absent" / "quant.db"
    refusal = r"cannot create the lock file quant\.db\.es\.lock"
    with pytest.raises(ConfigError, match=refusal) as caught:
        InstanceLock(database, "es").acquire()
    assert "\n" not in str(caught.value)


def test_a_symbolic_link_at_the_lock_path_is_refused_and_its_target_kept(
    tmp_path: Path,
) -> None:
    database = tmp_path / "quant.db"
    target = tmp_path / "precious.txt"
    target.write_text("a file someone keeps\n")
    lock_path(database, "es").symlink_to(target)
    with pytest.raises(ConfigError, match=r"quant\.db\.es\.lock is a symbolic link; gexbot"):
        InstanceLock(database, "es").acquire()
    assert target.read_text() == "a file someone keeps\n"
    dangling = lock_path(database, "nq")
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="is a symbolic link"):
        InstanceLock(database, "nq").acquire()
    assert not (tmp_path / "nowhere").exists()


def test_a_hard_link_at_the_lock_path_is_refused_and_left_whole(tmp_path: Path) -> None:
    database = tmp_path / "quant.db"
    target = tmp_path / "precious.txt"
    target.write_text("12345\n")
    os.link(target, lock_path(database, "es"))
    with pytest.raises(ConfigError, match=r"has other names \(hard links\)"):
        InstanceLock(database, "es").acquire()
    assert target.read_text() == "12345\n"


def test_a_file_that_holds_something_else_is_refused_and_left_whole(tmp_path: Path) -> None:
    database = tmp_path / "quant.db"
    lock_path(database, "es").write_text("my notes about the database\n")
    with pytest.raises(ConfigError, match="holds something other than a gexbot pid"):
        InstanceLock(database, "es").acquire()
    assert lock_path(database, "es").read_text() == "my notes about the database\n"


def test_a_pid_left_by_a_crashed_run_is_taken_over(tmp_path: Path) -> None:
    database = tmp_path / "quant.db"
    lock_path(database, "es").write_text("999999\n")
    with InstanceLock(database, "es") as lock:
        assert lock.path.read_text() == f"{os.getpid()}\n"


def test_a_folder_or_a_fifo_at_the_lock_path_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "quant.db"
    lock_path(database, "es").mkdir()
    with pytest.raises(ConfigError, match=r"quant\.db\.es\.lock"):
        InstanceLock(database, "es").acquire()
    os.mkfifo(lock_path(database, "nq"))
    with pytest.raises(ConfigError, match="is not a regular file"):
        InstanceLock(database, "nq").acquire()
