"""Time and size of `python -m gexbot.report --sweep` for a sweep of 10,000 combinations.

    python -m bench.bench_report_sweep                       # 10,000 combinations, 250 sessions
    python -m bench.bench_report_sweep --values 5 --sessions 60
    python -m bench.bench_report_sweep --keep results.db     # keep the file (to open by hand)

Two results files are written with the sweep's own writer and figures (`SweepStore`,
`chunk_rows`, `sweep_figures`, a 60:20 walk-forward, shorter for short data), from synthetic
daily PnL (a small edge that depends on the parameters, noise, days without trades); building
them is not timed:

- a grid: 4 parameters × 10 values (as `bench/bench_sweep.py` sweeps);
- a random grid: as many points drawn at random, every value distinct (the maps bin them).

For each, the report of the sweep alone is written in this process (read, the deflated Sharpe
ratio of every combination, the stored logits of PBO, draw, write) and as the command a user
types (a fresh interpreter, imports included); wall-clock and CPU seconds, and the file's size.

Two baselines, measured in the same run: the obvious read of the daily PnL (`sweep_daily` as a
data frame pivoted to combinations × sessions) against the report's whole read of the sweep; and
measuring PBO again from the daily PnL (what the report would do if the sweep had not stored the
logit of each split, and does for a sweep stopped before its figures) against reading them.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

from gexbot.report.cli import main as report_main
from gexbot.report.sweepsource import read_sweep
from gexbot.research import metrics
from gexbot.research.enums import COUNTS_DTYPE
from gexbot.research.measure import chunk_rows, sweep_figures
from gexbot.research.overfitting import probability_of_backtest_overfitting
from gexbot.research.sweepdb import SweepStore
from gexbot.research.walkforward import walk_forward

AXES = {
    "strategy.ofi.long_above": (1.0, 3.25),
    "strategy.hurst.threshold": (0.3, 0.75),
    "strategy.bands.width_sigma": (1.0, 3.25),
    "strategy.stop_sigma": (1.5, 6.0),
}
CHUNK = 500


def parameters(values: int, random: bool, rng: np.random.Generator) -> np.ndarray:
    """(combinations, 4) parameter values: the product of `values` each, or as many drawn."""
    count = values ** len(AXES)
    if random:
        return np.column_stack([rng.uniform(lo, hi, count) for lo, hi in AXES.values()])
    grids = [np.linspace(lo, hi, values) for lo, hi in AXES.values()]
    return np.array(np.meshgrid(*grids, indexing="ij")).reshape(len(AXES), -1).T


def synthetic_daily(points: np.ndarray, sessions: int, rng: np.random.Generator) -> np.ndarray:
    """Daily PnL: an edge peaking inside the box, noise, and no trade on about half the days."""
    scaled = (points - points.min(axis=0)) / np.ptp(points, axis=0)
    edge = 2.0 - 6.0 * np.square(scaled - 0.6).sum(axis=1)
    noise = rng.normal(0.0, 12.0, (len(points), sessions))
    traded = rng.random((len(points), sessions)) < 0.5
    return np.where(traded, edge[:, None] + noise, 0.0)


def write_results(path: Path, values: int, sessions: int, random: bool, seed: int) -> int:
    """A results file of one sweep, written as the sweep writes it; returns the combinations."""
    rng = np.random.default_rng(seed)
    points = parameters(values, random, rng)
    daily = synthetic_daily(points, sessions, rng)
    trades = (daily != 0).astype(np.int64)
    combos = [f"{i:032x}" for i in range(len(points))]
    dates = np.busday_offset(np.datetime64("2025-01-06"), np.arange(sessions)).tolist()  # weekdays
    store = SweepStore(path)
    try:
        store.begin_sweep("bench0000000000a", {
            "variant": "es", "data": {"source": "sim", "seed": seed, "start": str(dates[0]),
                                      "days": sessions},
            "grid": "random.yaml" if random else "grid.yaml", "combinations": len(points),
            "sessions": sessions, "first_session": dates[0], "last_session": dates[-1],
            "gexbot_version": "bench"}, dict.fromkeys(AXES, "DOUBLE"))
        for lo in range(0, len(points), CHUNK):
            part = slice(lo, lo + CHUNK)
            counts = np.zeros(len(combos[part]), dtype=COUNTS_DTYPE)
            counts["trades"] = trades[part].sum(axis=1)
            counts["wins"] = (daily[part] > 0).sum(axis=1)
            counts["decided_minutes"] = 390 * sessions
            frame = chunk_rows(combos[part], "bench", {k: points[part, j] for j, k in
                                                       enumerate(AXES)},
                               daily[part], trades[part], counts)
            store.add_results("bench0000000000a", frame, daily[part], trades[part], dates)
        train = min(60, sessions // 2)
        walk = walk_forward(daily, trades, train, max(1, train // 3), metrics.sharpe)
        figures = sweep_figures(combos, daily, trades, dates, "sharpe", metrics.sharpe, walk)
        store.set_out_of_sample("bench0000000000a", figures.out_of_sample)
        store.set_walk_forward("bench0000000000a", figures.walk_forward_rows)
        store.set_pbo("bench0000000000a", figures.pbo_logits)
        store.set_summary("bench0000000000a", figures.summary)
    finally:
        store.close()
    return len(points)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def baseline_read(path: Path) -> float:
    """Seconds to read the daily PnL the obvious way: a frame of every row, pivoted."""
    started = time.perf_counter()
    with duckdb.connect(str(path), read_only=True) as con:
        frame = con.execute("SELECT combo, session, pnl FROM sweep_daily").df()
    matrix = frame.pivot(index="combo", columns="session", values="pnl").to_numpy()
    assert np.isfinite(matrix).all()
    return time.perf_counter() - started


def measure(path: Path, folder: Path, label: str) -> None:
    out = folder / f"{label}.html"
    started, cpu = time.perf_counter(), time.process_time()
    assert report_main(["--sweep", str(path), "--out", str(out)]) == 0, "the report failed"
    in_process, in_process_cpu = time.perf_counter() - started, time.process_time() - cpu
    command = [sys.executable, "-m", "gexbot.report", "--sweep", str(path), "--out", str(out)]
    started, before = time.perf_counter(), _children_cpu()
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603 (our module)
    whole, whole_cpu = time.perf_counter() - started, _children_cpu() - before
    started = time.perf_counter()
    sweep = read_sweep(path)
    read = time.perf_counter() - started
    obvious = baseline_read(path)
    started = time.perf_counter()
    again = probability_of_backtest_overfitting(sweep.daily.T)
    measured = time.perf_counter() - started
    assert sweep.logits is not None
    assert np.array_equal(again.logits, sweep.logits)
    print(f"{label}: report {out.stat().st_size / 1e6:.1f} MB; in process {in_process:.2f} s"
          f" ({in_process_cpu:.2f} s CPU); as a command {whole:.2f} s ({whole_cpu:.2f} s CPU)")
    print(f"{label}: reading the sweep {read:.2f} s; baseline, sweep_daily as a frame pivoted"
          f" {obvious:.2f} s ({obvious / read:.1f}x the report's whole read)")
    print(f"{label}: baseline, measuring PBO again ({again.splits:,} splits) {measured:.2f} s,"
          f" {measured / max(in_process, 1e-9):.1f}x the whole report in process")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=10, help="values per parameter (4 of them)")
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--keep", type=Path, help="write the grid's results file here, keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for label, random in (("grid", False), ("random grid", True)):
            path = folder / f"{label}.db" if args.keep is None or random else args.keep
            path.unlink(missing_ok=True)
            started = time.perf_counter()
            count = write_results(path, args.values, args.sessions, random, seed=7)
            print(f"{label}: {count:,} combinations x {args.sessions} sessions,"
                  f" {path.stat().st_size / 1e6:.1f} MB, written in"
                  f" {time.perf_counter() - started:.1f} s (not timed below)")
            measure(path, folder, label.replace(" ", "-"))


if __name__ == "__main__":
    main()
