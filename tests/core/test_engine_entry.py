"""Entry rules: for every condition of the strategy's step 6 (README), a scripted minute where
it blocks and one where it lets the entry through, and the features each rule reads.

Each case warms a session with a mean-reverting zigzag, then scripts the minute under test; the
expected action and `blocked_by` are the whole verdict of that minute.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import time, timedelta

import numpy as np
import pytest
from scenario import (
    EARLY_DAY,
    LEVEL,
    PARAMS,
    WARM,
    Market,
    beyond_band,
    calm_tape,
    decided,
    engine_params,
    of_type,
    reverting,
    run,
    trending,
    tweak,
    warm_then,
    wild_tape,
)

from gexbot.core.engine import EngineParams, initial_state, step
from gexbot.core.rules import entry_blockers
from gexbot.core.types import (
    Action,
    Blocker,
    Direction,
    GexRegime,
    HmmState,
    Opened,
    Position,
    Snapshot,
    State,
)

LONG, SHORT = Direction.LONG, Direction.SHORT
B = Blocker
GAP_PARAMS = engine_params(tweak("gap", suspend_until_prices=50))
"""The ES strategy with gap suspension lasting past Hurst's warm-up, so `gap` can block alone."""


def far_position(snapshot: Snapshot) -> Position:
    """An open LONG whose stop and target are far away: it holds unless the regime or clock acts."""
    return Position(
        direction=LONG,
        bucket="REVERSION",
        entry_time=snapshot.at - timedelta(minutes=3),
        entry_price=LEVEL,
        size_usd=5000.0,
        target=LEVEL + 500.0,
        stop=LEVEL - 500.0,
        entry_regime=GexRegime.POSITIVE,
        session_date=snapshot.session.date,
    )


@dataclass(frozen=True)
class Case:
    """A scripted market whose last minute is the one judged."""

    snapshots: Callable[[], list[Snapshot]]
    action: Action
    blocked_by: tuple[Blocker, ...]
    params: EngineParams = PARAMS
    prepare: Callable[[State, Snapshot], State] | None = None


def judge(case: Case):
    """Run the warm-up, let `prepare` adjust the state, then step the minute under test."""
    snapshots = case.snapshots()
    state, _ = run(snapshots[:-1], case.params)
    last = snapshots[-1]
    if case.prepare is not None:
        state = case.prepare(state, last)
    return step(state, last, case.params)


def cooldown_until(offset_minutes: int) -> Callable[[State, Snapshot], State]:
    def prepare(state: State, last: Snapshot) -> State:
        return replace(state, cooldown_until=last.at + timedelta(minutes=offset_minutes))

    return prepare


def holding(state: State, last: Snapshot) -> State:
    return replace(state, position=far_position(last))


CASES = {
    # SHORT needs spot > upper and OFI < 0.5 (strict); LONG spot < lower and OFI > 2.0.
    "short fires, ofi 0.49": Case(lambda: warm_then(None, SHORT, ofi=0.49), Action.SHORT, ()),
    "short blocked, ofi 0.5": Case(lambda: warm_then(None, SHORT, ofi=0.5), Action.WAIT, (B.OFI,)),
    "long fires, ofi 2.01": Case(lambda: warm_then(None, LONG, ofi=2.01), Action.LONG, ()),
    "long blocked, ofi 2.0": Case(lambda: warm_then(None, LONG, ofi=2.0), Action.WAIT, (B.OFI,)),
    "inside the band": Case(lambda: warm_then(LEVEL, LONG, ofi=3.0), Action.WAIT, (B.BAND,)),
    "no ofi sample yet": Case(lambda: warm_then(None, LONG, ofi=None), Action.WAIT, (B.WARMUP,)),
    "ofi unknown, no breach": Case(lambda: warm_then(LEVEL, ofi=None), Action.WAIT, (B.BAND,)),
    "gex negative": Case(
        lambda: warm_then(None, LONG, ofi=3.0, gex=GexRegime.NEGATIVE), Action.WAIT, (B.GEX,)
    ),
    "hmm high": Case(
        lambda: warm_then(None, LONG, ofi=3.0, market=Market(tape=wild_tape())),
        Action.WAIT,
        (B.HMM,),
    ),
    "hurst trending": Case(
        lambda: warm_then(None, LONG, ofi=3.0, path=trending(60)), Action.WAIT, (B.HURST,)
    ),
    "kelly: sigma too small for the slippage": Case(
        lambda: warm_then(None, LONG, ofi=3.0, path=reverting(WARM, swing=0.02)),
        Action.WAIT,
        (B.KELLY,),
    ),
    "hmm warm-up, 20 closes": Case(
        lambda: warm_then(None, LONG, ofi=3.0, path=reverting(20)), Action.WAIT, (B.WARMUP,)
    ),
    "hmm known, 21 closes": Case(
        lambda: warm_then(None, LONG, ofi=3.0, path=reverting(21)), Action.LONG, ()
    ),
    "hurst warm-up, 20 prices": Case(
        lambda: warm_then(None, LONG, ofi=3.0, path=reverting(19), market=Market(start=time(11))),
        Action.WAIT,
        (B.WARMUP,),
    ),
    "hurst known, 21 prices": Case(
        lambda: warm_then(None, LONG, ofi=3.0, path=reverting(20), market=Market(start=time(11))),
        Action.LONG,
        (),
    ),
    "constant prices: hurst and band degenerate": Case(
        lambda: warm_then(LEVEL, LONG, ofi=3.0, path=[LEVEL] * WARM),
        Action.WAIT,
        (B.HURST, B.BAND),
    ),
    "cooldown until next minute (t+4)": Case(
        lambda: warm_then(None, LONG, ofi=3.0),
        Action.WAIT,
        (B.COOLDOWN,),
        prepare=cooldown_until(1),
    ),
    "cooldown ends this minute (t+5)": Case(
        lambda: warm_then(None, LONG, ofi=3.0), Action.LONG, (), prepare=cooldown_until(0)
    ),
    "open position": Case(
        lambda: warm_then(None, LONG, ofi=3.0), Action.HOLD, (B.POSITION,), prepare=holding
    ),
    "flatten time 15:45": Case(
        lambda: warm_then(None, SHORT, ofi=0.1, market=Market(start=time(15, 5))),
        Action.WAIT,
        (B.FLATTEN,),
    ),
    "a minute before flatten, 15:44": Case(
        lambda: warm_then(None, SHORT, ofi=0.1, market=Market(start=time(15, 4))),
        Action.SHORT,
        (),
    ),
    "early close, flatten 12:45": Case(
        lambda: warm_then(None, LONG, ofi=3.0, market=Market(day=EARLY_DAY, start=time(12, 5))),
        Action.WAIT,
        (B.FLATTEN,),
    ),
    "early close, 12:44": Case(
        lambda: warm_then(None, LONG, ofi=3.0, market=Market(day=EARLY_DAY, start=time(12, 4))),
        Action.LONG,
        (),
    ),
    "gap 0.6% suspends": Case(
        lambda: warm_then(None, LONG, ofi=3.0, market=Market(gap=0.006)),
        Action.WAIT,
        (B.GAP,),
        params=GAP_PARAMS,
    ),
    "gap 0.4% does not": Case(
        lambda: warm_then(None, LONG, ofi=3.0, market=Market(gap=0.004)),
        Action.LONG,
        (),
        params=GAP_PARAMS,
    ),
    "unknown previous close is no gap": Case(
        lambda: warm_then(None, LONG, ofi=3.0, market=Market(gap=None)),
        Action.LONG,
        (),
        params=GAP_PARAMS,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_entry_rule(name: str) -> None:
    case = CASES[name]
    _, events = judge(case)
    row = decided(events)
    assert (row.action, row.blocked_by) == (case.action, case.blocked_by)
    opened = of_type(events, Opened)
    assert len(opened) == (1 if case.action in (Action.LONG, Action.SHORT) else 0)


def test_every_blocker_at_once_is_listed_in_order() -> None:
    """Position, cooldown, gap, flatten, hmm, gex, hurst, ofi and kelly fail together."""
    path = [LEVEL + 0.005 * (p - LEVEL) for p in trending(60)]
    market = Market(start=time(14, 50), gap=0.02, tape=wild_tape())
    case = Case(
        lambda: warm_then(None, SHORT, ofi=1.0, path=path, gex=GexRegime.NEGATIVE, market=market),
        Action.CLOSE,
        (),
        params=engine_params(tweak("gap", suspend_until_prices=100)),
        prepare=lambda s, last: cooldown_until(2)(holding(s, last), last),
    )
    _, events = judge(case)
    row = decided(events)
    assert row.action is Action.CLOSE
    assert row.blocked_by == (
        B.POSITION,
        B.COOLDOWN,
        B.GAP,
        B.FLATTEN,
        B.HMM,
        B.GEX,
        B.HURST,
        B.OFI,
        B.KELLY,
    )


def test_warmup_is_listed_once_and_before_band() -> None:
    """At the open nothing is known: bands from too few closes, no HMM, no Hurst."""
    _, minutes = run(Market(gap=0.02).snapshots([LEVEL]))
    assert decided(minutes[0]).blocked_by == (B.GAP, B.WARMUP)
    _, minutes = run(Market().snapshots(reverting(20)))
    assert decided(minutes[-1]).blocked_by == (B.WARMUP, B.BAND)


def test_hurst_sides_of_the_scripted_paths() -> None:
    """The zigzag is far below 0.5 and the wave far above, breach included: not borderline."""
    _, calm = run(warm_then(None, LONG, ofi=3.0))
    _, wave = run(warm_then(None, LONG, ofi=3.0, path=trending(60)))
    calm_h = decided(calm[-1]).features.hurst
    wave_h = decided(wave[-1]).features.hurst
    assert calm_h is not None
    assert wave_h is not None
    assert calm_h < 0.3 < 0.6 < wave_h


def test_hurst_reads_the_last_100_spots_with_lags_2_to_19() -> None:
    spots = reverting(130)
    _, minutes = run(Market().snapshots(spots))
    prices = np.array(spots[-100:])
    lags = np.arange(2, 20)
    sigma = [np.std(prices[lag:] - prices[:-lag]) for lag in lags]
    expected = np.polyfit(np.log(lags), np.log(sigma), 1)[0]
    assert decided(minutes[-1]).features.hurst == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("minutes", "source"), [(8, "closes"), (9, "live"), (10, "live"), (40, "live")]
)
def test_bands_from_live_prices_once_ten_are_held(minutes: int, source: str) -> None:
    """Buffer of minutes+1 prices: 9 → the last 20 closes of the tape, ≥ 10 → last 20 spots."""
    spots = reverting(minutes + 1)
    market = Market()
    _, events = run(market.snapshots(spots))
    feats = decided(events[-1]).features
    window = spots[-20:] if source == "live" else list(market.tape[:minutes])[-20:]
    mid, sigma = statistics.fmean(window), statistics.pstdev(window)
    assert feats.band_mid == pytest.approx(mid, abs=1e-9)
    assert feats.band_sigma == pytest.approx(sigma, abs=1e-9)
    assert feats.band_upper == pytest.approx(mid + 2 * sigma, abs=1e-9)
    assert feats.band_lower == pytest.approx(mid - 2 * sigma, abs=1e-9)


def test_ofi_is_the_mean_of_the_last_five_samples_skipping_missing_ones() -> None:
    samples = [1.0] * 30 + [4.0, None, 2.0, None, None, 3.0, 1.0, 5.0]
    _, minutes = run(Market().snapshots(reverting(len(samples)), ofi=samples))
    ofi = [decided(m).features.ofi for m in minutes]
    assert ofi[-1] == pytest.approx((4.0 + 2.0 + 3.0 + 1.0 + 5.0) / 5, abs=1e-12)
    assert ofi[32] == pytest.approx((1.0 + 1.0 + 1.0 + 4.0 + 2.0) / 5, abs=1e-12)
    _, first = run(Market().snapshots([LEVEL, LEVEL + 1], ofi=[None, 0.4]))
    assert decided(first[0]).features.ofi is None
    assert decided(first[1]).features.ofi == 0.4


def test_missing_samples_leave_older_ones_in_the_mean_at_a_breach() -> None:
    """Low samples then silence: the mean of what is there decides a SHORT."""
    warm = reverting(WARM)
    samples = [1.0] * (WARM - 5) + [0.1, 0.1, 0.2, 0.3, None, None]
    spots = [*warm, beyond_band(warm, SHORT)]
    _, minutes = run(Market().snapshots(spots, ofi=samples))
    row = decided(minutes[-1])
    assert row.features.ofi == pytest.approx((1.0 + 0.1 + 0.1 + 0.2 + 0.3) / 5, abs=1e-12)
    assert row.action is Action.SHORT


def test_net_gex_sign_and_value_come_from_the_chain() -> None:
    for regime, put_oi in ((GexRegime.POSITIVE, 400.0), (GexRegime.NEGATIVE, 3000.0)):
        _, minutes = run(Market().snapshots([LEVEL], gex=regime))
        feats = decided(minutes[0]).features
        expected = (2 * 0.002 * 1000.0 - 2 * 0.002 * put_oi) * 100.0 * LEVEL
        assert feats.gex_regime is regime
        assert feats.net_gex == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("tape", "state"),
    [
        (wild_tape(89) + calm_tape(301), HmmState.LOW),
        (calm_tape(89) + wild_tape(301), HmmState.HIGH),
    ],
    ids=["wild morning, calm last 21 closes", "calm morning, wild last 21 closes"],
)
def test_hmm_decodes_the_last_20_returns_of_the_closes(tape: list[float], state: HmmState) -> None:
    _, minutes = run(Market(start=time(11, 20), tape=tape).snapshots([LEVEL]))
    assert decided(minutes[0]).features.hmm_state is state


def test_live_buffer_keeps_the_last_100_spots() -> None:
    spots = [LEVEL + math.sin(i) for i in range(130)]
    state, _ = run(Market().snapshots(spots))
    assert state.prices.tolist() == spots[-100:]
    assert state.ofi_samples.tolist() == [1.0] * 5


def test_fresh_state_is_flat_with_the_preset_balance() -> None:
    state = initial_state(PARAMS)
    assert (state.balance, state.position, state.cooldown_until) == (100_000.0, None, None)
    assert state.prices.shape == (0,)


@pytest.mark.parametrize(
    ("spot", "side"),
    [(None, LONG), (None, SHORT), (LEVEL, None)],
    ids=["below the lower band", "above the upper band", "inside"],
)
def test_an_entry_is_planned_only_for_the_breached_side(
    spot: float | None, side: Direction | None
) -> None:
    """`entry_blockers` hands `step` a plan for the breached side, and no plan without a breach."""
    snapshots = warm_then(spot, side or LONG, ofi=3.0)
    before, _ = run(snapshots[:-1])
    _, minutes = run(snapshots)
    feats = decided(minutes[-1]).features
    _, plan = entry_blockers(before, snapshots[-1], feats, PARAMS, had_position=False)
    assert (None if plan is None else plan.direction) is side


def test_no_entry_is_planned_before_the_bands_are_known() -> None:
    (first,) = Market().snapshots([LEVEL])
    _, minutes = run([first])
    feats = decided(minutes[0]).features
    assert feats.band_mid is None
    blockers, plan = entry_blockers(initial_state(PARAMS), first, feats, PARAMS, False)
    assert (Blocker.WARMUP in blockers, plan) == (True, None)
