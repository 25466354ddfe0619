"""The single-instance guard: a lock file beside the database, held for the daemon's life.

DuckDB's own file lock cannot keep a second daemon out, because the daemon releases the database
between minutes so that readers can look at it. An advisory `flock` on `<db>.lock` can: the
kernel drops it when the process dies, even by SIGKILL, so a crash never leaves a stale lock
behind. The holder writes its pid into the file so the refusal can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from gexbot.errors import ConfigError


def lock_path(database: Path) -> Path:
    """The lock file guarding `database`: the same name with `.lock` appended."""
    return database.with_name(database.name + ".lock")


class InstanceLock:
    """An exclusive, non-blocking lock on `<database>.lock`, released on `release` or exit."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = lock_path(database)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ConfigError naming the pid that holds it."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as problem:
            raise ConfigError(
                f"{self.database}: cannot create the lock file {self.path.name}"
                f" ({problem.strerror}); check that the folder exists and is writable"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise ConfigError(
                f"{self.database} is in use by another gexbot (pid {holder});"
                " stop it or pass another --db"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up; the file stays (removing it would race a process about to lock it)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    """The pid the holder wrote, or "unknown" while it has not written it yet."""
    text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    return text if text.isdigit() else "unknown"
