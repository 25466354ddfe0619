"""The Hurst estimator: the seed's polyfit formula, edge cases, and known processes."""

from __future__ import annotations

import numpy as np
import pytest

from gexbot.core.features import hurst

SEED = 20260101
MIN_LAG, MAX_LAG = 2, 19


def polyfit_reference(prices: np.ndarray, min_lag: int, max_lag: int) -> float:
    """The seed's estimator, verbatim in spirit: np.std per lag, np.polyfit on the logs."""
    lags = list(range(min_lag, max_lag + 1))
    sigma = [np.std(prices[lag:] - prices[:-lag]) for lag in lags]
    return float(np.polyfit(np.log(lags), np.log(sigma), 1)[0])


@pytest.mark.parametrize("n", [21, 22, 50, 100, 250])
def test_equals_polyfit_on_random_walks(n: int) -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED + n)
    for _ in range(50):
        prices = 6800.0 + np.cumsum(rng.normal(scale=1.3, size=n))
        got = hurst(prices, MIN_LAG, MAX_LAG)
        assert got is not None
        assert got == pytest.approx(polyfit_reference(prices, MIN_LAG, MAX_LAG), abs=1e-9)


def test_equals_polyfit_for_other_lag_sets() -> None:
    rng = np.random.default_rng(SEED)
    prices = 100.0 + np.cumsum(rng.normal(size=80))
    for min_lag, max_lag in [(1, 2), (1, 10), (3, 30), (5, 7)]:
        got = hurst(prices, min_lag, max_lag)
        assert got == pytest.approx(polyfit_reference(prices, min_lag, max_lag), abs=1e-9)


def test_needs_max_lag_plus_two_prices() -> None:
    rng = np.random.default_rng(SEED)
    prices = 6800.0 + np.cumsum(rng.normal(size=MAX_LAG + 2))
    assert hurst(prices[: MAX_LAG + 1], MIN_LAG, MAX_LAG) is None
    value = hurst(prices, MIN_LAG, MAX_LAG)
    assert value is not None
    assert value == pytest.approx(polyfit_reference(prices, MIN_LAG, MAX_LAG), abs=1e-9)
    assert hurst(np.array([]), MIN_LAG, MAX_LAG) is None


def test_constant_or_non_finite_prices_are_unknown() -> None:
    assert hurst(np.full(100, 6800.25), MIN_LAG, MAX_LAG) is None
    prices = 6800.0 + np.cumsum(np.random.default_rng(SEED).normal(size=100))
    prices[40] = np.nan
    assert hurst(prices, MIN_LAG, MAX_LAG) is None


def test_linear_drift_changes_nothing() -> None:
    rng = np.random.default_rng(SEED)
    prices = 6800.0 + np.cumsum(rng.normal(size=100))
    trend = 0.37 * np.arange(100)
    base = hurst(prices, MIN_LAG, MAX_LAG)
    drifted = hurst(prices + trend, MIN_LAG, MAX_LAG)
    assert base is not None
    assert drifted is not None
    assert drifted == pytest.approx(base, abs=1e-9)
    # A perfectly straight line has sigma(τ) = 0 at every lag: unknown, not a crash.
    assert hurst(6800.0 + trend, MIN_LAG, MAX_LAG) is None


def test_rejects_a_lag_set_without_a_slope() -> None:
    with pytest.raises(ValueError, match="min_lag"):
        hurst(np.arange(50.0), 5, 5)


def fbm_paths(h: float, n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Exact fractional Brownian motion at t = 1..n by Cholesky of its covariance."""
    t = np.arange(1, n + 1, dtype=np.float64)
    cov = 0.5 * (t[:, None] ** (2 * h) + t[None, :] ** (2 * h) - np.abs(t[:, None] - t) ** (2 * h))
    return rng.standard_normal((count, n)) @ np.linalg.cholesky(cov).T


def test_fractional_brownian_motion_is_ordered_and_near_known_means() -> None:
    # Measured means of this estimator on 100-point fBm (see the quant notes); it is biased low.
    expected = {0.3: 0.26, 0.5: 0.41, 0.7: 0.56}
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    means = {}
    for h, target in expected.items():
        values = [hurst(path, MIN_LAG, MAX_LAG) for path in fbm_paths(h, 100, 300, rng)]
        assert all(v is not None for v in values)
        means[h] = float(np.mean(np.array(values, dtype=np.float64)))
        print(f"H={h}: mean estimate {means[h]:.3f}")
        assert means[h] == pytest.approx(target, abs=0.05)
    assert means[0.3] < means[0.5] < means[0.7]


def test_iid_noise_around_a_level_is_near_zero() -> None:
    rng = np.random.default_rng(SEED)
    values = [hurst(6800.0 + rng.normal(size=100), MIN_LAG, MAX_LAG) for _ in range(300)]
    mean = float(np.mean(np.array(values, dtype=np.float64)))
    print(f"seed {SEED}: i.i.d. noise mean estimate {mean:.3f}")
    assert abs(mean) < 0.1
