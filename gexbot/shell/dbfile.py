"""Opening the DuckDB file: only a DuckDB file, never over the network, errors in one line.

DuckDB reads more than its own files: given a SQLite file it fetches the SQLite extension from
the internet, a name such as `md:x` or `s3://...` selects a network service, `:memory:` a
database that keeps nothing, and an existing CSV file under a `.csv` name silently opens an
empty in-memory database. gexbot wants none of that, so the path is checked before anything is
created beside it, DuckDB gets the absolute path of a plain file, and automatic extension
installs and loads are off.

DuckDB's own errors name the file, so they are recognised by their words with the path taken
out: a path that merely contains "lock" is not a lock conflict.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import duckdb

from gexbot.errors import ConfigError, GexbotError, StorageError
from gexbot.shell.schema import MADE_FOR, database_fact, variants_in

CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
"""No DuckDB connection of gexbot ever installs or loads an extension by itself."""
_MAGIC = b"DUCK"
_MAGIC_AT = 8
_SQLITE = b"SQLite format 3\x00"
_SERVICE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_LOCK_CONFLICT = "could not set lock on file"
_NO_SPACE = ("no space left on device", "disk quota exceeded")
_NOT_WRITABLE = ("read-only file system", "permission denied", "operation not permitted")
_NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_NOT_WRITABLE_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


class FileHeld(Exception):
    """Another process (a reader, the other variant's daemon) holds the database file now."""


def check_database_name(path: Path, option: str = "--db") -> None:
    """Refuse a name that DuckDB would not read as a local file, or that names no file
    (`option` is how the user gave the path)."""
    text = str(path)
    if text.startswith(":memory:"):
        raise ConfigError(
            f"{option} {text} is DuckDB's in-memory database, which keeps nothing once the run"
            " ends; name a file"
        )
    service = _SERVICE.match(text)
    if service is not None and not path.exists():
        raise ConfigError(
            f"{option} {text} is not a local file: DuckDB reads '{service.group(0)}' as a network"
            " service or an extension; gexbot writes a local DuckDB file (give an absolute path"
            " for a file of that name)"
        )
    if path.name in ("", "..", "."):
        raise ConfigError(
            f"{option} names no file ({text!r}); name a DuckDB file such as trades.db"
        )


def check_database_path(path: Path, option: str = "--db") -> None:
    """Refuse, touching nothing, a path that is not (or cannot become) a DuckDB file of ours."""
    check_database_name(path, option)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; name a DuckDB file inside it")
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE))
    except FileNotFoundError:
        return
    except OSError as problem:
        raise ConfigError(f"{path}: cannot read it ({problem.strerror})") from None
    if head[_MAGIC_AT : _MAGIC_AT + len(_MAGIC)] == _MAGIC:
        return
    if head == _SQLITE:
        what = "a SQLite database"
    else:
        what = "an empty file" if not head else "it does not start as one"
    raise ConfigError(
        f"{path} is not a DuckDB database ({what}); gexbot leaves it untouched: pass another"
        f" {option}"
    )


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the file at `path`, its times in UTC.

    FileHeld when another process holds the file; a one-line GexbotError for anything else.
    """
    try:
        con = duckdb.connect(os.path.abspath(path), read_only=read_only, config=CONFIG)
    except duckdb.Error as problem:
        if _said(problem, path, (_LOCK_CONFLICT,)):
            raise FileHeld from None
        raise write_failure(path, problem) or ConfigError(
            f"{path}: {first_line(problem)}"
        ) from None
    con.execute("SET TimeZone = 'UTC'")
    return con


def connect_reader(
    path: Path, wait: Callable[[float], None], retries: int, delay: float, option: str = "--db"
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the DuckDB file at `path`, tried `retries` more times `delay`
    apart while a writer holds it; FileHeld when it still does.

    The file is checked first (`check_database_path`): what it is comes from its first bytes,
    never from the words of DuckDB's error, which quote the path.
    """
    check_database_path(path, option)
    for attempt in range(retries + 1):
        if attempt:
            wait(delay)
        with contextlib.suppress(FileHeld):
            return connect(path, read_only=True)
    raise FileHeld


def remove_replay_database(
    path: Path, variant: str, made_for: str, log: logging.Logger
) -> None:
    """Clear the way for a fresh replay (the caller holds the variant's lock).

    Only a database gexbot made `made_for` a replay and holding no other variant's rows is
    removed; anything else at the path (a user's file, a live database, a link) is refused.
    """
    if not path.exists() and not path.is_symlink():
        return
    found, others = None, set()
    if not path.is_symlink():
        try:
            con = connect(path, read_only=True)
        except FileHeld:
            raise ConfigError(
                f"{path} is held open by another process; close it and try again"
            ) from None
        try:
            found, others = database_fact(con, MADE_FOR), variants_in(con) - {variant}
        finally:
            con.close()
    if found != made_for or others:
        raise ConfigError(
            f"{path} exists and is not a replay database gexbot made for {variant}; gexbot"
            " replaces only those: move it away or pass --db"
        )
    for part in (path, path.with_name(path.name + ".wal")):
        part.unlink(missing_ok=True)
    log.info("%s: the previous replay's database was replaced", path)


def write_failure(
    path: Path, problem: BaseException, resume: str = "", elsewhere: str = "--db"
) -> GexbotError | None:
    """The one-line error for a write that failed for want of space or permission, else None.

    `resume` tells where a restart will pick up, for the full-disk message; `elsewhere` is the
    option that names another place to write.
    """
    if isinstance(problem, OSError) and problem.errno is not None:
        space = problem.errno in _NO_SPACE_ERRNOS
        denied = problem.errno in _NOT_WRITABLE_ERRNOS
        why = problem.strerror or str(problem)
        where = Path(problem.filename) if problem.filename else path
    elif isinstance(problem, duckdb.Error):
        space = _said(problem, path, _NO_SPACE)
        denied = _said(problem, path, _NOT_WRITABLE)
        why = first_line(problem)
        where = path
    else:
        return None
    if space:
        return StorageError(
            f"{where}: no space left on device; free some space and start again{resume}"
        )
    if denied:
        return StorageError(
            f"{where}: cannot write ({why}); make the folder writable or pass another"
            f" {elsewhere}"
        )
    return None


def _said(problem: BaseException, path: Path, phrases: tuple[str, ...]) -> bool:
    """Whether DuckDB's message says one of `phrases` outside the file's own name."""
    text = str(problem)
    for name in {str(path), os.path.abspath(path)}:
        text = text.replace(name, "")
    text = text.lower()
    return any(phrase in text for phrase in phrases)


def first_line(problem: BaseException) -> str:
    """The first line of an error's text (DuckDB appends hints and links below it)."""
    lines = str(problem).strip().splitlines()
    return lines[0] if lines else type(problem).__name__
