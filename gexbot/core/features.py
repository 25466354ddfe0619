"""Regime features of one minute: net gamma exposure, order flow, Hurst exponent, bands.

Arrays in, numbers out; None where a feature is unknown for lack of usable data. These run once
per simulated minute on the hot path of backtests, so each avoids per-call setup: the index
tables the Hurst estimator needs are built once per (length, lags) and cached.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from gexbot.core.types import BoolArray, Chain, FloatArray, GexRegime

IntArray = npt.NDArray[np.intp]

_RELATIVE_SIGMA_FLOOR = 1e-10


def near_the_money(chain: Chain, spot: float, strike_count: int) -> BoolArray | None:
    """Which contracts have one of the `strike_count` distinct strikes nearest to `spot`.

    None when the chain holds no more strikes than that (every contract counts): the common
    case, since the request asks Schwab for that many. A server that answers more (Schwab's
    `strikeCount` is documented as "above or below" the money) is trimmed here, so GEX is always
    summed over the same window. The nearest strikes of a sorted list are a contiguous run;
    a tie in distance goes to the lower strike.
    """
    strikes = chain.strikes
    if strikes.shape[0] <= strike_count:
        return None
    nearest = np.argsort(np.abs(strikes - spot), kind="stable")[:strike_count]
    low, high = float(strikes[nearest].min()), float(strikes[nearest].max())
    return (chain.strike >= low) & (chain.strike <= high)


def net_gex(
    chain: Chain, spot: float, multiplier: float, strike_count: int | None = None
) -> tuple[float | None, int]:
    """Sum dealers' dollar gamma over the chain: calls add gamma·OI·multiplier·spot, puts subtract.

    Parameters
    ----------
    chain : `gamma` per share per 1-point move, `open_interest` in contracts, one element per
        contract.
    spot : the index price, in points.
    multiplier : units of the underlying per contract (100 for index options).
    strike_count : sum over the contracts of this many distinct strikes nearest to spot
        (`near_the_money`); None sums the whole chain.

    Returns ``(net_gex_usd, excluded)``: contracts whose gamma or open interest is missing (NaN),
    infinite or negative (the sentinel -999 included) are left out and counted in `excluded`.
    `net_gex_usd` is None when no contract is usable: that is bad data, not a zero exposure.
    """
    window = near_the_money(chain, spot, strike_count) if strike_count is not None else None
    gamma = chain.gamma
    oi = chain.open_interest
    exposure = gamma * oi
    # NaN fails every comparison (and propagates through minimum and the product), so these
    # two tests also drop missing values; an infinite input makes the product inf or NaN.
    usable = (np.minimum(gamma, oi) >= 0.0) & (exposure < math.inf)
    if window is not None:
        usable &= window
    n_usable = int(np.count_nonzero(usable))
    in_window = int(gamma.shape[0]) if window is None else int(np.count_nonzero(window))
    excluded = in_window - n_usable
    if n_usable == 0:
        return None, excluded
    signed = np.where(chain.is_call, exposure, -exposure)
    net = float(signed[usable].sum()) * multiplier * spot
    return net, excluded


def gex_regime(net: float) -> GexRegime:
    """Classify net gamma exposure: POSITIVE above zero, NEGATIVE otherwise."""
    return GexRegime.POSITIVE if net > 0.0 else GexRegime.NEGATIVE


def mean_ofi(samples: FloatArray) -> float | None:
    """Average the order-flow samples given (the caller keeps the window); None when empty."""
    n = len(samples)
    if n == 0:
        return None
    return float(samples.sum()) / n


@lru_cache(maxsize=256)
def _lag_tables(n: int, min_lag: int, max_lag: int) -> tuple[IntArray, FloatArray, FloatArray]:
    """Index table of every lagged difference, padded to one rectangle, plus regression weights.

    Cell (k, t) holds t + τ for τ = min_lag + k when t < n - τ, and t otherwise, so that
    ``prices[table] - prices[:n - min_lag]`` is p[t+τ] - p[t] on valid cells and exactly 0 on
    padding, which adds nothing to a sum. `counts` holds each lag's number of differences. The
    slope of a least-squares line through (x, y) is Σ w·y with w = (x - x̄) / Σ(x - x̄)², so the
    weights are computed once here.
    """
    lags = np.arange(min_lag, max_lag + 1)
    t = np.arange(n - min_lag)
    valid = t[None, :] < (n - lags)[:, None]
    ahead = np.where(valid, t[None, :] + lags[:, None], t[None, :])
    counts = (n - lags).astype(np.float64)
    x = np.log(lags.astype(np.float64))
    xc = x - x.mean()
    weights = xc / float(xc @ xc)
    for table in (ahead, counts, weights):
        table.flags.writeable = False
    return ahead, counts, weights


def hurst(prices: FloatArray, min_lag: int, max_lag: int) -> float | None:
    """Estimate the Hurst exponent as the log-log slope of lagged-difference spread against lag.

    For τ = min_lag .. max_lag (inclusive), sigma(τ) is the population standard deviation of
    p[t+τ] - p[t]; H is the least-squares slope of log sigma(τ) on log τ, the same number as
    ``np.polyfit(np.log(lags), np.log(sigma), 1)[0]``. The estimator is biased low on short
    buffers (about 0.41 for a random walk of 100 points); the strategy's threshold is applied to
    it as it is. None when fewer than max_lag + 2 prices are given or any sigma(τ) is not
    finite or is 0 (constant prices), up to rounding noise: below 1e-10 of the last price.
    """
    if min_lag < 1 or max_lag <= min_lag:
        raise ValueError(f"hurst needs 1 <= min_lag < max_lag, got {min_lag}..{max_lag}")
    n = prices.shape[0]
    if n < max_lag + 2:
        return None
    ahead, counts, weights = _lag_tables(n, min_lag, max_lag)
    diffs = prices[ahead] - prices[: n - min_lag]
    # Padding cells are exactly 0, so they add nothing to either sum. Var = E[d²] − E[d]²: the
    # differences of a 100-price buffer are small beside their mean only on a steep trend, and
    # even then the cancellation costs about 3 of 16 digits, against a threshold of 0.5.
    sums = diffs.sum(axis=1)
    variances = (np.einsum("ij,ij->i", diffs, diffs) - sums * sums / counts) / counts
    # sigma below ~1e-10 of the price level is rounding noise of prices that do not move (a
    # constant or a straight line), not a spread. A NaN fails both comparisons.
    floor = (_RELATIVE_SIGMA_FLOOR * float(prices[-1])) ** 2
    if not (float(variances.min()) > floor and float(variances.max()) < math.inf):
        return None
    # log sigma = ½ log sigma², so the slope on log sigma is half the slope on log sigma².
    return 0.5 * float(weights @ np.log(variances))


def bands(prices: FloatArray, width_sigma: float) -> tuple[float, float, float, float] | None:
    """Compute mean-reversion bands over all `prices`: (mid μ, μ + w·sigma, μ - w·sigma, sigma).

    sigma is the population standard deviation (ddof=0). sigma = 0 is returned as is; the caller
    decides what a degenerate band means. None when fewer than 2 prices or any is not finite.
    """
    n = prices.shape[0]
    if n < 2:
        return None
    mid = float(prices.sum()) / n
    if not math.isfinite(mid):
        return None
    dev = prices - mid
    sigma = math.sqrt(float(dev @ dev) / n)
    half_width = width_sigma * sigma
    return mid, mid + half_width, mid - half_width, sigma


def log_returns(closes: FloatArray, count: int) -> FloatArray | None:
    """Return the last `count` one-minute log returns from the last count + 1 closes.

    None when fewer than count + 1 closes are given or any of them is not a positive finite
    price.
    """
    if count < 1:
        raise ValueError(f"log_returns needs count >= 1, got {count}")
    if closes.shape[0] < count + 1:
        return None
    tail = closes[-(count + 1) :]
    # A NaN makes min and max NaN, which fails both comparisons.
    if not (float(tail.min()) > 0.0 and float(tail.max()) < math.inf):
        return None
    logs = np.log(tail)
    return logs[1:] - logs[:-1]
