"""Inputs the simulated market never makes, and what the rules do with them.

A server may answer a wider chain than asked, with ties in distance to the money at the edge of
the strike window or with no usable gamma near the money; prices may barely move; a preset may
keep one or two order-flow samples; the first minute of a run may be skipped and the run
restarted from the store; the previous close may come and go; a band may be incomputable while
everything else is known. Each case here pins the answer the README gives.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import time

import numpy as np
import pytest
from scenario import (
    CLOSES_BANDS,
    LEVEL,
    PARAMS,
    STRATEGY,
    Market,
    beyond_band,
    calm_tape,
    decided,
    engine_params,
    of_type,
    reverting,
    run,
    state_fields,
    tweak,
    warm_then,
)

from gexbot.core import features as ft
from gexbot.core.engine import initial_state, skip, step
from gexbot.core.rules import session_gap
from gexbot.core.types import (
    Action,
    Blocker,
    Chain,
    Direction,
    GexRegime,
    Opened,
    SessionStarted,
    frozen_array,
)
from gexbot.shell.state_codec import state_from_json, state_to_json

LONG, SHORT = Direction.LONG, Direction.SHORT
B = Blocker
SEED = 20261118


def strike_chain(strikes: list[float], put_oi: list[float], gamma: float = 0.002) -> Chain:
    """A call and a put at each strike; calls hold 1,000 contracts, puts `put_oi`."""
    n = len(strikes)
    return Chain(
        is_call=frozen_array([True] * n + [False] * n, dtype=np.bool_),
        strike=frozen_array(strikes * 2),
        gamma=frozen_array([gamma] * (2 * n)),
        open_interest=frozen_array([1000.0] * n + put_oi),
    )


# ---------------------------------------------------------------- chains


def test_a_chain_wider_than_the_strike_count_is_trimmed_by_the_engine() -> None:
    """80 strikes; those outside the 40 nearest the money carry heavy puts that would flip GEX."""
    strikes = [6600.0 + 5.0 * k for k in range(80)]
    put_oi = [20_000.0 if k < 21 or k > 60 else 400.0 for k in range(80)]
    wide = strike_chain(strikes, put_oi)
    snapshots = warm_then(None, LONG, ofi=3.0)
    last = replace(snapshots[-1], spot=6801.0, chain=wide)  # 6800 is the nearest strike
    state, _ = run(snapshots[:-1])
    _, events = step(state, last, PARAMS)
    feats = decided(events).features
    inside = range(21, 61)  # the 40 strikes nearest 6801: 6705 to 6900
    expected = len(inside) * (1000.0 - 400.0) * 0.002 * 100.0 * 6801.0
    assert feats.gex_regime is GexRegime.POSITIVE
    assert feats.net_gex == pytest.approx(expected, rel=1e-12)
    assert feats.excluded_contracts == 0
    whole, _ = ft.net_gex(wide, 6801.0, 100.0)
    assert whole is not None
    assert whole < 0.0


def nearest_by_distance_then_strike(strikes: list[float], spot: float, count: int) -> set[float]:
    return set(sorted(strikes, key=lambda k: (abs(k - spot), k))[:count])


def test_ties_at_the_edge_of_the_strike_window_go_to_the_lower_strike() -> None:
    """Every spot on or midway between strikes of chains of 11..40 strikes, every count."""
    for n in range(11, 41, 7):
        strikes = [6700.0 + 5.0 * k for k in range(n)]
        chain = strike_chain(strikes, [400.0] * n)
        for spot in [s + half for s in strikes[:-1] for half in (0.0, 2.5)]:
            for count in range(2, n):
                window = ft.near_the_money(chain, spot, count)
                assert window is not None
                kept = {float(k) for k in chain.strike[window]}
                assert kept == nearest_by_distance_then_strike(strikes, spot, count), (n, spot)


def test_a_chain_with_no_usable_gamma_is_warmup_and_no_flip() -> None:
    """Unknown GEX blocks as warm-up only, and an open position holds instead of flipping."""
    unusable = strike_chain([6795.0, 6805.0], [400.0, 400.0], gamma=math.nan)
    snapshots = warm_then(None, LONG, ofi=3.0)
    state, _ = run(snapshots[:-1])
    _, events = step(state, replace(snapshots[-1], chain=unusable), PARAMS)
    row = decided(events)
    assert (row.action, row.blocked_by) == (Action.WAIT, (B.WARMUP,))
    assert (row.features.net_gex, row.features.gex_regime) == (None, None)
    assert row.features.excluded_contracts == 4

    holding, _ = run(snapshots)
    assert holding.position is not None
    later = Market(start=time(10, 11)).snapshots([holding.position.entry_price])[0]
    _, events = step(holding, replace(later, chain=unusable), PARAMS)
    assert decided(events).action is Action.HOLD


# ---------------------------------------------------------------- prices that barely move


def _floor_sigma(level: float) -> float:
    """The smallest σ(τ) the Hurst estimator reads as movement: 1e-10 of the price level."""
    return 1e-10 * level


@pytest.mark.parametrize(("scale", "known"), [(10.0, True), (0.1, False)])
def test_hurst_of_prices_that_barely_move(scale: float, known: bool) -> None:
    """i.i.d. noise 10x above the σ floor is a spread; 10x below it is rounding noise."""
    rng = np.random.default_rng(SEED)
    noise = rng.normal(size=100) * _floor_sigma(LEVEL) * scale / math.sqrt(2)
    prices = LEVEL + noise
    value = ft.hurst(prices, 2, 19)
    if not known:
        assert value is None
        return
    lags = np.arange(2, 20)
    sigma = [np.std(prices[lag:] - prices[:-lag]) for lag in lags]
    assert value == pytest.approx(np.polyfit(np.log(lags), np.log(sigma), 1)[0], abs=1e-6)


def test_hurst_of_constant_prices_is_unknown_at_any_level() -> None:
    for level in (0.0, 1e-300, 6800.0, -5.0):
        assert ft.hurst(np.full(40, level), 2, 19) is None, level


@pytest.mark.filterwarnings("ignore:overflow")
def test_hurst_is_unknown_when_the_spread_overflows() -> None:
    """Differences so large their squares are infinite: not a spread to take the log of."""
    half = reverting(20, level=0.0, swing=1e160)
    prices = np.array(half + half[::-1])  # a palindrome: each lag's differences sum to ~0
    assert ft.hurst(prices, 2, 19) is None


# ---------------------------------------------------------------- short buffers


@pytest.mark.parametrize("window", [1, 2])
def test_an_ofi_window_of_one_or_two_samples(window: int) -> None:
    params = engine_params(tweak("ofi", window=window))
    samples = [1.0, 4.0, None, 0.25, 3.5, None]
    state, minutes = run(Market().snapshots(reverting(6), ofi=samples), params)
    ofi = [decided(m).features.ofi for m in minutes]
    if window == 1:
        assert ofi == [1.0, 4.0, 4.0, 0.25, 3.5, 3.5]
        assert state.ofi_samples.tolist() == [3.5]
    else:
        assert ofi == [1.0, 2.5, 2.5, 2.125, 1.875, 1.875]
        assert state.ofi_samples.tolist() == [0.25, 3.5]


def test_an_ofi_window_of_one_decides_an_entry_on_the_last_sample() -> None:
    """Forty sellers' minutes, then one buyers' minute at a lower-band breach: LONG at once."""
    warm = reverting(40)
    spots = [*warm, beyond_band(warm, LONG)]
    samples = [0.1] * 40 + [3.0]
    _, minutes = run(Market().snapshots(spots, ofi=samples), engine_params(tweak("ofi", window=1)))
    assert decided(minutes[-1]).action is Action.LONG
    _, minutes = run(Market().snapshots(spots, ofi=samples))
    assert decided(minutes[-1]).blocked_by == (B.OFI,)


def test_the_price_buffer_keeps_exactly_its_limit() -> None:
    strategy = STRATEGY.model_copy(
        update={
            "price_buffer": 4,
            "bands": STRATEGY.bands.model_copy(update={"window": 3, "min_live_prices": 3}),
            "hurst": STRATEGY.hurst.model_copy(update={"min_lag": 1, "max_lag": 2}),
        }
    )
    spots = [LEVEL + i for i in range(7)]
    state, minutes = run(Market().snapshots(spots), engine_params(strategy))
    assert state.prices.tolist() == spots[-4:]
    assert decided(minutes[-1]).features.band_mid == pytest.approx(LEVEL + 5.0, abs=1e-9)


# ---------------------------------------------------------------- a run's first minutes


def test_a_fresh_state_is_flat_and_empty_in_every_field() -> None:
    state = initial_state(PARAMS)
    assert state_fields(state) == {
        "balance": 100_000.0,
        "position": None,
        "cooldown_until": None,
        "session_date": None,
        "prices": [],
        "ofi_samples": [],
        "first_spot": None,
        "previous_close": None,
        "day_start_balance": 100_000.0,
        "day_trades": 0,
        "last_minute": None,
    }
    assert not state.prices.flags.writeable
    assert not state.ofi_samples.flags.writeable


def test_a_skipped_first_minute_survives_the_store_and_the_day_goes_on() -> None:
    """Skip 09:30, save and restore the state, trade on: as if only 09:31 on had been seen."""
    snapshots = Market().snapshots(reverting(45), ofi=3.0)
    skipped, events = skip(initial_state(PARAMS), snapshots[0].at, "quote_missing", PARAMS)
    assert decided(events).balance == 100_000.0
    restored = state_from_json(state_to_json(skipped))
    assert state_fields(restored) == state_fields(skipped)
    after, minutes = run(snapshots[1:], state=restored)
    unskipped, expected = run(snapshots[1:])
    assert minutes == expected
    assert state_fields(after) == state_fields(unskipped)
    started = minutes[0][0]
    assert isinstance(started, SessionStarted)
    assert (started.first_spot, started.balance) == (snapshots[1].spot, 100_000.0)


def test_a_previous_close_once_seen_is_kept_when_the_next_minute_lacks_it() -> None:
    snapshots = Market(gap=0.01).snapshots(reverting(5))
    known = snapshots[0].previous_close
    patchy = [
        s if i in (0, 3) else replace(s, previous_close=None) for i, s in enumerate(snapshots)
    ]
    state, minutes = run(patchy)
    assert state.previous_close == known
    assert [B.GAP in decided(m).blocked_by for m in minutes] == [True] * 5


# ---------------------------------------------------------------- bands and gaps


def test_a_band_that_cannot_be_computed_is_warmup_alone() -> None:
    """A non-finite close among the 30 band closes, outside the HMM's last 21: only the band."""
    params = engine_params(tweak("bands", window=30, min_live_prices=1000))
    tape = calm_tape()
    tape[12] = math.nan  # 10:10 sees 40 closes: index 12 is among the last 30, not the last 21
    snapshots = warm_then(None, LONG, ofi=3.0, market=Market(tape=tape))
    _, minutes = run(snapshots, params)
    row = decided(minutes[-1])
    assert row.features.hmm_state is not None
    assert row.features.hurst is not None
    assert row.features.band_mid is None
    assert (row.action, row.blocked_by) == (Action.WAIT, (B.WARMUP,))


def test_flat_closes_give_no_band_to_breach() -> None:
    """σ = 0 from constant closes: a spot off the mid breaches nothing (no Kelly to judge)."""
    market = Market(tape=[LEVEL] * 390)
    for direction, ofi in ((SHORT, 0.1), (LONG, 3.0)):
        spot = LEVEL - direction.sign * 5.0
        _, minutes = run(warm_then(spot, market=market, ofi=ofi), CLOSES_BANDS)
        row = decided(minutes[-1])
        assert row.features.band_sigma == 0.0
        assert (row.action, row.blocked_by) == (Action.WAIT, (B.BAND,))
        assert of_type(minutes[-1], Opened) == []


@pytest.mark.parametrize(
    ("previous_close", "gap"), [(0.0, None), (-6800.0, None), (0.5, (6800.0 - 0.5) / 0.5)]
)
def test_the_gap_of_a_degenerate_previous_close(previous_close: float, gap: float | None) -> None:
    state = replace(initial_state(PARAMS), first_spot=6800.0, previous_close=previous_close)
    assert session_gap(state) == gap


def test_closes_below_one_point_are_prices_and_infinite_ones_are_not() -> None:
    small = ft.log_returns(np.array([0.5, 0.25, 0.75]), 2)
    assert small is not None
    np.testing.assert_allclose(small, [math.log(0.5), math.log(3.0)], rtol=1e-12)
    assert ft.log_returns(np.array([100.0, math.inf, 101.0]), 2) is None
