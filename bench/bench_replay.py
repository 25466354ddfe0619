"""Size of a recorded session day and speed of its replay.

    python -m bench.bench_replay                 # ES ($SPX), simulated market, 3 sessions
    python -m bench.bench_replay --days 5 --seed 2

1. The daemon's run (`gexbot.run`, in this process) trades simulated sessions with `--record`
   (40 strikes, the preset's expirations): bytes per recorded day, and what the three answers
   of a minute weigh.
2. The daemon replays them (`--replay`, max speed): session minutes per second, start-up
   included, and the recording alone (read, serve, parse) without the engine and the store.
3. An estimate of a live $SPX day: every contract of the simulated chain carries the fields
   Schwab's real answers carry that the simulated ones leave out (a test fixture taken from a
   real answer shows them), with values that move each minute, and the chain spans one more
   expiration than the preset asks for (an AM-settled monthly beside the two daily ones).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gexbot.core.session import TradingCalendar, session_minutes
from gexbot.errors import DataError
from gexbot.market import recfile
from gexbot.market.feed import MarketFeed
from gexbot.market.recording import RecordingTransport
from gexbot.market.sim import SimMarket
from gexbot.market.transport import Endpoint, Exchange, ManagedTransport
from gexbot.run import RunPlan, open_run_market, run
from gexbot.settings import Preset, load_variant

MB = 1e6
LIMIT_BYTES = 50 * MB


def daemon(plan: RunPlan) -> float:
    """The daemon's run of `plan` in this process (`gexbot.run`); its wall time in seconds."""
    started = time.perf_counter()
    run(plan)
    return time.perf_counter() - started


def minute_weights(path: Path) -> dict[str, float]:
    """Mean JSON bytes per exchange line, by endpoint."""
    sizes: dict[str, list[int]] = {}
    for raw in recfile.read(path).lines[1:]:
        endpoint = json.loads(raw)["endpoint"]
        sizes.setdefault(endpoint, []).append(len(raw))
    return {endpoint: float(np.mean(values)) for endpoint, values in sorted(sizes.items())}


def transport_only(folder: Path, preset: Preset) -> tuple[int, float]:
    """Minutes read, served and parsed from the recording alone, and the seconds it took."""
    started = time.perf_counter()
    opened = open_run_market(RunPlan(variant="es", replay=(folder,)), preset, {})
    minutes = 0
    for session in opened.sessions:
        for minute in session_minutes(session):
            with contextlib.suppress(DataError):
                opened.feed.snapshot(session, minute, minute)
            minutes += 1
    opened.market.transport.close()
    return minutes, time.perf_counter() - started


class LiveShaped(ManagedTransport):
    """The simulated market with the chain's contracts dressed as Schwab's real ones."""

    def __init__(self, inner: SimMarket, seed: int) -> None:
        self._inner = inner
        self._random = np.random.default_rng(seed)

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        answer = self._inner.get(endpoint, params, at)
        if endpoint != "chains" or not answer.ok:
            return answer
        body = json.loads(json.dumps(answer.body))
        for side in ("callExpDateMap", "putExpDateMap"):
            for strikes in body[side].values():
                for contracts in strikes.values():
                    for contract in contracts:
                        self._dress(contract)
        return Exchange(answer.at, endpoint, answer.params, answer.status, body, answer.error)

    def _dress(self, contract: dict[str, Any]) -> None:
        mark = float(contract["mark"])
        move = self._random.normal(0.0, 0.08 * mark + 0.05, 4)
        close = round(max(0.05, mark - move[0]), 2)
        contract.update({
            "highPrice": round(mark + abs(move[1]), 2), "lowPrice": round(max(0.05, mark - abs(
                move[2])), 2), "openPrice": round(max(0.05, close + move[3]), 2),
            "closePrice": close, "netChange": round(mark - close, 2),
            "percentChange": round(100 * (mark - close) / close, 2),
            "markChange": round(mark - close, 2),
            "markPercentChange": round(100 * (mark - close) / close, 2),
            "optionDeliverablesList": [{"symbol": "$SPX", "assetType": "INDEX",
                                        "deliverableUnits": 100.0}],
            "deliverableNote": "100 $SPX", "high52Week": round(mark * 4.1, 2),
            "low52Week": round(mark * 0.45, 2),
            "volatility": round(float(contract["volatility"]) + self._random.normal(0, 0.4), 3),
        })


def live_estimate(preset: Preset, calendar: TradingCalendar, day: date, seed: int,
                  folder: Path) -> int:
    """Bytes of one recorded day of live-shaped $SPX answers, one expiration more."""
    wider = preset.model_copy(update={"chain": preset.chain.model_copy(
        update={"expirations_ahead": preset.chain.expirations_ahead + 1})})
    recorder = RecordingTransport(LiveShaped(SimMarket(wider, calendar, seed), seed), folder, "es")
    feed = MarketFeed(recorder, wider, calendar)
    session = calendar.session(day)
    for minute in session_minutes(session):
        feed.exchanges(session, minute, minute)
    recorder.close()
    return recfile.day_path(folder, "es", day).stat().st_size


def main() -> None:
    """Record, weigh, replay, estimate; print one line per number."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 10, 12))
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    preset = load_variant("es")
    calendar = TradingCalendar(preset.calendar, preset.strategy.flatten_minutes_before_close)
    sessions = calendar.sessions_from(args.start, args.days)
    minutes = sum(len(list(session_minutes(s))) for s in sessions)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as scratch:
        root = Path(scratch)
        folder = root / "recordings"
        common = {"variant": "es", "start": args.start, "days": args.days}
        sim_s = daemon(RunPlan(source="sim", seed=args.seed, db=root / "sim.db", **common))
        recorded_s = daemon(RunPlan(source="sim", seed=args.seed, record=folder,
                                    db=root / "live.db", **common))
        files = sorted((folder / "es").glob(f"*{recfile.SUFFIX}"))
        sizes = [path.stat().st_size for path in files]
        print(f"$SPX, {preset.chain.strike_count} strikes, expirations_ahead="
              f"{preset.chain.expirations_ahead}, {len(files)} simulated sessions")
        print(f"recorded bytes per session day: mean {np.mean(sizes) / MB:.2f} MB, max"
              f" {max(sizes) / MB:.2f} MB (limit {LIMIT_BYTES / MB:.0f} MB)")
        weights = minute_weights(files[0])
        print("JSON bytes per exchange: " + ", ".join(
            f"{endpoint} {size / 1e3:.1f} kB" for endpoint, size in weights.items())
            + f"; compressed to {sizes[0] / (sum(weights.values()) * 390) * 100:.1f}%")
        print(f"simulated run {minutes / sim_s:.0f} min/s; with --record {minutes / recorded_s:.0f}"
              f" min/s ({recorded_s - sim_s:+.2f} s for {len(files)} days)")
        replay_s = daemon(RunPlan(variant="es", replay=(folder,), db=root / "replay.db"))
        print(f"replay through the daemon: {minutes} session minutes in {replay_s:.2f} s ="
              f" {minutes / replay_s:.0f} session minutes per second (start-up included)")
        served, served_s = transport_only(folder, preset)
        print(f"recording alone (read, serve, parse): {served / served_s:.0f} session minutes"
              " per second")
        estimate = live_estimate(preset, calendar, sessions[0].date, args.seed, root / "estimate")
        print(f"live-shaped $SPX day (all of Schwab's contract fields, one expiration more):"
              f" {estimate / MB:.2f} MB")
        assert max(sizes) < LIMIT_BYTES
        assert estimate < LIMIT_BYTES


if __name__ == "__main__":
    main()
