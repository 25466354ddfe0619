"""The tables as a reader sees them: a read-only connection for one query, no lock, no write.

Reconciliation and tests read a database that a daemon of either variant may be writing. They
open it read-only for the length of one query, like any `duckdb -readonly` user, so they never
take a daemon's lock, never create tables and never take back a journal. A writer holds the file
only while it commits, so a reader that finds it held tries again a few times before giving up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from gexbot.core.session import EASTERN
from gexbot.errors import ConfigError
from gexbot.shell.dbfile import FileHeld, connect_reader, first_line
from gexbot.shell.schema import DECISION_COLUMNS, TRADE_COLUMNS, Columns, names

READ_RETRIES = 10
READ_RETRY_DELAY_S = 0.2


def trades_frame(
    path: Path, variant: str | None = None, *, wait: Callable[[float], None] = time.sleep
) -> pd.DataFrame:
    """Written trades, oldest first, times in New York; all variants when `variant` is None."""
    return _frame(path, "trades", TRADE_COLUMNS, "timestamp", variant, None, wait)


def decisions_frame(
    path: Path,
    variant: str | None = None,
    since: datetime | None = None,
    *,
    wait: Callable[[float], None] = time.sleep,
) -> pd.DataFrame:
    """Written decisions, oldest first, from `since` on when given; times in New York."""
    return _frame(path, "decisions", DECISION_COLUMNS, "at", variant, since, wait)


def _frame(
    path: Path,
    table: str,
    columns: Columns,
    order: str,
    variant: str | None,
    since: datetime | None,
    wait: Callable[[float], None],
) -> pd.DataFrame:
    if not path.exists():
        raise ConfigError(f"{path}: no such database file")
    where: list[str] = ["TRUE"]
    params: list[object] = []
    if variant is not None:
        where.append("variant = ?")
        params.append(variant)
    if since is not None:
        where.append(f'"{order}" >= ?')
        params.append(since)
    sql = (
        f"SELECT {names(columns)} FROM {table} WHERE {' AND '.join(where)}"  # noqa: S608
        f' ORDER BY "{order}"'
    )
    con = _connect(path, wait)
    try:
        rows = con.execute(sql, params).fetchall()
    except duckdb.CatalogException:
        raise ConfigError(f"{path} has no {table} table: not a gexbot database?") from None
    except duckdb.Error as problem:
        raise ConfigError(f"{path}: {first_line(problem)}") from None
    finally:
        con.close()
    frame = pd.DataFrame.from_records(rows, columns=[name for name, _ in columns])
    for name, kind in columns:
        if kind == "TIMESTAMPTZ":
            frame[name] = pd.to_datetime(frame[name], utc=True).dt.tz_convert(EASTERN)
    return frame


def _connect(path: Path, wait: Callable[[float], None]) -> duckdb.DuckDBPyConnection:
    try:
        return connect_reader(path, wait, READ_RETRIES, READ_RETRY_DELAY_S)
    except FileHeld:
        raise ConfigError(
            f"{path} is held open by another process (a reader such as duckdb or a notebook);"
            " close it and try again"
        ) from None
