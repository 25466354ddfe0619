"""Every threshold of the rules on the line and one representable step either side of it.

The README reads the rules so: band breaches and the OFI, Hurst and gap thresholds are strict
(a value on the line does not count), stop and target inclusive; Hurst needs max_lag + 2 prices
and bands 2. A threshold test sets the threshold to the feature's own value as the engine
computed it, so no rounding stands between the two, and then moves it by one ulp each way.
A band test takes its bands from the 1-minute closes (`CLOSES_BANDS`), so the spot under test
does not move the band it is compared with.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import time

import numpy as np
import pytest
from scenario import (
    CLOSES_BANDS,
    LEVEL,
    PARAMS,
    Market,
    decided,
    engine_params,
    run,
    tweak,
    warm_then,
    wave_tape,
)

from gexbot.core import features as ft
from gexbot.core.engine import EngineParams
from gexbot.core.types import Action, Blocker, Direction, Features, SessionStarted, Snapshot

LONG, SHORT = Direction.LONG, Direction.SHORT
B = Blocker
SEED = 20261117


def above(x: float) -> float:
    return math.nextafter(x, math.inf)


def below(x: float) -> float:
    return math.nextafter(x, -math.inf)


def verdict(
    snapshots: Sequence[Snapshot], params: EngineParams = PARAMS
) -> tuple[Action, tuple[Blocker, ...]]:
    """What the last minute did and what blocked it."""
    _, minutes = run(snapshots, params)
    row = decided(minutes[-1])
    return row.action, row.blocked_by


def last_features(snapshots: Sequence[Snapshot], params: EngineParams = PARAMS) -> Features:
    _, minutes = run(snapshots, params)
    feats = decided(minutes[-1]).features
    assert feats is not None
    return feats


@pytest.mark.parametrize("direction", [LONG, SHORT])
def test_a_spot_exactly_on_a_band_is_no_breach(direction: Direction) -> None:
    market = Market(tape=wave_tape())
    ofi = 3.0 if direction is LONG else 0.1
    feats = last_features(warm_then(LEVEL, market=market, ofi=ofi), CLOSES_BANDS)
    band = feats.band_lower if direction is LONG else feats.band_upper
    assert band is not None
    outside = math.nextafter(band, -direction.sign * math.inf)
    inside = math.nextafter(band, direction.sign * math.inf)
    for spot, expected in [
        (band, (Action.WAIT, (B.BAND,))),
        (inside, (Action.WAIT, (B.BAND,))),
        (outside, (Action(direction.value), ())),
    ]:
        snapshots = warm_then(spot, market=market, ofi=ofi)
        moved = last_features(snapshots, CLOSES_BANDS)
        assert (moved.band_lower, moved.band_upper) == (feats.band_lower, feats.band_upper)
        assert verdict(snapshots, CLOSES_BANDS) == expected, spot


def test_hurst_exactly_at_its_threshold_blocks() -> None:
    snapshots = warm_then(None, LONG, ofi=3.0)
    h = last_features(snapshots).hurst
    assert h is not None
    for threshold, expected in [
        (h, (Action.WAIT, (B.HURST,))),
        (below(h), (Action.WAIT, (B.HURST,))),
        (above(h), (Action.LONG, ())),
    ]:
        assert verdict(snapshots, engine_params(tweak("hurst", threshold=threshold))) == expected


@pytest.mark.parametrize(
    ("direction", "ofi", "threshold"),
    [(SHORT, 0.3, "short_below"), (LONG, 2.7, "long_above")],
)
def test_ofi_exactly_at_either_threshold_blocks(
    direction: Direction, ofi: float, threshold: str
) -> None:
    """SHORT needs OFI < short_below, LONG OFI > long_above: equality agrees with neither."""
    snapshots = warm_then(None, direction, ofi=ofi)
    mean = last_features(snapshots).ofi
    assert mean is not None
    agreeing, disagreeing = above(mean), below(mean)
    if direction is LONG:
        agreeing, disagreeing = disagreeing, agreeing
    for value, expected in [
        (mean, (Action.WAIT, (B.OFI,))),
        (disagreeing, (Action.WAIT, (B.OFI,))),
        (agreeing, (Action(direction.value), ())),
    ]:
        params = engine_params(tweak("ofi", **{threshold: value}))
        assert verdict(snapshots, params) == expected, value


def test_a_gap_of_exactly_the_threshold_does_not_suspend() -> None:
    snapshots = warm_then(None, LONG, ofi=3.0, market=Market(gap=0.006))
    _, minutes = run(snapshots[:1])
    started = minutes[0][0]
    assert isinstance(started, SessionStarted)
    gap = started.gap
    assert gap is not None
    for threshold, suspends in [(gap, False), (above(gap), False), (below(gap), True)]:
        params = engine_params(tweak("gap", threshold=threshold, suspend_until_prices=50))
        _, minutes = run(snapshots, params)
        assert minutes[0][0].gap_suspends is suspends
        row = decided(minutes[-1])
        expected = (Action.WAIT, (B.GAP,)) if suspends else (Action.LONG, ())
        assert (row.action, row.blocked_by) == expected, threshold


@pytest.mark.parametrize(("prices", "blocker"), [(20, B.WARMUP), (21, B.HURST)])
def test_flat_prices_are_warmup_below_the_hurst_window_and_hurst_from_it(
    prices: int, blocker: Blocker
) -> None:
    """Hurst of constant prices is unknown either way; only the count says why: 21 = 19 + 2."""
    snapshots = Market(start=time(11)).snapshots([LEVEL] * prices, ofi=3.0)
    assert verdict(snapshots) == (Action.WAIT, (blocker, B.BAND))


@pytest.mark.parametrize(("min_lag", "max_lag"), [(1, 2), (2, 19), (3, 30)])
def test_hurst_needs_exactly_max_lag_plus_two_prices(min_lag: int, max_lag: int) -> None:
    rng = np.random.default_rng(SEED)
    walk = 6800.0 + np.cumsum(rng.normal(size=max_lag + 2))
    for n in range(max_lag + 2):
        assert ft.hurst(walk[:n], min_lag, max_lag) is None, n
    assert ft.hurst(walk, min_lag, max_lag) is not None


def test_bands_over_exactly_two_prices() -> None:
    assert ft.bands(np.array([100.0, 102.0]), 2.0) == (101.0, 103.0, 99.0, 1.0)
    assert ft.bands(np.array([100.0]), 2.0) is None


def test_bands_from_the_first_two_closes_of_the_day() -> None:
    """09:30 and 09:31 have fewer than two completed bars: warm-up; 09:32 has two."""
    market = Market(tape=wave_tape())
    _, minutes = run(market.snapshots([LEVEL] * 3))
    rows = [decided(m) for m in minutes]
    assert [r.features.band_mid is None for r in rows] == [True, True, False]
    assert all(B.WARMUP in r.blocked_by for r in rows)
    two = market.tape[:2]
    assert rows[2].features.band_mid == pytest.approx(statistics.fmean(two), abs=1e-9)
    assert rows[2].features.band_sigma == pytest.approx(statistics.pstdev(two), abs=1e-9)


def test_log_returns_of_exactly_one_return() -> None:
    result = ft.log_returns(np.array([100.0, 101.0]), 1)
    assert result is not None
    assert result.tolist() == [math.log(101.0) - math.log(100.0)]
    assert ft.log_returns(np.array([100.0]), 1) is None
    with pytest.raises(ValueError, match=r"count >= 1, got 0"):
        ft.log_returns(np.array([100.0, 101.0]), 0)
