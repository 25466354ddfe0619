"""DuckDB store: trades, decisions and the engine state, one transaction per minute.

A minute's decision row, its closed trades and the state that follows it are written in one
transaction, keyed by (variant, minute): a restart after a crash continues from the last
committed state, and a minute committed twice writes nothing twice. The daemon is the only
writer of its file (an `InstanceLock` beside it keeps a second daemon out), so the state and
metadata read at `open` and kept current by each write are the truth; only the frames read the
file again.

DuckDB lets no other process open a file that one holds, not even read-only. Unless asked to
hold the file (`hold_open`, for runs as fast as the clock allows), the store opens it only to
write a minute. When a reader holds it then, the minute stays pending in memory and goes out
with the next successful write, in order, in one transaction; nothing is lost or doubled.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pandas as pd

from gexbot.core.session import EASTERN
from gexbot.core.types import Closed, Decided, Event, State, Trade
from gexbot.errors import ConfigError
from gexbot.shell.lock import InstanceLock
from gexbot.shell.state_codec import StateFormatError, state_from_json, state_to_json


def _columns(spec: str) -> tuple[tuple[str, str], ...]:
    """(name, SQL type) pairs from "name TYPE, name TYPE" text."""
    return tuple((name, kind) for name, kind in (item.split() for item in spec.split(",")))


TRADE_COLUMNS = _columns(
    "timestamp TIMESTAMPTZ, symbol VARCHAR, action VARCHAR, price DOUBLE, size DOUBLE,"
    " regime VARCHAR, pnl DOUBLE,"
    " entry_time TIMESTAMPTZ, entry_price DOUBLE, exit_reason VARCHAR, bucket VARCHAR,"
    " variant VARCHAR"
)
"""The seed's seven columns first, by their names and meanings, then what a round trip adds."""
DECISION_COLUMNS = _columns(
    "variant VARCHAR, at TIMESTAMPTZ, spot DOUBLE, net_gex DOUBLE, gex_regime VARCHAR,"
    " ofi DOUBLE, hurst DOUBLE, hmm_state VARCHAR, band_mid DOUBLE, band_upper DOUBLE,"
    " band_lower DOUBLE, position VARCHAR, target DOUBLE, stop DOUBLE, action VARCHAR,"
    " reason VARCHAR, blocked_by VARCHAR, balance DOUBLE, excluded_contracts INTEGER"
)
STATE_COLUMNS = _columns("variant VARCHAR, at TIMESTAMPTZ, state VARCHAR")
META_COLUMNS = _columns("variant VARCHAR, key VARCHAR, value VARCHAR")
TABLES: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "trades": (TRADE_COLUMNS, ("variant", "timestamp", "entry_time")),
    "decisions": (DECISION_COLUMNS, ("variant", "at")),
    "state": (STATE_COLUMNS, ("variant",)),
    "meta": (META_COLUMNS, ("variant", "key")),
}
"""Each table's columns and key; the key is what makes a repeated write a no-op."""

RETRY_DELAY_S = 0.2

Row = tuple[Any, ...]


def _names(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f'"{name}"' for name, _ in columns)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


INSERT_DECISION = (
    f"INSERT INTO decisions ({_names(DECISION_COLUMNS)})"  # noqa: S608 (constants only)
    f" VALUES ({_marks(len(DECISION_COLUMNS))}) ON CONFLICT DO NOTHING"
)
# No ON CONFLICT here: a trades table inherited from the seed has no key to conflict on.
INSERT_TRADE = (
    f"INSERT INTO trades ({_names(TRADE_COLUMNS)})"  # noqa: S608 (constants only)
    f" SELECT {_marks(len(TRADE_COLUMNS))}"
    ' WHERE NOT EXISTS (SELECT 1 FROM trades WHERE variant = ? AND "timestamp" = ?'
    " AND entry_time = ?)"
)
UPSERT_STATE = (
    'INSERT INTO state (variant, "at", state) VALUES (?, ?, ?) ON CONFLICT (variant)'
    ' DO UPDATE SET "at" = excluded."at", state = excluded.state'
    ' WHERE excluded."at" > state."at"'
)
UPSERT_META = (
    "INSERT INTO meta (variant, key, value) VALUES (?, ?, ?) ON CONFLICT (variant, key)"
    " DO UPDATE SET value = excluded.value"
)


def decision_row(decided: Decided) -> Row:
    """The `decisions` row of one minute, in DECISION_COLUMNS order; NULL for unknown features."""
    f = decided.features
    seen = (
        (f.net_gex, _value(f.gex_regime), f.ofi, f.hurst, _value(f.hmm_state),
         f.band_mid, f.band_upper, f.band_lower)
        if f is not None
        else (None,) * 8
    )
    blocked = ",".join(blocker.value for blocker in decided.blocked_by) or None
    return (
        decided.variant, decided.at, decided.spot, *seen, _value(decided.position),
        decided.target, decided.stop, decided.action.value, decided.reason, blocked,
        decided.balance, f.excluded_contracts if f is not None else None,
    )


def trade_row(trade: Trade) -> Row:
    """The `trades` row of one round trip, in TRADE_COLUMNS order."""
    return (
        trade.exit_time, trade.symbol, trade.direction.value, trade.exit_price, trade.size_usd,
        _value(trade.exit_regime), trade.pnl,
        trade.entry_time, trade.entry_price, trade.exit_reason.value, trade.bucket, trade.variant,
    )


def _value(member: StrEnum | None) -> str | None:
    return member.value if member is not None else None


@contextlib.contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Everything inside commits together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def _write_decisions(con: duckdb.DuckDBPyConnection, rows: Sequence[Row]) -> None:
    for row in rows:
        con.execute(INSERT_DECISION, row)


def _write_trades(con: duckdb.DuckDBPyConnection, rows: Sequence[Row]) -> None:
    for row in rows:
        con.execute(INSERT_TRADE, [*row, row[11], row[0], row[7]])


@dataclass(frozen=True, slots=True)
class _Minute:
    """One minute's writes, ready to go out: rows in column order and the state text."""

    minute: datetime
    decisions: tuple[Row, ...]
    trades: tuple[Row, ...]
    state: str


class _Held(Exception):
    """Another process (a reader) holds the database file."""


class Store:
    """The daemon's DuckDB file for one variant; use as a context manager (`open` / `close`).

    Parameters
    ----------
    hold_open : keep one connection for the store's life (fast; readers are kept out) instead
        of opening the file for each write (about 20 ms more; readers welcome in between).
    open_retries : further attempts when a reader holds the file, `retry_wait(RETRY_DELAY_S)`
        apart, before a minute is left pending.
    """

    def __init__(
        self,
        path: Path,
        variant: str,
        *,
        hold_open: bool,
        logger: logging.Logger | None = None,
        open_retries: int = 3,
        retry_wait: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(path)
        self.variant = variant
        self.hold_open = hold_open
        self._log = logger if logger is not None else logging.getLogger("gexbot.store")
        self._open_retries = open_retries
        self._retry_wait = retry_wait
        self._lock = InstanceLock(self.path)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._pending: list[_Minute] = []
        self._pending_meta: dict[str, str] = {}
        self._meta: dict[str, str] = {}
        self._stored_minute: datetime | None = None
        self._stored_state: str | None = None
        self._opened = False

    def open(self) -> Store:
        """Take the instance lock, create missing tables and read this variant's state and meta."""
        self._lock.acquire()
        try:
            if self.hold_open:
                self._con = self._connect_or_refuse()
            with self._session(refuse=True) as con:
                _ensure_schema(con, self.path)
                self._read_saved(con)
        except BaseException:
            self._disconnect()
            self._lock.release()
            raise
        self._opened = True
        return self

    def close(self) -> None:
        """Write what is pending if the file is free, then let go of the file and the lock."""
        self._close(failing=False)

    def __enter__(self) -> Store:
        return self.open()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close(failing=kind is not None)

    def _close(self, *, failing: bool) -> None:
        """Close; while another exception is on its way out, a failed last write only logs."""
        if not self._opened:
            return
        self._opened = False
        try:
            if not self._flush():
                count = len(self._pending)
                self._log.warning("%s: %d minute(s) never written (a reader)", self.path, count)
        except Exception:
            if not failing:
                raise
            self._log.exception("%s: could not write the pending minutes on exit", self.path)
        finally:
            self._disconnect()
            self._lock.release()

    @property
    def pending_minutes(self) -> tuple[datetime, ...]:
        """Minutes committed to memory but not yet to the file, oldest first."""
        return tuple(item.minute for item in self._pending)

    def commit(self, minute: datetime, events: Sequence[Event], state: State) -> bool:
        """Write the minute's decision, trades and state in one transaction, or keep them pending.

        A minute at or before the last one committed (written or pending) is a no-op: a rerun
        after a crash writes nothing twice and never moves the state backwards. Returns False
        when a reader held the file and the minute is pending.
        """
        self._require_open()
        latest = self._pending[-1].minute if self._pending else self._stored_minute
        if latest is not None and minute <= latest:
            return True
        decisions, trades = [], []
        for event in events:
            if isinstance(event, Decided):
                decisions.append(decision_row(event))
            elif isinstance(event, Closed):
                trades.append(trade_row(event.trade))
        strangers = {row[0] for row in decisions} | {row[11] for row in trades}
        if strangers - {self.variant}:
            raise ValueError(f"events of {sorted(strangers)} committed to the {self.variant} store")
        self._pending.append(_Minute(minute, tuple(decisions), tuple(trades), state_to_json(state)))
        return self._flush()

    def flush(self) -> bool:
        """Write every pending minute and meta value now; False when a reader holds the file."""
        self._require_open()
        return self._flush()

    def _flush(self) -> bool:
        if not self._pending and not self._pending_meta:
            return True
        try:
            with self._session(refuse=False) as con:
                self._write_pending(con)
        except _Held:
            n = len(self._pending)
            self._log.warning("%s: database held by a reader; %d minute(s) pending", self.path, n)
            return False
        return True

    def restore(self) -> State | None:
        """The state this variant last committed, or None for a fresh database."""
        self._require_open()
        if self._stored_state is None:
            return None
        try:
            return state_from_json(self._stored_state)
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
        self._meta[key] = value
        self._pending_meta[key] = value
        return self._flush()

    def trades_frame(self, variant: str | None = None) -> pd.DataFrame:
        """Written trades, oldest first, times in New York; all variants when `variant` is None."""
        return self._frame("trades", TRADE_COLUMNS, "timestamp", variant, None)

    def decisions_frame(
        self, variant: str | None = None, since: datetime | None = None
    ) -> pd.DataFrame:
        """Written decisions, oldest first, from `since` on when given; times in New York."""
        return self._frame("decisions", DECISION_COLUMNS, "at", variant, since)

    def _frame(
        self,
        table: str,
        columns: Sequence[tuple[str, str]],
        order: str,
        variant: str | None,
        since: datetime | None,
    ) -> pd.DataFrame:
        self._require_open()
        where: list[str] = ["TRUE"]
        params: list[object] = []
        if variant is not None:
            where.append("variant = ?")
            params.append(variant)
        if since is not None:
            where.append(f'"{order}" >= ?')
            params.append(since)
        sql = (
            f"SELECT {_names(columns)} FROM {table} WHERE {' AND '.join(where)}"  # noqa: S608
            f' ORDER BY "{order}"'
        )
        with self._session(refuse=True) as con:
            rows = con.execute(sql, params).fetchall()
        frame = pd.DataFrame.from_records(rows, columns=[name for name, _ in columns])
        for name, kind in columns:
            if kind == "TIMESTAMPTZ":
                frame[name] = pd.to_datetime(frame[name], utc=True).dt.tz_convert(EASTERN)
        return frame

    def _write_pending(self, con: duckdb.DuckDBPyConnection) -> None:
        """All pending minutes (in order) and meta values in one transaction."""
        with _transaction(con):
            for item in self._pending:
                _write_decisions(con, item.decisions)
                _write_trades(con, item.trades)
                con.execute(UPSERT_STATE, [self.variant, item.minute, item.state])
            for key, value in self._pending_meta.items():
                con.execute(UPSERT_META, [self.variant, key, value])
        if self._pending:
            last = self._pending[-1]
            self._stored_minute, self._stored_state = last.minute, last.state
            if len(self._pending) > 1:
                self._log.info("%s: wrote %d pending minutes", self.path, len(self._pending))
        self._pending.clear()
        self._pending_meta.clear()

    def _read_saved(self, con: duckdb.DuckDBPyConnection) -> None:
        row = con.execute(
            'SELECT "at", state FROM state WHERE variant = ?', [self.variant]
        ).fetchone()
        if row is not None:
            self._stored_minute = row[0].astimezone(EASTERN)
            self._stored_state = row[1]
        meta = con.execute("SELECT key, value FROM meta WHERE variant = ?", [self.variant])
        self._meta = dict(meta.fetchall())

    @contextlib.contextmanager
    def _session(self, *, refuse: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """The held connection, or one opened for this use and closed after it."""
        if self._con is not None:
            yield self._con
            return
        con = self._connect_or_refuse() if refuse else self._connect()
        try:
            yield con
        finally:
            con.close()

    def _connect_or_refuse(self) -> duckdb.DuckDBPyConnection:
        """Connect, or say in one line that another process keeps the file."""
        try:
            return self._connect()
        except _Held:
            raise ConfigError(
                f"{self.path} is held open by another process (a reader such as duckdb or a"
                " notebook); close it and try again"
            ) from None

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Open the file, retrying while a reader holds it; _Held when it still does."""
        for attempt in range(self._open_retries + 1):
            if attempt:
                self._retry_wait(RETRY_DELAY_S)
            try:
                con = duckdb.connect(str(self.path))
            except duckdb.Error as problem:
                if _is_lock_conflict(problem):
                    continue
                raise ConfigError(f"{self.path}: {_first_line(problem)}") from None
            con.execute("SET TimeZone = 'UTC'")
            return con
        raise _Held

    def _disconnect(self) -> None:
        if self._con is not None:
            con, self._con = self._con, None
            con.close()

    def _require_open(self) -> None:
        if not self._opened:
            raise RuntimeError("Store used before open() or after close()")


def _ensure_schema(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Create missing tables; extend a seed `trades` table whose columns are a prefix of ours."""
    with _transaction(con):
        for table, (columns, key) in TABLES.items():
            found = con.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                [table],
            ).fetchall()
            existing = [name for (name,) in found]
            wanted = [name for name, _ in columns]
            if not existing:
                body = ", ".join(f'"{name}" {kind}' for name, kind in columns)
                keys = ", ".join(f'"{name}"' for name in key)
                con.execute(f"CREATE TABLE {table} ({body}, PRIMARY KEY ({keys}))")
            elif table == "trades" and existing == wanted[: len(existing)]:
                for name, kind in columns[len(existing) :]:
                    con.execute(f'ALTER TABLE trades ADD COLUMN "{name}" {kind}')
            elif existing != wanted:
                raise ConfigError(
                    f"{path}: table {table} has columns {', '.join(existing)}, not the ones"
                    " gexbot writes; move the database aside or pass another --db"
                )


def _is_lock_conflict(problem: duckdb.Error) -> bool:
    return isinstance(problem, duckdb.IOException) and "lock" in str(problem).lower()


def _first_line(problem: BaseException) -> str:
    lines = str(problem).strip().splitlines()
    return lines[0] if lines else type(problem).__name__
