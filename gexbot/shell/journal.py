"""Minutes the database could not take yet, kept on disk beside it so that a kill loses none.

While a reader (the `duckdb` CLI, a notebook) or the other variant's daemon holds the database
file, the daemon cannot write its minutes there. They wait in memory for the next chance, and
also here, in `<db>.<variant>.pending`: one JSON line per minute, flushed and fsynced before the
minute counts as committed. A daemon killed meanwhile finds them at its next start and writes
them first.

Each line names its variant and the identity of its database (a random id the database keeps in
its `meta` table), and the rows it carries are checked column by column before anything is
written: a journal copied beside another database, renamed to another variant's name, cut short
by a kill or damaged in any other way can never put one variant's or one database's minutes
into another. Every line that passes is kept, whatever surrounds it; the others are moved,
unchanged, to `<db>.<variant>.pending-rejected` for a person to look at, with one warning.

Writing a journaled minute to the database twice is harmless: every table is keyed, so the
second write changes nothing.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from gexbot.errors import ConfigError
from gexbot.shell.schema import DECISION_COLUMNS, TRADE_COLUMNS, Columns, Row
from gexbot.shell.state_codec import StateFormatError, state_from_json

FORMAT = "gexbot-pending"
VERSION = 2
MAX_LINE_BYTES = 4 << 20
"""A minute's line is a few kilobytes; anything far larger is not one: it is not parsed, and is
moved aside a chunk at a time, so a line of any length costs at most this much memory."""
_FILE_MODE = 0o644
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class PendingMinute:
    """One minute's writes, ready to go out: rows in column order and the state text."""

    minute: datetime
    decisions: tuple[Row, ...]
    trades: tuple[Row, ...]
    state: str


def journal_path(database: Path, variant: str) -> Path:
    """The journal of `variant` beside `database`: `<name>.<variant>.pending`."""
    return database.with_name(f"{database.name}.{variant}.pending")


def rejected_path(database: Path, variant: str) -> Path:
    """Where journal lines that cannot be taken back are set aside."""
    return database.with_name(f"{database.name}.{variant}.pending-rejected")


def legacy_journal_path(database: Path) -> Path:
    """The journal of gexbot versions that did not name the variant: `<name>.pending`."""
    return database.with_name(database.name + ".pending")


class BadLine(ValueError):
    """A journal line that is not a minute of this variant and database."""


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) != {"datetime"} or not isinstance(value["datetime"], str):
            raise BadLine("a value is neither a number, a text nor a time")
        return datetime.fromisoformat(value["datetime"])
    return value


def _fits(value: Any, kind: str) -> bool:
    """Whether a decoded value can go into a column of SQL type `kind` (NULL fits any)."""
    if value is None:
        return True
    if kind == "TIMESTAMPTZ":
        return isinstance(value, datetime) and value.tzinfo is not None
    if kind == "VARCHAR":
        return isinstance(value, str)
    if kind == "DOUBLE":
        return isinstance(value, float | int) and not isinstance(value, bool)
    if kind == "INTEGER":
        return isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31
    raise AssertionError(f"no check for column type {kind}")


def _rows(document: dict[str, Any], key: str, columns: Columns) -> tuple[Row, ...]:
    rows = document.get(key)
    if not isinstance(rows, list):
        raise BadLine(f"{key} is not a list of rows")
    decoded: list[Row] = []
    for raw in rows:
        if not isinstance(raw, list) or len(raw) != len(columns):
            raise BadLine(f"a row of {key} does not have {len(columns)} values")
        row = tuple(_decode(value) for value in raw)
        for value, (name, kind) in zip(row, columns, strict=True):
            if not _fits(value, kind):
                raise BadLine(f"{key}.{name} holds {type(value).__name__}, not {kind}")
        decoded.append(row)
    return tuple(decoded)


def _line(item: PendingMinute, variant: str, database_id: str) -> str:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "variant": variant,
        "database": database_id,
        "minute": item.minute.isoformat(),
        "decisions": [[_encode(v) for v in row] for row in item.decisions],
        "trades": [[_encode(v) for v in row] for row in item.trades],
        "state": item.state,
    }
    return json.dumps(document, separators=(",", ":"), allow_nan=True)


def _item(document: object, variant: str, database_id: str) -> PendingMinute:
    """The minute a parsed line holds, or BadLine saying why it is not one of ours."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BadLine("not a gexbot pending-minute line")
    if document.get("version") != VERSION:
        raise BadLine(f"journal version {document.get('version')!r}, not {VERSION}")
    if document.get("variant") != variant:
        raise BadLine(f"a minute of variant {document.get('variant')!r}, not {variant!r}")
    if document.get("database") != database_id:
        raise BadLine("a minute of another database")
    text = document.get("minute")
    minute = datetime.fromisoformat(text) if isinstance(text, str) else None
    if minute is None or minute.tzinfo is None:
        raise BadLine("no minute with its UTC offset")
    decisions = _rows(document, "decisions", DECISION_COLUMNS)
    trades = _rows(document, "trades", TRADE_COLUMNS)
    if any(row[0] != variant or row[1] != minute for row in decisions):
        raise BadLine("a decision of another variant or minute")
    if any(row[11] != variant for row in trades):
        raise BadLine("a trade of another variant")
    state = document.get("state")
    if not isinstance(state, str):
        raise BadLine("no state text")
    try:
        restored = state_from_json(state)
    except StateFormatError as problem:
        raise BadLine(f"state unreadable ({problem})") from None
    if restored.last_minute != minute:
        raise BadLine("the state is not the state after this minute")
    return PendingMinute(minute, decisions, trades, state)


def _parse(raw: bytes, variant: str, database_id: str) -> PendingMinute:
    if len(raw) > MAX_LINE_BYTES:
        raise BadLine(f"longer than {MAX_LINE_BYTES} bytes")
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadLine("not UTF-8 text") from None
    except json.JSONDecodeError:
        raise BadLine("not JSON (cut short by a kill?)") from None
    except RecursionError:
        raise BadLine("JSON nested too deeply") from None
    try:
        return _item(document, variant, database_id)
    except (ValueError, TypeError, RecursionError) as problem:
        if isinstance(problem, BadLine):
            raise
        raise BadLine(f"a malformed value ({problem})") from None


def _open_own(path: Path, flags: int) -> int:
    """A descriptor on `path` if it is a regular file, never followed through a symbolic link
    (FileNotFoundError when it does not exist and `flags` do not create it)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, _FILE_MODE)
    except OSError as problem:
        if problem.errno == errno.ELOOP:
            raise ConfigError(_not_ours(path, "is a symbolic link")) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(_not_ours(path, "is not a regular file"))
    return fd


def _not_ours(path: Path, what: str) -> str:
    return f"{path} {what}; gexbot keeps its own file there: move it away or pass another --db"


def _append(path: Path, text: bytes) -> None:
    """Append `text` to `path` (created if missing) and make it durable before returning."""
    with _Appender(path) as appender:
        appender.write(text)


class _Appender:
    """Appends to a file of ours, opened at the first write, fsynced and closed on leaving; an
    OSError names the file (for the one-line full-disk or read-only message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def write(self, data: bytes) -> None:
        try:
            if self._fd is None:
                self._fd = _open_own(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as problem:
            raise OSError(problem.errno, problem.strerror, str(self.path)) from None

    def __enter__(self) -> _Appender:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if kind is None:
                os.fsync(fd)
        except OSError as problem:
            raise OSError(problem.errno, problem.strerror, str(self.path)) from None
        finally:
            os.close(fd)


def _copy_rest_of_line(source: BinaryIO, appender: _Appender) -> None:
    """Move what is left of an overlong line to `appender`, a chunk at a time."""
    while True:
        chunk = source.readline(_CHUNK_BYTES)
        appender.write(chunk or b"\n")
        if not chunk or chunk.endswith(b"\n"):
            return


class Journal:
    """Append-only file of one variant's pending minutes; emptied once the database has them."""

    def __init__(
        self, database: Path, variant: str, database_id: str, logger: logging.Logger
    ) -> None:
        self.path = journal_path(database, variant)
        self.rejected = rejected_path(database, variant)
        self.variant = variant
        self.database_id = database_id
        self._log = logger

    def check(self) -> None:
        """Refuse, in one line, a journal path that is a link or not a file (before any use)."""
        try:
            os.close(_open_own(self.path, os.O_RDONLY))
        except FileNotFoundError:
            return

    def append(self, items: list[PendingMinute]) -> None:
        """Add minutes and make them durable (written and fsynced) before returning."""
        if not items:
            return
        text = "".join(_line(item, self.variant, self.database_id) + "\n" for item in items)
        _append(self.path, text.encode("utf-8"))

    def load(self) -> list[PendingMinute]:
        """Every journaled minute of this variant and database, oldest first.

        Lines that are not (unreadable, of another variant or database, out of order) are
        moved to the rejected file with one warning; the minutes around them are kept.
        """
        try:
            fd = _open_own(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return []
        items: list[PendingMinute] = []
        rejected = 0
        first_reason = ""
        with os.fdopen(fd, "rb") as handle, _Appender(self.rejected) as aside:
            for number in itertools.count(1):
                raw = handle.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    break
                try:
                    if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                        aside.write(raw)
                        _copy_rest_of_line(handle, aside)
                        raise BadLine(f"longer than {MAX_LINE_BYTES} bytes")
                    line = raw.removesuffix(b"\n")
                    if not line.strip():
                        continue
                    try:
                        item = _parse(line, self.variant, self.database_id)
                        if items and item.minute <= items[-1].minute:
                            raise BadLine("not after the minute before it")
                    except BadLine:
                        aside.write(line + b"\n")
                        raise
                except BadLine as problem:
                    rejected += 1
                    first_reason = first_reason or f"line {number}: {problem}"
                    continue
                items.append(item)
        if rejected:
            self._log.warning(
                "%s: %d line(s) set aside in %s (first, %s); kept %d minute(s)",
                self.path, rejected, self.rejected.name, first_reason, len(items),
            )
        return items

    def clear(self) -> None:
        """Forget every journaled minute (the database holds them now)."""
        self.path.unlink(missing_ok=True)
