"""The results database of backtests: runs, their trades and their daily equity, in DuckDB.

Trades keep the daemon's `trades` columns, in its order and meanings, plus the run id, so the
queries written for the daemon's database work on a backtest's trades. A run id is a hash of
what the run depends on, so running the same backtest again replaces its rows instead of adding
a second copy; everything of a run is written in one transaction.

`check_results_database` looks at `--db` before any work (a backtest or a sweep may take
minutes): a folder, a file that is not a DuckDB database, a file another process holds open, a
folder that cannot take a new file, or a name DuckDB would read as something other than a local
file is refused in one line naming it, and nothing is created. A database a run created is
removed again if the run fails before writing to it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from gexbot.errors import ConfigError
from gexbot.shell.dbfile import FileHeld, check_database_path, connect, write_failure
from gexbot.shell.schema import TRADE_COLUMNS, transaction

RUN_COLUMNS = (
    ("run_id", "VARCHAR"), ("created_at", "TIMESTAMPTZ"), ("variant", "VARCHAR"),
    ("gexbot_version", "VARCHAR"), ("data", "VARCHAR"), ("features", "VARCHAR"),
    ("model_sha256", "VARCHAR"), ("preset", "VARCHAR"), ("overrides", "VARCHAR"),
    ("sessions", "INTEGER"), ("minutes", "INTEGER"), ("skipped_minutes", "INTEGER"),
    ("trades", "INTEGER"), ("wins", "INTEGER"), ("pnl", "DOUBLE"),
    ("max_drawdown", "DOUBLE"), ("sharpe", "DOUBLE"), ("sortino", "DOUBLE"),
    ("exposure", "DOUBLE"), ("end_balance", "DOUBLE"),
)
EQUITY_COLUMNS = (
    ("run_id", "VARCHAR"), ("session", "DATE"), ("pnl", "DOUBLE"), ("balance", "DOUBLE"),
    ("trades", "INTEGER"),
)
TABLES = {
    "backtest_runs": RUN_COLUMNS,
    "backtest_trades": (*TRADE_COLUMNS, ("run_id", "VARCHAR")),
    "backtest_equity": EQUITY_COLUMNS,
}


def check_results_database(path: Path) -> None:
    """ConfigError, touching nothing, unless results can be written to `path` now: the
    daemon's checks of the name and the file (`check_database_path`), then a file another
    process holds open, or a folder that cannot take a new file."""
    check_database_path(path)
    if path.exists():
        open_results(path).close()
        return
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"--db {path}: no folder {folder} to create it in")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--db {path}: the folder {folder} is not writable")


@contextlib.contextmanager
def results_database(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An open results database with its tables; ConfigError in one line if it cannot be, and
    StorageError in one line when a write in it fails for want of space or permission. A file
    this call created is removed when the block fails, so a failed run leaves none."""
    created = not path.exists()
    con = open_results(path)
    try:
        try:
            for table, columns in TABLES.items():
                _ensure(con, path, table, columns)
            yield con
        except (duckdb.Error, OSError) as problem:
            failure = write_failure(path, problem)
            if failure is None:
                raise
            raise failure from None
        finally:
            con.close()
    except BaseException:
        if created:
            for part in (path, path.with_name(path.name + ".wal")):
                part.unlink(missing_ok=True)
        raise


def open_results(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection to a results database of backtests or sweeps (made when missing).

    The same checks as the daemon's file: only a local DuckDB file, never another program's
    file (a SQLite file is refused before DuckDB would fetch an extension for it), never the
    in-memory database that would keep nothing; each refusal one line.
    """
    check_database_path(path)
    try:
        return connect(path)
    except FileHeld:
        raise ConfigError(
            f"{path} is held open by another process (another backtest or sweep, a reader);"
            " wait for it or pass another --db"
        ) from None


def _ensure(con: duckdb.DuckDBPyConnection, path: Path, table: str,
            columns: Sequence[tuple[str, str]]) -> None:
    found = [name for (name,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main'"
        " AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()]
    wanted = [name for name, _ in columns]
    if not found:
        body = ", ".join(f'"{name}" {kind}' for name, kind in columns)
        con.execute(f"CREATE TABLE {table} ({body})")
    elif found != wanted:
        raise ConfigError(
            f"{path}: table {table} has columns {', '.join(found)}, not the ones gexbot"
            " writes; pass another --db"
        )


def write_run(
    con: duckdb.DuckDBPyConnection,
    run: dict[str, Any],
    trades: Sequence[tuple[Any, ...]],
    equity: Sequence[tuple[Any, ...]],
) -> None:
    """Replace run `run["run_id"]`'s rows: its summary, its trades and its daily equity."""
    run_id = run["run_id"]
    frames = {
        "backtest_runs": pd.DataFrame([[run[name] for name, _ in RUN_COLUMNS]],
                                      columns=[name for name, _ in RUN_COLUMNS]),
        "backtest_trades": pd.DataFrame([(*row, run_id) for row in trades],
                                        columns=[n for n, _ in TABLES["backtest_trades"]]),
        "backtest_equity": pd.DataFrame([(run_id, *row) for row in equity],
                                        columns=[name for name, _ in EQUITY_COLUMNS]),
    }
    with transaction(con):
        for table, frame in frames.items():
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])  # noqa: S608
            if len(frame):
                con.register("incoming", frame)
                con.execute(f"INSERT INTO {table} SELECT * FROM incoming")  # noqa: S608
                con.unregister("incoming")
