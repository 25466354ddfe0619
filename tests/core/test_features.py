"""Net GEX, regime, OFI, bands and log returns against values computed independently here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gexbot.core import features as ft
from gexbot.core.types import Chain, GexRegime, frozen_array


def make_chain(rows: list[tuple[bool, float, float, float]]) -> Chain:
    """rows: (is_call, strike, gamma, open_interest)."""
    return Chain(
        is_call=frozen_array([r[0] for r in rows], dtype=np.bool_),
        strike=frozen_array([r[1] for r in rows]),
        gamma=frozen_array([r[2] for r in rows]),
        open_interest=frozen_array([r[3] for r in rows]),
    )


def loop_gex(rows: list[tuple[bool, float, float, float]], spot: float, mult: float) -> float:
    total = 0.0
    for is_call, _strike, gamma, oi in rows:
        term = gamma * oi * mult * spot
        total += term if is_call else -term
    return total


CLEAN = [
    (True, 6790.0, 0.0021, 1500.0),
    (True, 6800.0, 0.0034, 2200.0),
    (True, 6810.0, 0.0019, 900.0),
    (False, 6790.0, 0.0020, 3100.0),
    (False, 6800.0, 0.0033, 1200.0),
    (False, 6810.0, 0.0011, 400.0),
]


def test_net_gex_matches_a_plain_loop() -> None:
    net, excluded = ft.net_gex(make_chain(CLEAN), 6801.25, 100.0)
    expected = loop_gex(CLEAN, 6801.25, 100.0)
    assert excluded == 0
    assert net is not None
    assert net == pytest.approx(expected, rel=1e-9)
    assert abs(expected) > 1e6


def test_net_gex_sign_follows_calls_minus_puts() -> None:
    calls_only = [r for r in CLEAN if r[0]]
    puts_only = [r for r in CLEAN if not r[0]]
    call_net, _ = ft.net_gex(make_chain(calls_only), 6800.0, 100.0)
    put_net, _ = ft.net_gex(make_chain(puts_only), 6800.0, 100.0)
    assert call_net is not None
    assert call_net > 0
    assert put_net is not None
    assert put_net < 0


def test_net_gex_excludes_and_counts_bad_contracts() -> None:
    bad = [
        (True, 6820.0, math.nan, 1000.0),
        (False, 6820.0, 0.002, math.nan),
        (True, 6830.0, -999.0, 1000.0),
        (False, 6830.0, 0.002, -999.0),
        (True, 6840.0, -0.001, 500.0),
        (False, 6840.0, 0.001, -5.0),
        (True, 6850.0, math.inf, 5.0),
    ]
    rows = CLEAN[:3] + bad + CLEAN[3:]
    net, excluded = ft.net_gex(make_chain(rows), 6801.25, 100.0)
    assert excluded == len(bad)
    assert net == pytest.approx(loop_gex(CLEAN, 6801.25, 100.0), rel=1e-9)


def test_net_gex_keeps_zero_gamma_and_zero_interest() -> None:
    rows = [*CLEAN, (True, 6900.0, 0.0, 100.0), (False, 6700.0, 0.001, 0.0)]
    net, excluded = ft.net_gex(make_chain(rows), 6800.0, 100.0)
    assert excluded == 0
    assert net == pytest.approx(loop_gex(CLEAN, 6800.0, 100.0), rel=1e-9)


def test_net_gex_uses_the_multiplier() -> None:
    net_100, _ = ft.net_gex(make_chain(CLEAN), 6800.0, 100.0)
    net_10, _ = ft.net_gex(make_chain(CLEAN), 6800.0, 10.0)
    assert net_100 is not None
    assert net_10 is not None
    assert net_100 == pytest.approx(10.0 * net_10, rel=1e-12)


def test_net_gex_empty_chain_is_unknown() -> None:
    assert ft.net_gex(make_chain([]), 6800.0, 100.0) == (None, 0)


def test_net_gex_all_unusable_is_unknown_and_counted() -> None:
    rows = [(True, 6800.0, math.nan, 10.0), (False, 6800.0, -999.0, -999.0)]
    assert ft.net_gex(make_chain(rows), 6800.0, 100.0) == (None, 2)


@pytest.mark.parametrize(
    ("net", "regime"),
    [
        (1.0, GexRegime.POSITIVE),
        (1e-300, GexRegime.POSITIVE),
        (0.0, GexRegime.NEGATIVE),
        (-0.0, GexRegime.NEGATIVE),
        (-5e9, GexRegime.NEGATIVE),
    ],
)
def test_gex_regime_sign(net: float, regime: GexRegime) -> None:
    assert ft.gex_regime(net) is regime


def test_mean_ofi() -> None:
    assert ft.mean_ofi(frozen_array([0.5, 2.0, 3.5])) == pytest.approx(2.0, rel=1e-15)
    assert ft.mean_ofi(frozen_array([1.25])) == 1.25
    assert ft.mean_ofi(frozen_array([])) is None


def test_bands_match_hand_computation() -> None:
    prices = [100.0, 102.0, 101.0, 97.0, 105.0]
    mu = sum(prices) / 5
    sigma = math.sqrt(sum((p - mu) ** 2 for p in prices) / 5)
    result = ft.bands(frozen_array(prices), 2.0)
    assert result is not None
    mid, upper, lower, sig = result
    assert mu == 101.0
    assert sigma == pytest.approx(math.sqrt(34.0 / 5.0), rel=1e-15)
    assert mid == pytest.approx(mu, rel=1e-15)
    assert sig == pytest.approx(sigma, rel=1e-12)
    assert upper == pytest.approx(mu + 2 * sigma, rel=1e-12)
    assert lower == pytest.approx(mu - 2 * sigma, rel=1e-12)


def test_bands_match_numpy_on_realistic_prices() -> None:
    rng = np.random.default_rng(7)
    prices = 6800.0 + np.cumsum(rng.normal(scale=0.8, size=20))
    result = ft.bands(prices, 2.5)
    assert result is not None
    mid, upper, lower, sig = result
    assert sig == pytest.approx(float(np.std(prices, ddof=0)), rel=1e-9)
    assert mid == pytest.approx(float(np.mean(prices)), rel=1e-14)
    assert upper - mid == pytest.approx(2.5 * sig, rel=1e-9)
    assert mid - lower == pytest.approx(2.5 * sig, rel=1e-9)


def test_bands_constant_prices_give_zero_sigma() -> None:
    assert ft.bands(frozen_array([6800.5] * 20), 2.0) == (6800.5, 6800.5, 6800.5, 0.0)


@pytest.mark.parametrize("prices", [[], [6800.0], [6800.0, math.nan, 6801.0], [1.0, math.inf]])
def test_bands_unknown(prices: list[float]) -> None:
    assert ft.bands(frozen_array(prices), 2.0) is None


def test_log_returns_take_the_last_closes() -> None:
    closes = [100.0, 101.0, 99.0, 99.5, 100.25]
    result = ft.log_returns(frozen_array(closes), 3)
    assert result is not None
    expected = [math.log(99.0 / 101.0), math.log(99.5 / 99.0), math.log(100.25 / 99.5)]
    np.testing.assert_allclose(result, expected, rtol=1e-12)


def test_log_returns_unknown() -> None:
    assert ft.log_returns(frozen_array([100.0, 101.0, 102.0]), 3) is None
    assert ft.log_returns(frozen_array([100.0, 0.0, 101.0, 102.0]), 3) is None
    assert ft.log_returns(frozen_array([100.0, 101.0, math.nan, 102.0]), 3) is None
    # A bad close outside the window used does not matter.
    assert ft.log_returns(frozen_array([-1.0, 100.0, 101.0, 102.0]), 2) is not None


def _wide_chain() -> list[tuple[bool, float, float, float]]:
    """80 strikes 5 points apart from 6600; the outer 20 on each side carry heavy put interest."""
    rows = []
    for k in range(80):
        strike = 6600.0 + 5.0 * k
        outer = k < 20 or k >= 60
        rows.append((True, strike, 0.002, 1000.0))
        rows.append((False, strike, 0.002, 20_000.0 if outer else 400.0))
    return rows


def test_chain_knows_its_distinct_strikes() -> None:
    chain = make_chain(CLEAN)
    assert chain.strikes.tolist() == [6790.0, 6800.0, 6810.0]
    assert ft.near_the_money(chain, 6801.0, 40) is None


def test_net_gex_sums_only_the_strikes_nearest_the_money() -> None:
    rows = _wide_chain()
    spot = 6801.0  # strike 6800 is index 40: the 40 nearest are 6705..6900
    nearest = sorted({r[1] for r in rows}, key=lambda k: (abs(k - spot), k))[:40]
    inside = [r for r in rows if r[1] in nearest]
    net, excluded = ft.net_gex(make_chain(rows), spot, 100.0, strike_count=40)
    assert excluded == 0
    assert net == pytest.approx(loop_gex(inside, spot, 100.0), rel=1e-12)
    assert net is not None
    assert net > 0
    whole, _ = ft.net_gex(make_chain(rows), spot, 100.0)
    assert whole is not None
    assert whole < 0  # the far put walls would flip the regime if they were counted
    assert (min(nearest), max(nearest)) == (6705.0, 6900.0)


def test_a_tie_in_distance_goes_to_the_lower_strike() -> None:
    rows = [(True, strike, 0.002, 100.0) for strike in (6790.0, 6795.0, 6800.0, 6805.0)]
    window = ft.near_the_money(make_chain(rows), 6797.5, 2)
    assert window is not None
    assert window.tolist() == [False, True, True, False]
    window = ft.near_the_money(make_chain(rows), 6800.0, 3)
    assert window is not None
    assert window.tolist() == [False, True, True, True]


def test_contracts_outside_the_window_are_not_counted_as_excluded() -> None:
    rows = [*_wide_chain(), (True, 6200.0, math.nan, 10.0), (True, 6800.0, -999.0, 10.0)]
    _, excluded = ft.net_gex(make_chain(rows), 6801.0, 100.0, strike_count=40)
    assert excluded == 1
