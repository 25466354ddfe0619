"""Cost of committing minutes to the DuckDB store, which opens the file for each write.

    python -m bench.bench_store                     # 600 minutes per mode, fresh file
    python -m bench.bench_store --prefill 200000    # into a file already holding a year of both

A realistic minute is what the daemon writes most minutes: one decision row with every feature
known, and the state with full price (100) and order-flow (5) buffers; every tenth minute also
closes a trade. The store opens the file for each write and closes it after, so that readers
and the other variant's daemon can use it in between:

- at a human pace (live, `--speed N`) each minute is one write;
- as fast as the clock allows (`--speed max`, replays) minutes go out in batches of 120.

The baseline, measured in the same run, writes the same batches through one connection held for
the whole run (what the daemon did before it shared the file), so the difference is the price of
opening and closing the file per batch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
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
from gexbot.run.runner import FAST_BATCH
from gexbot.shell.dbfile import CONFIG
from gexbot.shell.schema import (
    UPSERT_STATE,
    decision_row,
    ensure_schema,
    trade_row,
    transaction,
    write_decisions,
    write_trades,
)
from gexbot.shell.state_codec import state_to_json
from gexbot.shell.store import Store

START = datetime(2026, 11, 17, 9, 30, tzinfo=EASTERN)
FEATURES = Features(
    net_gex=1.25e9, gex_regime=GexRegime.POSITIVE, excluded_contracts=2, ofi=0.93,
    hurst=0.41, hmm_state=HmmState.LOW, band_mid=6801.5, band_upper=6812.0,
    band_lower=6791.0, band_sigma=5.25,
)
Minute = tuple[datetime, list[Event], State]


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


def prepared(minutes: int) -> list[Minute]:
    rng = np.random.default_rng(7)
    out = []
    for n in range(minutes):
        at = START + timedelta(minutes=n)
        out.append((at, *minute_events(n, at, rng)))
    return out


def fresh_database(folder: Path, name: str, prefill: int) -> Path:
    """A gexbot database holding `prefill` decisions of the other variant (nq)."""
    db = folder / f"{name}.db"
    with duckdb.connect(str(db), config=CONFIG) as con:
        ensure_schema(con, db, "trading")
        if prefill:
            con.execute(
                "INSERT INTO decisions (variant, \"at\", spot, action, balance)"
                " SELECT 'nq', TIMESTAMPTZ '2025-01-02 14:30:00+00' + to_minutes(range),"
                " 21000 + range % 97, 'WAIT', 100000 FROM range(?)",
                [prefill],
            )
    return db


def through_store(db: Path, minutes: Sequence[Minute], batch: int) -> list[float]:
    """Seconds per full write of `batch` minutes through the store (the store starts with
    smaller batches after opening: those are not counted)."""
    costs = []
    with Store(db, "es", batch_minutes=batch) as store:
        for at, events, state in minutes:
            size = len(store.pending_minutes) + 1
            started = time.perf_counter()
            if store.commit(at, events, state) and size == batch:
                costs.append(time.perf_counter() - started)
    return costs


def held_open(db: Path, minutes: Sequence[Minute], batch: int) -> list[float]:
    """The baseline: the same batches through one connection held for the whole run."""
    costs = []
    with duckdb.connect(str(db), config=CONFIG) as con:
        con.execute("SET TimeZone = 'UTC'")
        for start in range(0, len(minutes), batch):
            chunk = minutes[start : start + batch]
            started = time.perf_counter()
            decisions = [decision_row(e) for _, events, _ in chunk for e in events
                         if isinstance(e, Decided)]
            trades = [trade_row(e.trade) for _, events, _ in chunk for e in events
                      if isinstance(e, Closed)]
            with transaction(con):
                write_decisions(con, decisions)
                write_trades(con, trades)
                at, _, state = chunk[-1]
                con.execute(UPSERT_STATE, ["es", at, state_to_json(state)])
            costs.append(time.perf_counter() - started)
    return costs


def report(label: str, costs: list[float], minutes_per_write: int) -> float:
    ms = [cost * 1000 for cost in costs]
    per_minute = sum(ms) / (len(ms) * minutes_per_write)
    print(
        f"{label:>40}: median {statistics.median(ms):7.2f} ms/write,"
        f" p95 {np.percentile(ms, 95):7.2f} ms, {per_minute:6.3f} ms/minute"
    )
    return per_minute


def main() -> None:
    """Print ms per write and per minute for each mode, and the price of opening per batch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=600, help="minutes per mode")
    parser.add_argument("--prefill", type=int, default=0,
                        help="decisions of the other variant already in the file")
    args = parser.parse_args()
    minutes = prepared(args.minutes)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        each = through_store(fresh_database(folder, "each", args.prefill), minutes, 1)
        report("per minute, file opened per write", each, 1)
        batched = through_store(fresh_database(folder, "batched", args.prefill), minutes,
                                FAST_BATCH)
        ours = report(f"batches of {FAST_BATCH}, file opened per batch", batched, FAST_BATCH)
        baseline = held_open(fresh_database(folder, "held", args.prefill), minutes, FAST_BATCH)
        base = report(f"baseline: batches of {FAST_BATCH}, file held", baseline, FAST_BATCH)
        extra = statistics.median(batched) - statistics.median(baseline)
        print(
            f"opening per batch costs {extra * 1000:.1f} ms per {FAST_BATCH} minutes"
            f" ({ours / base:.2f}x the held file's write time)"
        )


if __name__ == "__main__":
    main()
