"""Reading a sweep's results database for the report: read-only, in one go, then let go.

`python -m gexbot.sweep` holds its results file while it runs, so the report retries for a
moment and then says so, as it does for a daemon's database. Everything the page draws comes
from four tables (docs/research-results.md): the `sweeps` row of the chosen sweep (and a line
of every other one, for the list on the page), its `sweep_results` rows, its daily PnL from
`sweep_daily` as a combinations × sessions matrix, and its `sweep_walk_forward` rows.

Rows are put in the grid's order (sorted by the parameters in the order the grid names them,
which is the order the sweep evaluated a grid of ascending values in), so that where
combinations tie, the report picks the one the sweep picked.

A file that is no results database, a sweep that is not there, a sweep without a single
stored combination, or tables that contradict each other are a `ConfigError` in one line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from gexbot.errors import ConfigError
from gexbot.report.source import check_file, connect_read_only, printable

TABLES = {
    "sweeps": ("sweep", "variant", "data", "grid", "keys", "combinations", "sessions",
               "first_session", "last_session", "metric", "best_combo", "best_metric", "pbo",
               "dsr", "wf_train_sessions", "wf_test_sessions", "wf_folds"),
    "sweep_results": ("sweep", "combo", "is_sharpe", "is_sortino", "is_pnl", "is_max_drawdown",
                      "is_trades", "wf_picked"),
    "sweep_daily": ("sweep", "combo", "session", "pnl"),
    "sweep_walk_forward": ("sweep", "session", "fold", "combo", "pnl", "cum_pnl",
                           "hindsight_combo", "hindsight_pnl", "hindsight_cum_pnl"),
}  # fmt: skip
"""The columns the report reads from each table, at least."""
METRIC_NAMES = ("sharpe", "sortino", "pnl", "max_drawdown")
"""What the sweep section's maps can show (`--metric`), each an `is_*` and `oos_*` column."""
SWEEP_HOLDS = "python -m gexbot.sweep keeps its results file while it runs; try again after it"
HINT = "pass the file python -m gexbot.sweep --db wrote"


@dataclass(frozen=True)
class Sweep:
    """One sweep of a results database, as the page draws it.

    `results` holds one row per stored combination in grid order; `daily[i]` is the PnL of
    `results` row i in each session of `dates`. `listing` has a row per sweep in the file,
    oldest first, with the number of combinations stored so far.
    """

    path: Path
    about: dict[str, Any]
    keys: tuple[str, ...]
    results: pd.DataFrame
    dates: tuple[date, ...]
    daily: np.ndarray
    walk_forward: pd.DataFrame
    listing: pd.DataFrame
    logits: np.ndarray | None
    """The logit of each PBO split as the sweep stored them (None when it stored none)."""

    @property
    def key(self) -> str:
        """The sweep's key (16 hex digits in a file the sweep wrote)."""
        return str(self.about["sweep"])


def read_sweep(
    path: Path, sweep: str | None = None, *, wait: Callable[[float], None] = time.sleep
) -> Sweep:
    """The sweep `sweep` (a key, or a prefix naming one) of the file, the latest when None."""
    path = Path(path)
    check_file(path, HINT)
    con = connect_read_only(path, wait, SWEEP_HOLDS, "--sweep")
    try:
        tables = _check_tables(con, path)
        listing = con.execute(
            "SELECT s.*, coalesce(r.stored, 0) AS stored FROM sweeps s LEFT JOIN"
            " (SELECT sweep, count(*) AS stored FROM sweep_results GROUP BY sweep) r"
            " USING (sweep) ORDER BY s.rowid"
        ).df()
        about = _chosen(path, listing, sweep)
        key = about["sweep"]
        keys = _keys(path, about)
        _check_parameters(con, path, keys)
        results = con.execute(
            "SELECT * FROM sweep_results WHERE sweep = ?", [key]).df()
        if results.empty:
            raise ConfigError(
                f"{path}: sweep {printable(key)} holds no combination yet (stopped before its"
                " first chunk was stored); run the same python -m gexbot.sweep command again"
            )
        order = list(dict.fromkeys([*keys, "combo"]))
        results = results.sort_values(order, kind="stable").reset_index(drop=True)
        dates, daily = _daily(con, path, key, results["combo"])
        walk = con.execute(
            "SELECT * FROM sweep_walk_forward WHERE sweep = ? ORDER BY session", [key]).df()
        logits = _logits(con, key, tables)
    except duckdb.Error as problem:
        first = (str(problem).strip().splitlines() or [type(problem).__name__])[0]
        raise ConfigError(f"{path}: cannot read the sweep ({printable(first)})") from None
    finally:
        con.close()
    return Sweep(path, about, keys, results, dates, daily, walk, listing, logits)


def _check_tables(con: duckdb.DuckDBPyConnection, path: Path) -> set[str]:
    """The file's tables, once those the report reads are found with their columns."""
    columns: dict[str, set[str]] = {}
    for table, name in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'main'"
    ).fetchall():
        columns.setdefault(table, set()).add(name)
    if "sweeps" not in columns:
        hint = ("it is a daemon's database: pass it as --db" if "decisions" in columns
                else HINT)
        raise ConfigError(f"{path} is not a sweep results database (it has no sweeps table);"
                          f" {hint}")
    for table, wanted in TABLES.items():
        missing = [name for name in wanted if name not in columns.get(table, set())]
        if missing:
            what = (f"it has no {table} table" if table not in columns
                    else f"table {table} lacks the column(s) {', '.join(missing)}")
            raise ConfigError(f"{path}: {what}; it was not written by python -m gexbot.sweep")
    return set(columns)


def _chosen(path: Path, listing: pd.DataFrame, wanted: str | None) -> dict[str, Any]:
    if listing.empty:
        raise ConfigError(f"{path} holds no sweep yet: run python -m gexbot.sweep --db on it")
    keys = [str(k) for k in listing["sweep"]]
    if wanted is None:
        row = len(keys) - 1
    else:
        matches = [i for i, k in enumerate(keys) if k == wanted]
        matches = matches or [i for i, k in enumerate(keys) if k.startswith(wanted)]
        if len(matches) != 1:
            held = ", ".join(printable(k) for k in keys[:8]) + (", ..." if len(keys) > 8 else "")
            which = "names more than one" if matches else "names none"
            raise ConfigError(
                f"--sweep-id {printable(wanted)} {which} of the sweeps in {path} ({held})")
        row = matches[0]
    about: dict[str, Any] = listing.iloc[row].to_dict()
    return about


def _keys(path: Path, about: dict[str, Any]) -> tuple[str, ...]:
    """The dotted parameter keys the sweep varied, from its `keys` JSON list."""
    try:
        keys = json.loads(str(about["keys"]))
    except ValueError:
        keys = None
    if (not isinstance(keys, list) or not keys
            or not all(isinstance(k, str) and k for k in keys)):
        raise ConfigError(
            f"{path}: the keys of sweep {printable(about['sweep'])} are not a list of parameter"
            f" names ({printable(about['keys'])})"
        )
    return tuple(dict.fromkeys(keys))


def _check_parameters(con: duckdb.DuckDBPyConnection, path: Path, keys: tuple[str, ...]) -> None:
    found = {name for (name,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main'"
        " AND table_name = 'sweep_results'").fetchall()}
    for key in keys:
        if key not in found:
            raise ConfigError(f"{path}: sweep_results has no column for the parameter"
                              f" {printable(key)}")


def _daily(
    con: duckdb.DuckDBPyConnection, path: Path, sweep: str, combos: pd.Series
) -> tuple[tuple[date, ...], np.ndarray]:
    """Each combination's PnL per session, rows in the order of `combos`.

    The rows are placed by joining small tables of row and column numbers rather than by
    sorting the whole table: a sweep of 10,000 combinations over a year has 2.5 million.
    """
    days = [d for (d,) in con.execute(
        "SELECT DISTINCT session FROM sweep_daily WHERE sweep = ? ORDER BY session",
        [sweep]).fetchall()]
    con.register("report_rows", pd.DataFrame({"combo": combos.astype(str).to_numpy(),
                                              "i": np.arange(len(combos), dtype=np.int64)}))
    con.register("report_days", pd.DataFrame({"session": pd.to_datetime(days).date,
                                              "j": np.arange(len(days), dtype=np.int64)}))
    try:
        placed = con.execute(
            "SELECT r.i, c.j, coalesce(d.pnl, 'NaN'::DOUBLE) AS pnl FROM sweep_daily d"
            " JOIN report_rows r USING (combo) JOIN report_days c USING (session)"
            " WHERE d.sweep = ?", [sweep]).fetchnumpy()
        ((rows,),) = con.execute("SELECT count(*) FROM sweep_daily WHERE sweep = ?",
                                 [sweep]).fetchall()
    finally:
        con.unregister("report_rows")
        con.unregister("report_days")
    cells = np.asarray(placed["i"]) * len(days) + np.asarray(placed["j"])
    once = np.bincount(cells, minlength=len(combos) * len(days))
    pnl = np.full(len(combos) * len(days), np.nan)
    pnl[cells] = np.asarray(placed["pnl"], dtype=np.float64)
    problem = None
    if rows != len(cells) or len(once) != pnl.size or not (once == 1).all():
        problem = (f"{rows:,} rows, {len(combos):,} combinations in sweep_results,"
                   f" {len(days):,} sessions: not one row per combination and session")
    elif not np.isfinite(pnl).all():
        problem = f"{int((~np.isfinite(pnl)).sum()):,} PnL values are missing or not finite"
    if problem is not None:
        raise ConfigError(f"{path}: sweep_daily of sweep {printable(sweep)} does not match its"
                          f" results ({problem}); it was not written by python -m gexbot.sweep")
    return tuple(days), pnl.reshape(len(combos), len(days))


def _logits(con: duckdb.DuckDBPyConnection, sweep: str, tables: set[str]) -> np.ndarray | None:
    """The logit of each PBO split the sweep stored, in split order; None when it stored none
    (a file written before the table existed, or a sweep stopped before its figures)."""
    if "sweep_pbo" not in tables:
        return None
    logits = np.asarray(con.execute(
        "SELECT logit FROM sweep_pbo WHERE sweep = ? ORDER BY split", [sweep]
    ).fetchnumpy()["logit"], dtype=np.float64)
    return logits if len(logits) and np.isfinite(logits).all() else None
