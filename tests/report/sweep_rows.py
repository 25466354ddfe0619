"""Results databases for the sweep section's tests.

`real_sweeps` runs `python -m gexbot.sweep`'s own code (a local Dask cluster of one worker)
over a few simulated sessions, once per test process: a three-parameter sweep with a
walk-forward, then a one-parameter sweep without one, into one file. `written_sweep` writes a
sweep's rows with the sweep's own writer and figures from a given daily PnL matrix, for the
shapes a short real run cannot give quickly (thousands of combinations, many sessions, ties).
"""

from __future__ import annotations

import atexit
import functools
import itertools
import shutil
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import duckdb
import numpy as np

from gexbot.research import metrics
from gexbot.research.enums import COUNTS_DTYPE
from gexbot.research.markets import DataSpec
from gexbot.research.measure import chunk_rows, sweep_figures
from gexbot.research.sweepdb import SweepStore
from gexbot.research.sweeper import SweepOutcome, SweepPlan, run_sweep
from gexbot.research.walkforward import walk_forward

DATA = DataSpec.sim(seed=7, start=date(2026, 10, 1), days=8)
GRID = """\
strategy.ofi.long_above: [1.5, 2.0, 2.5, 3.0]
strategy.hurst.threshold: [0.45, 0.55, 0.65]
strategy.bands.width_sigma: [1.5, 2.5]
"""
ONE_KEY = "strategy.stop_sigma: [2.0, 2.5, 3.0, 4.0]\n"
COMBINATIONS = 4 * 3 * 2


@functools.cache
def real_sweeps() -> tuple[Path, SweepOutcome, SweepOutcome]:
    """A results file holding the grid's sweep (walk-forward 4:2) and, written after it, the
    one-parameter sweep (no walk-forward); both outcomes as the sweep returned them."""
    folder = Path(tempfile.mkdtemp(prefix="gexbot-report-sweep-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    db = folder / "results.db"
    (folder / "grid.yaml").write_text(GRID, encoding="utf-8")
    (folder / "one.yaml").write_text(ONE_KEY, encoding="utf-8")
    base = {"variant": "es", "data": DATA, "db": db, "features": folder / "features",
            "workers": 1}
    grid = run_sweep(SweepPlan(grid=folder / "grid.yaml", walk_forward=(4, 2), **base),
                     lambda line: None, progress=False)
    one = run_sweep(SweepPlan(grid=folder / "one.yaml", **base), lambda line: None,
                    progress=False)
    return db, grid, one


def copy_of(db: Path, folder: Path, name: str = "results.db") -> Path:
    """A copy of a results file a test may change."""
    target = folder / name
    shutil.copyfile(db, target)
    return target


def written_sweep(
    path: Path,
    values: dict[str, Sequence[object]],
    daily: np.ndarray,
    *,
    walk: tuple[int, int] | None = None,
    sweep: str = "0123456789abcdef",
    grid: str = "grid.yaml",
    combos: Sequence[str] | None = None,
) -> Path:
    """A sweep of the product of `values` (grid order) with PnL `daily` (combinations ×
    sessions), its rows and figures written as `python -m gexbot.sweep` writes them."""
    rows = list(itertools.product(*values.values()))
    count, sessions = daily.shape
    assert count == len(rows)
    names = list(combos) if combos is not None else [f"c{i:08d}" for i in range(count)]
    dates = np.busday_offset(np.datetime64("2026-01-05"), np.arange(sessions)).tolist()  # weekdays
    trades = (np.abs(daily) > 0).astype(np.int64)
    counts = np.zeros(count, dtype=COUNTS_DTYPE)
    counts["trades"], counts["wins"] = trades.sum(axis=1), (daily > 0).sum(axis=1)
    counts["target"], counts["decided_minutes"] = counts["wins"], 390 * sessions
    frame = chunk_rows(names, "k", {key: [r[j] for r in rows] for j, key in enumerate(values)},
                       daily, trades, counts)
    types = {k: "VARCHAR" if any(isinstance(v, str) for v in vs) else "DOUBLE"
             for k, vs in values.items()}
    store = SweepStore(path)
    try:
        store.begin_sweep(sweep, {"variant": "es", "data": {"source": "sim", "seed": 1,
                                                             "start": "2026-01-05",
                                                             "days": sessions},
                                  "grid": grid, "combinations": count, "sessions": sessions,
                                  "first_session": dates[0], "last_session": dates[-1],
                                  "gexbot_version": "test"}, types)
        store.add_results(sweep, frame, daily, trades, dates)
        stepped = None if walk is None else walk_forward(daily, trades, *walk, metrics.sharpe)
        figures = sweep_figures(names, daily, trades, dates, "sharpe", metrics.sharpe, stepped)
        store.set_out_of_sample(sweep, figures.out_of_sample)
        store.set_walk_forward(sweep, figures.walk_forward_rows)
        store.set_pbo(sweep, figures.pbo_logits)
        store.set_summary(sweep, figures.summary)
    finally:
        store.close()
    return path


def execute(db: Path, *statements: str) -> None:
    """Change a results file as another program (or a damaged disk) might."""
    with duckdb.connect(str(db)) as con:
        for statement in statements:
            con.execute(statement)
