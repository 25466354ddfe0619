"""The DuckDB tables gexbot writes, the rows that go into them, and the SQL that writes them.

`trades` keeps the seed's seven columns first, by their names and meanings, so the seed's
queries and notebooks still work; what a round trip adds follows them. Every table has a key
(a seed `trades` table inherited without one is matched on the same columns), which is what
makes writing a minute twice, after a crash and a restart, a no-op.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb

from gexbot.core.types import Decided, Trade
from gexbot.errors import ConfigError

Row = tuple[Any, ...]
Columns = tuple[tuple[str, str], ...]


def _columns(spec: str) -> Columns:
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
TABLES: dict[str, tuple[Columns, tuple[str, ...]]] = {
    "trades": (TRADE_COLUMNS, ("variant", "timestamp", "entry_time")),
    "decisions": (DECISION_COLUMNS, ("variant", "at")),
    "state": (STATE_COLUMNS, ("variant",)),
    "meta": (META_COLUMNS, ("variant", "key")),
}
"""Each table's columns and key; the key is what makes a repeated write a no-op."""
WHOLE_DATABASE = ""
"""The `meta.variant` of facts about the database itself rather than one variant."""
DATABASE_ID = "database_id"
"""A random id made with the tables: journal lines name it, so they go back to no other file."""
MADE_FOR = "made_for"
"""What the run that created the tables was ("trading" or "replay"); absent for older files."""

ROWS_PER_STATEMENT = 500
"""Decision rows per multi-row INSERT: one statement per batch instead of one per row (DuckDB
pays about 1.5 ms per statement, so a session of 390 rows goes from ~0.6 s to ~15 ms)."""


def names(columns: Sequence[tuple[str, str]]) -> str:
    """The quoted column list of an SQL statement."""
    return ", ".join(f'"{name}"' for name, _ in columns)


def _marks(count: int) -> str:
    return "(" + ", ".join("?" * count) + ")"


# No ON CONFLICT here: a trades table inherited from the seed has no key to conflict on.
INSERT_TRADE = (
    f"INSERT INTO trades ({names(TRADE_COLUMNS)})"  # noqa: S608 (constants only)
    f" SELECT {_marks(len(TRADE_COLUMNS))[1:-1]}"
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
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Everything inside commits together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def write_decisions(con: duckdb.DuckDBPyConnection, rows: Sequence[Row]) -> None:
    """Insert decision rows, a minute already present being left as it is."""
    width = len(DECISION_COLUMNS)
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        values = ", ".join([_marks(width)] * len(chunk))
        con.execute(
            f"INSERT INTO decisions ({names(DECISION_COLUMNS)}) VALUES {values}"  # noqa: S608
            " ON CONFLICT DO NOTHING",
            [value for row in chunk for value in row],
        )


def write_trades(con: duckdb.DuckDBPyConnection, rows: Sequence[Row]) -> None:
    """Insert trade rows, a round trip already present (same variant, exit, entry) left alone."""
    for row in rows:
        con.execute(INSERT_TRADE, [*row, row[11], row[0], row[7]])


def ensure_schema(con: duckdb.DuckDBPyConnection, path: Path, made_for: str) -> str:
    """Create missing tables; extend a seed `trades` table whose columns are a prefix of ours.

    Returns the database's id, made on first use. A database whose tables are created here is
    marked as `made_for` ("trading", "replay"), so that only a replay's own file is ever
    replaced by the next replay.
    """
    fresh = False
    with transaction(con):
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
                fresh = fresh or table == "decisions"
            elif table == "trades" and existing == wanted[: len(existing)]:
                for name, kind in columns[len(existing) :]:
                    con.execute(f'ALTER TABLE trades ADD COLUMN "{name}" {kind}')
            elif existing != wanted:
                raise ConfigError(
                    f"{path}: table {table} has columns {', '.join(existing)}, not the ones"
                    " gexbot writes; move the database aside or pass another --db"
                )
        identity = database_fact(con, DATABASE_ID)
        if identity is None:
            identity = uuid.uuid4().hex
            con.execute(UPSERT_META, [WHOLE_DATABASE, DATABASE_ID, identity])
        if fresh:
            con.execute(UPSERT_META, [WHOLE_DATABASE, MADE_FOR, made_for])
    return identity


def database_fact(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """A fact about the whole database (`DATABASE_ID`, `MADE_FOR`), None when not recorded."""
    if not _has_table(con, "meta"):
        return None
    row = con.execute(
        "SELECT value FROM meta WHERE variant = ? AND key = ?", [WHOLE_DATABASE, key]
    ).fetchone()
    return None if row is None else str(row[0])


def variants_in(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every variant with a row in the database (a seed trade without one counts as "")."""
    found: set[str] = set()
    for table in TABLES:
        if _has_table(con, table):
            rows = con.execute(
                f"SELECT DISTINCT variant FROM {table}"  # noqa: S608 (constants only)
                + (" WHERE variant <> ?" if table == "meta" else ""),
                [WHOLE_DATABASE] if table == "meta" else [],
            ).fetchall()
            found.update(str(variant or "") for (variant,) in rows)
    return found


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables"
        " WHERE table_schema = 'main' AND table_name = ?",
        [table],
    ).fetchone()
    return found is not None and found[0] > 0
