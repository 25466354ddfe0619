"""The sweep's results database (DuckDB): one row per combination, written as results arrive.

Tables (docs/research-results.md describes every column):

- `sweeps`: one row per sweep: what was swept, over which sessions, the best combination and
  the overfitting figures (PBO, deflated Sharpe ratio), the walk-forward summary.
- `sweep_results`: one row per (sweep, combination): the combination's parameters in columns
  named by their dotted preset key, its in-sample statistics (every session) and, after a
  walk-forward, its out-of-sample ones (the sessions the walk-forward traded out of sample).
- `sweep_daily`: each combination's PnL and trades per session, what PBO, the deflated Sharpe
  ratio and the walk-forward are computed from, so a rerun that computes only the missing
  combinations still measures the whole sweep.
- `sweep_walk_forward`: the stitched out-of-sample equity, session by session, beside the
  in-sample equity of the combination that was best with hindsight.
- `sweep_pbo`: the logit of each train/test split of PBO, its distribution (the report draws
  it without measuring PBO again).

A chunk's rows go in one transaction, and a combination already stored is never written again,
so an interrupted sweep keeps what it finished and a retried chunk counts once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from gexbot.errors import ConfigError
from gexbot.research.resultsdb import open_results

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    sweep VARCHAR PRIMARY KEY, variant VARCHAR, data VARCHAR, grid VARCHAR, keys VARCHAR,
    combinations BIGINT, sessions INTEGER, first_session DATE, last_session DATE,
    gexbot_version VARCHAR, metric VARCHAR, best_combo VARCHAR, best_metric DOUBLE,
    best_pnl DOUBLE, best_sharpe DOUBLE, pbo DOUBLE, pbo_blocks INTEGER, pbo_splits BIGINT,
    pbo_oos_loss DOUBLE, dsr DOUBLE, dsr_sharpe_per_session DOUBLE,
    dsr_benchmark_per_session DOUBLE, dsr_skewness DOUBLE, dsr_kurtosis DOUBLE,
    wf_train_sessions INTEGER, wf_test_sessions INTEGER, wf_folds INTEGER,
    wf_oos_pnl DOUBLE, wf_oos_sharpe DOUBLE, wf_oos_trades BIGINT, wf_oos_max_drawdown DOUBLE,
    wf_is_pnl DOUBLE, wf_is_sharpe DOUBLE, wf_is_trades BIGINT, wf_is_max_drawdown DOUBLE
);
CREATE TABLE IF NOT EXISTS sweep_results (
    sweep VARCHAR, combo VARCHAR, table_key VARCHAR,
    is_sessions INTEGER, is_trades BIGINT, is_wins BIGINT, is_win_rate DOUBLE, is_pnl DOUBLE,
    is_sharpe DOUBLE, is_sortino DOUBLE, is_max_drawdown DOUBLE, is_exposure DOUBLE,
    stop_loss BIGINT, target BIGINT, regime_flip BIGINT, eod_flatten BIGINT,
    oos_sessions INTEGER, oos_trades BIGINT, oos_pnl DOUBLE, oos_sharpe DOUBLE,
    oos_sortino DOUBLE, oos_max_drawdown DOUBLE, wf_picked INTEGER,
    PRIMARY KEY (sweep, combo)
);
CREATE TABLE IF NOT EXISTS sweep_daily (
    sweep VARCHAR, combo VARCHAR, session DATE, pnl DOUBLE, trades INTEGER
);
CREATE TABLE IF NOT EXISTS sweep_pbo (
    sweep VARCHAR, split INTEGER, logit DOUBLE
);
CREATE TABLE IF NOT EXISTS sweep_walk_forward (
    sweep VARCHAR, session DATE, fold INTEGER, combo VARCHAR, pnl DOUBLE, cum_pnl DOUBLE,
    hindsight_combo VARCHAR, hindsight_pnl DOUBLE, hindsight_cum_pnl DOUBLE
);
"""

OUT_OF_SAMPLE_COLUMNS = ("oos_sessions", "oos_trades", "oos_pnl", "oos_sharpe", "oos_sortino",
                         "oos_max_drawdown", "wf_picked")
"""The columns of `sweep_results` a walk-forward fills in (NULL without one)."""


class SweepStore:
    """The results database of sweeps; one writer (the process running the sweep)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._con = open_results(self.path)
        try:
            self._con.execute(_SCHEMA)
        except duckdb.Error as problem:
            self._con.close()
            raise ConfigError(
                f"{self.path}: cannot use as the results database ({_first_line(problem)})"
            ) from None

    def close(self) -> None:
        """Close the database; what was committed stays."""
        self._con.close()

    def begin_sweep(
        self, sweep: str, about: Mapping[str, Any], parameters: Mapping[str, str]
    ) -> None:
        """Record the sweep (once) and give every parameter key a column of its SQL type."""
        existing = {row[0] for row in self._con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'sweep_results'"
        ).fetchall()}
        for key, sql_type in parameters.items():
            if key not in existing:
                self._con.execute(f'ALTER TABLE sweep_results ADD COLUMN "{key}" {sql_type}')
        self._con.execute(
            "INSERT INTO sweeps (sweep, variant, data, grid, keys, combinations, sessions,"
            " first_session, last_session, gexbot_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (sweep) DO NOTHING",
            [sweep, about["variant"], json.dumps(about["data"]), about["grid"],
             json.dumps(list(parameters)), about["combinations"], about["sessions"],
             about["first_session"], about["last_session"], about["gexbot_version"]],
        )

    def stored(self, sweep: str) -> set[str]:
        """The combinations of `sweep` already in the database."""
        rows = self._con.execute(
            "SELECT combo FROM sweep_results WHERE sweep = ?", [sweep]
        ).fetchall()
        return {row[0] for row in rows}

    def add_results(
        self, sweep: str, results: pd.DataFrame, daily: np.ndarray, trades: np.ndarray,
        dates: Sequence[date],
    ) -> int:
        """Write a chunk (rows of `results`, their daily PnL and trades) in one transaction.

        Combinations already stored are left as they are; returns how many rows were new.
        """
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            have = self.stored(sweep)
            fresh = ~results["combo"].isin(have).to_numpy()
            if fresh.any():
                rows = results[fresh].assign(sweep=sweep)
                con.register("chunk_results", rows)
                con.execute("INSERT INTO sweep_results BY NAME SELECT * FROM chunk_results")
                con.unregister("chunk_results")
                con.register("chunk_daily", _daily_table(
                    sweep, rows["combo"].tolist(), dates, daily[fresh], trades[fresh]))
                con.execute("INSERT INTO sweep_daily BY NAME SELECT * FROM chunk_daily")
                con.unregister("chunk_daily")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return int(fresh.sum())

    def daily(self, sweep: str, combos: Sequence[str], sessions: int) -> tuple[np.ndarray, ...]:
        """(pnl, trades) matrices (len(combos), sessions) of stored combinations, in order."""
        stored = [row[0] for row in self._con.execute(
            "SELECT DISTINCT combo FROM sweep_daily WHERE sweep = ? ORDER BY combo", [sweep]
        ).fetchall()]
        columns = self._con.execute(
            "SELECT pnl, trades FROM sweep_daily WHERE sweep = ? ORDER BY combo, session",
            [sweep],
        ).fetchnumpy()
        pnl = np.asarray(columns["pnl"], dtype=np.float64).reshape(len(stored), sessions)
        trades = np.asarray(columns["trades"], dtype=np.int64).reshape(len(stored), sessions)
        order = {combo: i for i, combo in enumerate(stored)}
        rows = [order[c] for c in combos]
        return pnl[rows], trades[rows]

    def set_out_of_sample(self, sweep: str, frame: pd.DataFrame) -> None:
        """Replace the out-of-sample columns of the sweep's rows with `frame`'s (by combo).

        Every out-of-sample column is cleared first, so a run without a walk-forward (whose
        frame holds only `combo`) leaves none of an earlier run's values behind.
        """
        con = self._con
        columns = [c for c in frame.columns if c != "combo"]
        unknown = set(columns) - set(OUT_OF_SAMPLE_COLUMNS)
        if unknown:
            raise ValueError(f"not out-of-sample columns: {sorted(unknown)}")
        con.execute("BEGIN TRANSACTION")
        try:
            cleared = ", ".join(f"{c} = NULL" for c in OUT_OF_SAMPLE_COLUMNS)
            con.execute(
                f"UPDATE sweep_results SET {cleared} WHERE sweep = ?",  # noqa: S608 (our names)
                [sweep],
            )
            if len(frame) and columns:
                con.register("oos", frame)
                assignments = ", ".join(f"{c} = oos.{c}" for c in columns)
                con.execute(
                    f"UPDATE sweep_results SET {assignments} FROM oos"  # noqa: S608 (our names)
                    " WHERE sweep_results.sweep = ? AND sweep_results.combo = oos.combo",
                    [sweep],
                )
                con.unregister("oos")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def set_walk_forward(self, sweep: str, frame: pd.DataFrame) -> None:
        """Replace the sweep's walk-forward equity rows."""
        self._con.execute("BEGIN TRANSACTION")
        self._con.execute("DELETE FROM sweep_walk_forward WHERE sweep = ?", [sweep])
        if len(frame):
            self._con.register("wf", frame.assign(sweep=sweep))
            self._con.execute("INSERT INTO sweep_walk_forward BY NAME SELECT * FROM wf")
            self._con.unregister("wf")
        self._con.execute("COMMIT")

    def set_pbo(self, sweep: str, logits: np.ndarray) -> None:
        """Replace the logit of each PBO split of the sweep (none when PBO was not measured)."""
        frame = pd.DataFrame({"split": np.arange(len(logits), dtype=np.int32),
                              "logit": np.asarray(logits, dtype=np.float64)})
        self._con.execute("BEGIN TRANSACTION")
        try:
            self._con.execute("DELETE FROM sweep_pbo WHERE sweep = ?", [sweep])
            if len(frame):
                self._con.register("pbo", frame.assign(sweep=sweep))
                self._con.execute("INSERT INTO sweep_pbo BY NAME SELECT * FROM pbo")
                self._con.unregister("pbo")
            self._con.execute("COMMIT")
        except BaseException:
            self._con.execute("ROLLBACK")
            raise

    def set_summary(self, sweep: str, figures: Mapping[str, Any]) -> None:
        """Write the sweep's best combination, overfitting and walk-forward figures."""
        names = list(figures)
        assignments = ", ".join(f"{name} = ?" for name in names)
        self._con.execute(
            f"UPDATE sweeps SET {assignments} WHERE sweep = ?",  # noqa: S608 (our names)
            [*(_plain(figures[n]) for n in names), sweep],
        )


def _daily_table(
    sweep: str, combos: list[str], dates: Sequence[date], daily: np.ndarray, trades: np.ndarray
) -> pa.Table:
    """Long rows (combo, session) of a chunk as Arrow, the names dictionary-encoded: a chunk
    of 500 combinations over a year is 125,000 rows, and strings repeated per row would cost
    more than the sweep itself."""
    sessions = len(dates)
    per_row = np.repeat(np.arange(len(combos), dtype=np.int32), sessions)
    return pa.table({
        "sweep": pa.DictionaryArray.from_arrays(np.zeros(len(per_row), dtype=np.int32),
                                                pa.array([sweep])),
        "combo": pa.DictionaryArray.from_arrays(per_row, pa.array(combos)),
        "session": pa.array(np.tile(np.array(dates, dtype="datetime64[D]"), len(combos))),
        "pnl": pa.array(daily.ravel()),
        "trades": pa.array(trades.ravel().astype(np.int32)),
    })


def _plain(value: Any) -> Any:
    """NumPy scalars and NaN as DuckDB takes them (NaN is NULL: not measured)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _first_line(problem: BaseException) -> str:
    return str(problem).strip().splitlines()[0] if str(problem).strip() else type(problem).__name__
