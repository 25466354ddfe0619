"""Research speed: feature tables of a simulated year, one backtest, many, against `step`.

    python -m bench.bench_research                  # 250 ES sessions from 2026-01-02, seed 7
    python -m bench.bench_research --days 20 --combinations 200

Prints, measured in the same run:
- the time to build the feature tables of every session (fresh folder, `--workers` processes);
- one backtest of the shipped preset over them (the compiled kernel, best of 5, after the
  compilation, which numba caches on disk);
- the same year folded through `step` minute by minute, as the daemon and a replay decide it
  (snapshots made beforehand, session by session, and not timed), and the ratio;
- `evaluate_many` over a grid of combinations in one process: combinations per second.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from gexbot.core.engine import EngineParams, initial_state, step
from gexbot.errors import DataError
from gexbot.model_io import read_model
from gexbot.research import DataSpec, backtest, evaluate_many, load_features
from gexbot.research.markets import MarketData
from gexbot.settings import load_variant


def _step_seconds(spec: DataSpec, variant: str, sessions: int) -> tuple[float, int]:
    """Seconds `step` takes over the first `sessions` sessions' minutes (made untimed)."""
    preset = load_variant(variant)
    params = EngineParams.from_preset(preset, read_model(preset.model_file()))
    market = MarketData(spec, preset)
    state = initial_state(params)
    spent, minutes = 0.0, 0
    for session in market.sessions()[:sessions]:
        snapshots = [data for _, data in market.minutes(session)
                     if not isinstance(data, DataError)]
        started = time.perf_counter()
        for snapshot in snapshots:
            state, _ = step(state, snapshot, params)
        spent += time.perf_counter() - started
        minutes += len(snapshots)
    return spent, minutes


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="es", choices=["es", "nq"])
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 2))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--combinations", type=int, default=1000)
    parser.add_argument("--step-sessions", type=int, help="sessions folded by step (default all)")
    args = parser.parse_args()
    spec = DataSpec.sim(args.seed, args.start, args.days)

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        features = load_features(args.variant, spec, Path(folder), workers=args.workers)
        build = time.perf_counter() - started
    backtest(features)  # compile, or load the compiled kernel from numba's cache
    one = min(_timed(lambda: backtest(features)) for _ in range(5))
    run = backtest(features)
    n = features.n_minutes

    side = max(1, round(args.combinations ** 0.25))
    grid = itertools.product(
        [1.5 + 0.25 * i for i in range(side)], [0.3 + 0.05 * i for i in range(side)],
        [1.5 + 0.1 * i for i in range(side)], [2.0 + 0.25 * i for i in range(side)])
    overrides = [{"strategy.ofi.long_above": a, "strategy.hurst.threshold": b,
                  "strategy.bands.width_sigma": c, "strategy.stop_sigma": d}
                 for a, b, c, d in grid]
    evaluate_many(features, None, overrides[:2])  # compile, or load the compiled kernel
    started = time.perf_counter()
    evaluate_many(features, None, overrides)
    many = time.perf_counter() - started

    sessions = args.step_sessions or features.n_sessions
    stepped, step_minutes = _step_seconds(spec, args.variant, sessions)
    step_per_year = stepped / step_minutes * n

    print(f"{args.variant}: {features.n_sessions} sessions from {features.dates[0]}, seed"
          f" {args.seed}, {n:,} minutes")
    print(f"feature tables built ({args.workers} processes)  {build:10.1f} s")
    print(f"one backtest (kernel)                    {one * 1e3:10.1f} ms"
          f"  ({int(run.evaluation.counts[0]['trades'])} trades)")
    print(f"the same through step                    {step_per_year:10.1f} s"
          f"  ({step_minutes:,} minutes folded)")
    print(f"kernel speed-up over step                {step_per_year / one:10,.0f} x")
    print(f"evaluate_many, 1 process                 {len(overrides) / many:10,.0f}"
          f" combinations/s  ({len(overrides)} combinations, {many:.1f} s)")


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
