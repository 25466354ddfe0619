"""Cost of committing one minute to the DuckDB store, file held open or opened per commit.

    python -m bench.bench_store                 # 200 minutes per mode in a temporary folder
    python -m bench.bench_store --minutes 1000

A realistic minute is what the daemon writes most minutes: one decision row with every feature
known, and the state with full price (100) and order-flow (5) buffers; every tenth minute also
closes a trade. Holding the file open is what `--speed max` and replay do; opening it per commit
is what leaves it free for readers at a human pace.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from gexbot.core.session import EASTERN
from gexbot.core.types import (
    Action,
    Blocker,
    Closed,
    Decided,
    Direction,
    Event,
    ExitReason,
    Features,
    GexRegime,
    HmmState,
    State,
    Trade,
    frozen_array,
)
from gexbot.shell.store import Store

START = datetime(2026, 11, 17, 9, 30, tzinfo=EASTERN)
FEATURES = Features(
    net_gex=1.25e9, gex_regime=GexRegime.POSITIVE, excluded_contracts=2, ofi=0.93,
    hurst=0.41, hmm_state=HmmState.LOW, band_mid=6801.5, band_upper=6812.0,
    band_lower=6791.0, band_sigma=5.25,
)


def minute_events(n: int, at: datetime, rng: np.random.Generator) -> tuple[list[Event], State]:
    """The events and state of minute `n`: one decision, and a closed trade every tenth."""
    balance = 100_000.0 + n
    events: list[Event] = [
        Decided(
            variant="es", at=at, spot=6800.0 + rng.normal(), features=FEATURES, position=None,
            target=None, stop=None, action=Action.WAIT, reason=None,
            blocked_by=(Blocker.HMM, Blocker.BAND), balance=balance,
        )
    ]
    if n % 10 == 9:
        trade = Trade(
            variant="es", symbol="$SPX", direction=Direction.LONG, bucket="REVERSION",
            entry_time=at - timedelta(minutes=5), entry_price=6790.25, exit_time=at,
            exit_price=6801.5, size_usd=4200.0, exit_regime=GexRegime.POSITIVE,
            exit_reason=ExitReason.TARGET, pnl=6.96,
        )
        events.append(Closed(trade=trade, balance=balance))
    state = State(
        balance=balance, position=None, cooldown_until=None, session_date=date(2026, 11, 17),
        prices=frozen_array(6800.0 + rng.normal(size=100)),
        ofi_samples=frozen_array(rng.uniform(0.3, 3.0, size=5)), first_spot=6799.0,
        previous_close=6790.0, day_start_balance=100_000.0, day_trades=n // 10, last_minute=at,
    )
    return events, state


def run(folder: Path, hold_open: bool, minutes: int) -> list[float]:
    """Seconds per commit over `minutes` minutes into a fresh database."""
    rng = np.random.default_rng(7)
    prepared = []
    for n in range(minutes):
        at = START + timedelta(minutes=n)
        prepared.append((at, *minute_events(n, at, rng)))
    costs = []
    with Store(folder / f"bench-{hold_open}.db", "es", hold_open=hold_open) as store:
        for at, events, state in prepared:
            started = time.perf_counter()
            assert store.commit(at, events, state)
            costs.append(time.perf_counter() - started)
    return costs


def main() -> None:
    """Print ms per commit and minutes per second for both modes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=200, help="minutes per mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for hold_open, label in ((True, "held open"), (False, "opened per commit")):
            costs = run(Path(folder), hold_open, args.minutes)
            ms = [cost * 1000 for cost in costs]
            print(
                f"{label:>18}: median {statistics.median(ms):6.2f} ms/commit,"
                f" p95 {np.percentile(ms, 95):6.2f} ms, {len(costs) / sum(costs):7.1f} minutes/s"
            )


if __name__ == "__main__":
    main()
