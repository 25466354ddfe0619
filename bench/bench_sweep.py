"""Combinations per second of a sweep on Dask, against a fold of `step` over the same data.

    python -m bench.bench_sweep                     # 10,000 combinations, 250 ES sessions
    python -m bench.bench_sweep --days 20 --values 5

The sweep is `python -m gexbot.sweep` as a library call: 10 values each of
strategy.ofi.long_above, strategy.hurst.threshold, strategy.bands.width_sigma and
strategy.stop_sigma over one simulated year (seed 7), on a LocalCluster of 2 worker processes,
into a fresh results database, with a 60:20 walk-forward, PBO and the deflated Sharpe ratio:
everything from reading the grid to the last figure is timed. The feature tables are built once
(timed apart) and reused from `--features` on later runs. The baseline, measured in the same
run, is the daemon's own `step` folded over the same sessions' snapshots (the first
`--step-days` of them, scaled to the year), the way one backtest of one combination runs without
the research kernel; the ratio says what the kernel and the cluster buy.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from datetime import date
from pathlib import Path

from gexbot.core.engine import EngineParams, end_session, initial_state, skip, step
from gexbot.errors import DataError
from gexbot.model_io import read_model
from gexbot.research.featureset import load_features
from gexbot.research.markets import DataSpec, MarketData
from gexbot.research.sweeper import SweepPlan, run_sweep
from gexbot.settings import load_variant

START = date(2026, 1, 2)
AXES = {
    "strategy.ofi.long_above": (1.0, 3.25),
    "strategy.hurst.threshold": (0.3, 0.75),
    "strategy.bands.width_sigma": (1.0, 3.25),
    "strategy.stop_sigma": (1.5, 6.0),
}


def _step_seconds_per_minute(spec: DataSpec, days: int) -> tuple[float, int]:
    """Seconds `step` takes per session minute over the first `days` sessions (snapshots
    fetched beforehand, so the simulated market is not counted)."""
    preset = load_variant("es")
    market = MarketData(spec, preset)
    sessions = market.sessions()[:days]
    days_minutes = [(s, list(market.minutes(s))) for s in sessions]
    count = sum(len(minutes) for _, minutes in days_minutes)
    params = EngineParams.from_preset(preset, read_model(preset.model_file()))
    state = initial_state(params)
    started = time.perf_counter()
    for session, minutes in days_minutes:
        for at, data in minutes:
            if isinstance(data, DataError):
                state, _ = skip(state, at, f"{data.kind}: {data}", params)
            else:
                state, _ = step(state, data, params)
        if state.session_date == session.date:
            state, _ = end_session(state, params)
    return (time.perf_counter() - started) / count, count


def main() -> None:
    """Print the sweep's wall time and rate, the step fold's rate, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--values", type=int, default=10, help="values per parameter")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--step-days", type=int, default=5)
    parser.add_argument("--features", type=Path,
                        default=Path(tempfile.gettempdir()) / "gexbot-bench-features")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    spec = DataSpec.sim(seed=7, start=START, days=args.days)

    started = time.perf_counter()
    features = load_features("es", spec, args.features)
    print(f"feature tables: {features.n_sessions} sessions, {features.n_minutes:,} minutes,"
          f" ready in {time.perf_counter() - started:.1f} s (built now or reused)")

    with tempfile.TemporaryDirectory() as folder:
        grid = Path(folder) / "grid.yaml"
        grid.write_text("".join(
            f"{key}: {{linspace: [{low}, {high}, {args.values}]}}\n"
            for key, (low, high) in AXES.items()
        ))
        plan = SweepPlan(variant="es", data=spec, grid=grid, db=Path(folder) / "sweep.db",
                         features=args.features, workers=args.workers, walk_forward=(60, 20))
        started = time.perf_counter()
        outcome = run_sweep(plan, lambda line: print("  " + line), progress=False)
        sweep_s = time.perf_counter() - started
        started = time.perf_counter()
        run_sweep(plan, lambda line: None, progress=False)
        rerun_s = time.perf_counter() - started
    combos = len(outcome.combos)
    sweep_rate = combos / sweep_s
    print(f"sweep: {combos:,} combinations x {features.n_sessions} sessions on"
          f" {args.workers} local workers in {sweep_s:.1f} s = {sweep_rate:,.0f} combinations/s"
          f" (cluster start, validation, storage and figures included)")
    print(f"rerun of the same sweep (everything stored): {rerun_s:.1f} s")

    per_minute, counted = _step_seconds_per_minute(spec, args.step_days)
    step_rate = 1.0 / (per_minute * features.n_minutes)
    print(f"baseline: step folded over {counted:,} minutes at {1 / per_minute:,.0f} minutes/s"
          f" = {step_rate:.3f} combinations/s over the year (one process)")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average of the machine (1, 5, 15 min): {load} on {os.cpu_count()} cores")
    print(f"ratio: the sweep evaluates {sweep_rate / step_rate:,.0f}x more combinations per"
          " second than folding step")


if __name__ == "__main__":
    main()
