"""Session minutes per second: `step` alone, and the daemon's whole run on the simulated market.

    python -m bench.bench_engine               # 20 ES sessions from 2026-10-01, seed 7
    python -m bench.bench_engine --days 5 --variant nq

`step` alone folds the engine over snapshots parsed beforehand, so it measures the strategy with
its features and HMM decoding and nothing else. As a baseline measured in the same run, the same
fold is timed again with hmmlearn's `predict` in place of the engine's own Viterbi decoder: the
ratio says what decoding from the model's parameters buys. The whole run is the daemon's own
(`gexbot.run`, in this process) as `--speed max` runs it, start-up included: simulated market,
parser, engine, DuckDB store (batched), console sink (logging left unconfigured, so its lines go
nowhere), Discord off, summary and metrics.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
from hmmlearn.hmm import GaussianHMM

import gexbot.core.engine as engine_module
from gexbot.core.engine import EngineParams, initial_state, step
from gexbot.core.hmm import HmmModel
from gexbot.core.session import session_minutes
from gexbot.core.types import FloatArray, HmmState, Snapshot
from gexbot.errors import DataError
from gexbot.run import RunPlan, open_run_market, run
from gexbot.settings import load_variant


def _hmmlearn_decoder(model: HmmModel) -> Callable[[HmmModel, FloatArray], HmmState]:
    reference = GaussianHMM(n_components=2, covariance_type="diag")
    reference.startprob_ = np.array(model.start_prob)
    reference.transmat_ = np.array(model.transmat)
    reference.means_ = np.array(model.means).reshape(2, 1)
    reference.covars_ = np.array(model.variances).reshape(2, 1)

    def decode(_: HmmModel, returns: FloatArray) -> HmmState:
        state = int(reference.predict((returns * model.return_scale).reshape(-1, 1))[-1])
        return HmmState.LOW if state == model.low_state else HmmState.HIGH

    return decode


def _fold(params: EngineParams, snapshots: list[Snapshot], repeats: int) -> float:
    """Best seconds per pass of `step` over every snapshot."""
    best = float("inf")
    for _ in range(repeats):
        state = initial_state(params)
        started = time.perf_counter()
        for snapshot in snapshots:
            state, _ = step(state, snapshot, params)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    """Print minutes per second of `step` alone (and its baseline) and of the whole run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="es", choices=["es", "nq"])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 10, 1))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    preset = load_variant(args.variant)
    plan = RunPlan(variant=args.variant, source="sim", seed=args.seed, start=args.start,
                   days=args.days)
    opened = open_run_market(plan, preset, {})
    sessions, model = opened.sessions, opened.model
    params = EngineParams.from_preset(preset, model)
    snapshots: list[Snapshot] = []
    for session in sessions:
        for minute in session_minutes(session):
            try:
                snapshots.append(opened.feed.snapshot(session, minute, minute))
            except DataError:
                continue
    n = len(snapshots)
    ours = _fold(params, snapshots, repeats=3)
    original = engine_module.decode_last_state
    engine_module.decode_last_state = _hmmlearn_decoder(model)  # type: ignore[assignment]
    try:
        baseline = _fold(params, snapshots, repeats=1)
    finally:
        engine_module.decode_last_state = original

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = run(replace(plan, db=Path(folder) / "bench.db"))
        whole = time.perf_counter() - started
        minutes = result.stats.minutes

    print(f"{preset.variant}: {args.days} sessions from {sessions[0].date}, seed {args.seed}")
    print(f"step alone (features + own HMM decoder)  {n / ours:12,.0f} minutes/s  ({n} minutes)")
    print(f"step with hmmlearn predict (baseline)     {n / baseline:12,.0f} minutes/s")
    print(f"own decoder speed-up on step              {baseline / ours:12.1f} x")
    print(f"whole run (sim market, parse, store, sinks) {minutes / whole:10,.0f} minutes/s"
          f"  ({minutes} minutes, {result.summary.trades} trades)")
    print(f"share of the run spent in step            {ours / n * minutes / whole:12.1%}")


if __name__ == "__main__":
    main()
