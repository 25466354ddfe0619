"""DuckDB store: trades, decisions and the engine state, one transaction per commit.

A minute's decision row, its closed trades and the state that follows it are written in one
transaction, keyed by (variant, minute): a restart after a crash continues from the last
committed state, and a minute committed twice writes nothing twice. The daemon is the only
writer of its variant's rows (an `InstanceLock` per database and variant keeps a second daemon
of the variant out), so the state and metadata read at `open` and kept current by each write
are the truth; only the frames read the file again.

One file can hold both variants: the ES and the NQ daemon take turns on it. DuckDB lets no other
process open a file that one holds, not even read-only, so the store opens the file only to
write (a minute, or a batch of them) and closes it at once; readers and the other daemon use it
in between. When another process holds it at that moment, the store retries briefly, then
keeps the minutes pending in memory and in its variant's journal beside the file
(`journal.py`); they go out with the next successful write, in order, in one transaction.
Nothing is lost or doubled, even by a kill, and nothing of one variant or one database is ever
taken back into another.

A run as fast as the clock allows commits several minutes per transaction: on a simulated or
replayed clock a minute not yet written is simply decided again after a restart, with the same
result, so batching costs nothing in safety and saves most of the write time. The batch starts
at one minute after each start and doubles with each write up to `batch_minutes`, so that even
a daemon killed every second or two makes progress from one start to the next.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import duckdb

from gexbot.core.session import EASTERN
from gexbot.core.types import Closed, Decided, Event, State
from gexbot.errors import ConfigError, GexbotError
from gexbot.shell.dbfile import (
    FileHeld,
    check_database_name,
    check_database_path,
    connect,
    remove_replay_database,
    write_failure,
)
from gexbot.shell.journal import Journal, PendingMinute, legacy_journal_path
from gexbot.shell.lock import InstanceLock
from gexbot.shell.schema import (
    DECISION_COLUMNS,
    UPSERT_META,
    UPSERT_STATE,
    Row,
    decision_row,
    ensure_schema,
    trade_row,
    transaction,
    write_decisions,
    write_trades,
)
from gexbot.shell.state_codec import StateFormatError, state_from_json, state_to_json

RETRY_DELAY_S = 0.2
START_RETRIES = 25
"""Attempts (0.2 s apart, about 5 s) to open the file at start before saying who keeps it."""
REASON_COLUMN = [name for name, _ in DECISION_COLUMNS].index("reason")
REPLAY = "replay"
TRADING = "trading"
T = TypeVar("T")


def _unchanged(text: str) -> str:
    return text


class Store:
    """The daemon's DuckDB file, seen as one variant; use as a context manager (`open` / `close`).

    Parameters
    ----------
    open_retries : further attempts when another process holds the file at write time,
        `retry_wait(RETRY_DELAY_S)` apart, before the minutes are left pending (and journaled).
        At start the store tries at least `START_RETRIES` times before it refuses.
    batch_minutes : the most minutes per write. 1 writes each minute as it is committed; more
        keeps minutes in memory until the current batch is full (or `flush`), for simulated and
        replayed runs, where a minute lost to a crash is decided again identically. The batch
        is 1 minute after `open` and doubles with each write up to this.
    redact : masks secrets in the free text written (a skip's reason, meta values), as the log
        redactor does: Schwab's error texts may quote a token.
    made_for : what a database this store creates is marked as ("trading" or "replay").
    replace : start from an empty file: a database already at the path is removed first, but
        only one gexbot made for a replay holding no other variant; anything else is refused.
    """

    def __init__(
        self,
        path: Path,
        variant: str,
        *,
        logger: logging.Logger | None = None,
        open_retries: int = 3,
        retry_wait: Callable[[float], None] = time.sleep,
        batch_minutes: int = 1,
        redact: Callable[[str], str] | None = None,
        made_for: str = TRADING,
        replace: bool = False,
    ) -> None:
        if batch_minutes < 1:
            raise ValueError(f"batch_minutes must be at least 1, got {batch_minutes}")
        self.path = Path(path)
        check_database_name(self.path)
        self.variant = variant
        self._log = logger if logger is not None else logging.getLogger("gexbot.store")
        self._open_retries = open_retries
        self._retry_wait = retry_wait
        self.batch_minutes = batch_minutes
        self._batch = 1
        self._redact = redact if redact is not None else _unchanged
        self._made_for = made_for
        self._replace = replace
        self._lock = InstanceLock(self.path, variant)
        self._journal = Journal(self.path, variant, "", self._log)
        self._journaled = 0
        """How many of the pending minutes, from the oldest, are already in the journal."""
        self._pending: list[PendingMinute] = []
        self._pending_meta: dict[str, str] = {}
        self._meta: dict[str, str] = {}
        self._stored_minute: datetime | None = None
        self._stored_state: str | None = None
        self._opened = False

    def open(self) -> Store:
        """Take the lock, create missing tables, read this variant's state, meta and journal.

        Nothing is created beside a path that is not a DuckDB file (or a new one).
        """
        check_database_path(self.path)
        self._lock.acquire()
        try:
            self._journal.check()
            if self._replace:
                remove_replay_database(self.path, self.variant, REPLAY, self._log)
            self._journal.database_id = self._storing(self._read_saved)
            self._opened = True
            self._warn_legacy_journal()
            self._recover_journal()
        except BaseException:
            self._opened = False
            self._lock.release()
            raise
        return self

    def _warn_legacy_journal(self) -> None:
        legacy = legacy_journal_path(self.path)
        if legacy.exists():
            self._log.warning(
                "%s was left by an older gexbot and does not say which variant and database its"
                " minutes belong to, so none is taken back; it stays as it is",
                legacy,
            )

    def _recover_journal(self) -> None:
        """Take back the minutes a killed run journaled while another process held the file."""
        stored = self._stored_minute
        items = [
            item
            for item in self._journal.load()
            if stored is None or item.minute > stored
        ]
        if not items:
            self._storing(self._journal.clear)
            return
        self._pending, self._journaled = items, len(items)
        self._log.warning(
            "%s: %d minute(s) recovered from %s", self.path, len(items), self._journal.path.name
        )
        self._flush()

    def close(self) -> None:
        """Write what is pending if the file is free, then let go of the file and the lock."""
        self._close(failing=None)

    def __enter__(self) -> Store:
        return self.open()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close(failing=value)

    def _close(self, *, failing: BaseException | None) -> None:
        """Close; while another exception is on its way out, a failed last write only logs
        (and says nothing when it failed for the same reason)."""
        if not self._opened:
            return
        self._opened = False
        try:
            if not self._flush():
                self._log.warning(
                    "%s: %d minute(s) left in %s for the next start (another process held"
                    " the file)",
                    self.path,
                    len(self._pending),
                    self._journal.path.name,
                )
        except GexbotError as problem:
            if failing is None:
                raise
            if str(problem) != str(failing):
                self._log.warning("%s: pending minutes not written on exit: %s", self.path, problem)
        except Exception:
            if failing is None:
                raise
            self._log.exception("%s: could not write the pending minutes on exit", self.path)
        finally:
            self._lock.release()

    @property
    def pending_minutes(self) -> tuple[datetime, ...]:
        """Minutes committed but not yet in the file (in memory, maybe journaled), oldest first."""
        return tuple(item.minute for item in self._pending)

    def commit(self, minute: datetime, events: Sequence[Event], state: State) -> bool:
        """Write the minute's decision, trades and state in one transaction, or keep them pending.

        A minute at or before the last one committed (written or pending) is a no-op: a rerun
        after a crash writes nothing twice and never moves the state backwards. Returns True
        when the minute is durable: in the file, or in the journal because a reader held the
        file. False means it waits in memory for its batch (see `batch_minutes`).
        """
        self._require_open()
        latest = self._pending[-1].minute if self._pending else self._stored_minute
        if latest is not None and minute <= latest:
            return True
        decisions, trades = [], []
        for event in events:
            if isinstance(event, Decided):
                decisions.append(self._cleaned(decision_row(event)))
            elif isinstance(event, Closed):
                trades.append(trade_row(event.trade))
        strangers = {row[0] for row in decisions} | {row[11] for row in trades}
        if strangers - {self.variant}:
            raise ValueError(f"events of {sorted(strangers)} committed to the {self.variant} store")
        item = PendingMinute(minute, tuple(decisions), tuple(trades), state_to_json(state))
        self._pending.append(item)
        if len(self._pending) - self._journaled < self._batch:
            return False
        self._flush()
        self._batch = min(2 * self._batch, self.batch_minutes)
        return True

    def _cleaned(self, row: Row) -> Row:
        """The row with its free text (a skip's reason may quote an error body) redacted."""
        reason = row[REASON_COLUMN]
        if reason is None:
            return row
        return (*row[:REASON_COLUMN], self._redact(reason), *row[REASON_COLUMN + 1 :])

    def flush(self) -> bool:
        """Write every pending minute and meta value now.

        False when another process holds the file: the minutes are then in the journal, safe
        from a kill, and go out with the next write.
        """
        self._require_open()
        return self._flush()

    def _flush(self) -> bool:
        if not self._pending and not self._pending_meta:
            return True
        try:
            self._storing(self._write_pending)
        except FileHeld:
            unjournaled = self._pending[self._journaled :]
            self._storing(lambda: self._journal.append(unjournaled))
            self._journaled = len(self._pending)
            self._log.warning(
                "%s: database held by another process (a reader or the other variant's"
                " daemon); %d minute(s) pending",
                self.path,
                len(self._pending),
            )
            return False
        if self._journaled:
            self._storing(self._journal.clear)
            self._journaled = 0
        return True

    def _storing(self, action: Callable[[], T]) -> T:
        """Run a write; a full disk or a read-only folder becomes one line (StorageError)."""
        try:
            return action()
        except (duckdb.Error, OSError) as problem:
            resume = ""
            if self._stored_minute is not None:
                resume = (f": it resumes after {self._stored_minute:%Y-%m-%d %H:%M %Z}, the"
                          " last minute written")
            failure = write_failure(self.path, problem, resume)
            if failure is None:
                raise
            raise failure from None

    def restore(self) -> State | None:
        """The state this variant last committed (written or journaled), None for a fresh file."""
        self._require_open()
        text = self._pending[self._journaled - 1].state if self._journaled else self._stored_state
        if text is None:
            return None
        try:
            return state_from_json(text)
        except StateFormatError as problem:
            raise ConfigError(
                f"{self.path}: saved state unreadable ({problem});"
                " move the database aside to start fresh"
            ) from None

    def last_committed(self) -> datetime | None:
        """The last minute written to the file for this variant (pending ones not included)."""
        self._require_open()
        return self._stored_minute

    def get_meta(self, key: str) -> str | None:
        """This variant's remembered value for `key`, or None."""
        self._require_open()
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> bool:
        """Remember `value` under `key` now, in its own transaction (pending if a reader holds)."""
        self._require_open()
        value = self._redact(value)
        self._meta[key] = value
        self._pending_meta[key] = value
        return self._flush()

    def _write_pending(self) -> None:
        """All pending minutes (in order) and meta values in one transaction."""
        with self._session(refuse=False) as con, transaction(con):
            if self._pending:
                write_decisions(con, [row for item in self._pending for row in item.decisions])
                write_trades(con, [row for item in self._pending for row in item.trades])
                last = self._pending[-1]
                con.execute(UPSERT_STATE, [self.variant, last.minute, last.state])
            for key, value in self._pending_meta.items():
                con.execute(UPSERT_META, [self.variant, key, value])
        if self._pending:
            last = self._pending[-1]
            self._stored_minute, self._stored_state = last.minute, last.state
            if self._journaled:
                self._log.info("%s: wrote %d pending minutes", self.path, len(self._pending))
        self._pending.clear()
        self._pending_meta.clear()

    def _read_saved(self) -> str:
        """Create what is missing, read this variant's state and meta; the database's id."""
        with self._session(refuse=True) as con:
            identity = ensure_schema(con, self.path, self._made_for)
            row = con.execute(
                'SELECT "at", state FROM state WHERE variant = ?', [self.variant]
            ).fetchone()
            if row is not None:
                self._stored_minute = row[0].astimezone(EASTERN)
                self._stored_state = row[1]
            meta = con.execute("SELECT key, value FROM meta WHERE variant = ?", [self.variant])
            self._meta = dict(meta.fetchall())
        return identity

    @contextlib.contextmanager
    def _session(self, *, refuse: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for this use only, closed after it: the file is free in between.

        `refuse`: when the file stays held, say so in one line (at start) instead of FileHeld
        (a write, whose minutes then go to the journal); the start waits longer, because the
        other variant's daemon may be writing a large batch.
        """
        con = self._connect_or_refuse() if refuse else self._connect(self._open_retries)
        try:
            yield con
        finally:
            con.close()

    def _connect_or_refuse(self) -> duckdb.DuckDBPyConnection:
        """Connect, or say in one line that another process keeps the file."""
        try:
            return self._connect(max(self._open_retries, START_RETRIES))
        except FileHeld:
            raise ConfigError(
                f"{self.path} is held open by another process (a reader such as duckdb or a"
                " notebook); close it and try again"
            ) from None

    def _connect(self, retries: int) -> duckdb.DuckDBPyConnection:
        """Open the file, retrying while another process holds it; FileHeld when it still does."""
        for attempt in range(retries + 1):
            if attempt:
                self._retry_wait(RETRY_DELAY_S)
            with contextlib.suppress(FileHeld):
                return connect(self.path)
        raise FileHeld

    def _require_open(self) -> None:
        if not self._opened:
            raise RuntimeError("Store used before open() or after close()")
