"""The single-instance guard: a lock file per database and variant, held for the daemon's life.

DuckDB's own file lock cannot keep a second daemon out, because the daemon releases the database
between writes so that readers, and the other variant's daemon, can use it. An advisory `flock`
on `<db>.<variant>.lock` can: the kernel drops it when the process dies, even by SIGKILL, so a
crash never leaves a stale lock behind. One lock per variant lets the ES and the NQ daemon share
one database file while two daemons of the same variant cannot. The holder writes its pid into
the file so that a refusal can say who holds it.

The lock file is opened without following a symbolic link and only used when it is a plain file
of its own (one link, empty or holding a pid): writing the pid truncates it, and a link planted
at that name, or a file someone else keeps there, must never be emptied.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
from pathlib import Path
from types import TracebackType

from gexbot.errors import ConfigError

_PID_TEXT = re.compile(rb"\d*\n?")
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def lock_path(database: Path, variant: str) -> Path:
    """The lock file guarding `variant`'s use of `database`: `<name>.<variant>.lock` beside it."""
    return database.with_name(f"{database.name}.{variant}.lock")


class InstanceLock:
    """An exclusive, non-blocking lock on `<database>.<variant>.lock`, released on `release`."""

    def __init__(self, database: Path, variant: str) -> None:
        self.database = database
        self.variant = variant
        self.path = lock_path(database, variant)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ConfigError saying why not (who holds it, what is in the way)."""
        if self._fd is not None:
            return
        fd = self._open()
        try:
            self._check_own_file(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(
                    f"{self.database} is in use by another gexbot {self.variant.upper()} daemon"
                    f" (pid {_read_pid(fd)}); stop it or pass another --db"
                ) from None
            if not _PID_TEXT.fullmatch(os.pread(fd, 64, 0)):
                raise ConfigError(self._not_ours("holds something other than a gexbot pid"))
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _open(self) -> int:
        try:
            return os.open(self.path, _OPEN_FLAGS, 0o644)
        except OSError as problem:
            if problem.errno == errno.ELOOP:
                raise ConfigError(self._not_ours("is a symbolic link")) from None
            raise ConfigError(
                f"{self.database}: cannot create the lock file {self.path.name}"
                f" ({problem.strerror}); check that the folder exists and is writable, or pass"
                " another --db"
            ) from None

    def _check_own_file(self, fd: int) -> None:
        """Refuse a lock path that is not a plain file of its own (a device, a hard link)."""
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise ConfigError(self._not_ours("is not a regular file"))
        if status.st_nlink != 1:
            raise ConfigError(self._not_ours("has other names (hard links)"))

    def _not_ours(self, what: str) -> str:
        return (
            f"{self.path} {what}; gexbot writes its lock there and will not touch it:"
            " move it away or pass another --db"
        )

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
