"""Time from the minute boundary to the decision, live transport against a slow local fake.

    python -m bench.bench_schwab_latency                  # 30 minutes per mode, 150-300 ms
    python -m bench.bench_schwab_latency --minutes 60 --low-ms 150 --high-ms 300

The real trading loop runs on a simulated clock with the real Schwab transport (OAuth, retries,
rate window) against the local fake Schwab on 127.0.0.1, which adds a random 150-300 ms to every
answer (token requests included), as a distant API would. Each minute's latency is what the loop
itself measures: from the moment it starts the minute's requests to the committed decision (the
store here is a no-op, so the figure is network plus parsing plus the engine). The first minute
also pays the token refresh and is reported apart. Sequential asks quotes, history and chain one
after the other; concurrent asks them together, as the live daemon does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

from gexbot.core.engine import EngineParams, initial_state
from gexbot.core.session import TradingCalendar
from gexbot.core.types import Event, State
from gexbot.market.feed import MarketFeed
from gexbot.market.schwab import SchwabTransport
from gexbot.market.schwab_config import SchwabConfig
from gexbot.market.sim import SimMarket
from gexbot.model_io import read_model
from gexbot.settings import load_variant
from gexbot.shell.clock import SimClock
from gexbot.shell.loop import TradingLoop

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "market"))
from fake_schwab import FakeSchwab

DAY = date(2026, 11, 12)
KEY, SECRET, REFRESH = "bench-app-key-0001", "bench-app-secret-0001", "bench-refresh-token-0001"


class _NoStore:
    def commit(self, minute: datetime, events: Sequence[Event], state: State) -> bool:
        return True

    def flush(self) -> bool:
        return True


class _Latencies:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def observe_iteration(self, latency_s: float, state_summary: dict[str, object]) -> None:
        self.seconds.append(latency_s)

    def data_error(self, kind: str) -> None:
        print(f"  skipped a minute: {kind}")


class _Quiet:
    def alert(self, title: str, message: str) -> None:
        print(f"  alert: {title}: {message}")


def run_mode(fake: FakeSchwab, concurrent: bool, minutes: int) -> list[float]:
    """One simulated session's first `minutes` minutes; the loop's latency of each."""
    preset = load_variant("es")
    calendar = TradingCalendar(preset.calendar, preset.strategy.flatten_minutes_before_close,
                               start=DAY - timedelta(days=14))  # fmt: skip
    config = SchwabConfig.from_env({
        "SCHWAB_APP_KEY": KEY, "SCHWAB_APP_SECRET": SECRET, "SCHWAB_REFRESH_TOKEN": REFRESH,
        "GEXBOT_SCHWAB_BASE_URL": fake.base_url})  # fmt: skip
    transport = SchwabTransport(config)
    feed = MarketFeed(transport, preset, calendar, concurrent=concurrent)
    params = EngineParams.from_preset(preset, read_model(preset.model_file()))
    session = calendar.session(DAY)
    stop = threading.Event()
    observed = _Latencies()
    loop = TradingLoop(
        params=params,
        feed=feed,
        clock=SimClock(session.open, stop),
        store=_NoStore(),
        sinks=[],
        alerter=_Quiet(),
        stop=stop,
        state=initial_state(params),
        max_minutes=minutes,
        metrics=observed,
    )
    try:
        loop.run([session])
    finally:
        transport.close()
    return observed.seconds


def _describe(label: str, seconds: list[float]) -> str:
    first, rest = seconds[0], sorted(seconds[1:])
    p95 = rest[min(len(rest) - 1, round(0.95 * (len(rest) - 1)))]
    return (
        f"{label:<11} median {1000 * statistics.median(rest):5.0f} ms   p95 {1000 * p95:5.0f} ms"
        f"   max {1000 * rest[-1]:5.0f} ms   first minute (token refresh) {1000 * first:5.0f} ms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run both modes and print their latencies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30, help="session minutes per mode")
    parser.add_argument("--low-ms", type=float, default=150.0)
    parser.add_argument("--high-ms", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=6, help="simulated market seed")
    args = parser.parse_args(argv)
    if args.minutes < 2 or not 0 <= args.low_ms <= args.high_ms:
        parser.error("need --minutes >= 2 and 0 <= --low-ms <= --high-ms")
    preset = load_variant("es")
    calendar = TradingCalendar(preset.calendar, preset.strategy.flatten_minutes_before_close,
                               start=DAY - timedelta(days=14))  # fmt: skip
    market = SimMarket(preset, calendar, args.seed)
    latency = (args.low_ms / 1000, args.high_ms / 1000)
    print(f"{args.minutes} minutes per mode, {args.low_ms:g}-{args.high_ms:g} ms added to each"
          " answer by the fake on 127.0.0.1")  # fmt: skip
    for label, concurrent in (("sequential", False), ("concurrent", True)):
        fake = FakeSchwab(market, app_key=KEY, app_secret=SECRET, refresh_token=REFRESH,
                          latency_s=latency, seed=args.seed)  # fmt: skip
        with fake:
            seconds = run_mode(fake, concurrent, args.minutes)
        print(_describe(label, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
