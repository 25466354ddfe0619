"""How much of a sweep's best result is luck: PBO by CSCV, and the deflated Sharpe ratio.

A sweep that tries thousands of parameter sets will find one that looks good on any data, noise
included. Two measurements say how far to trust the winner:

- The probability of backtest overfitting (PBO), estimated by combinatorially symmetric
  cross-validation: D. H. Bailey, J. M. Borwein, M. López de Prado and Q. J. Zhu, "The
  probability of backtest overfitting", Journal of Computational Finance 20(4), 2017. It is the
  share of train/test splits of the history in which the combination best in sample ranks in the
  lower half out of sample.
- The deflated Sharpe ratio (DSR) of the best combination: D. H. Bailey and M. López de Prado,
  "The deflated Sharpe ratio: correcting for selection bias, backtest overfitting and
  non-normality", Journal of Portfolio Management 40(5), 2014. It is the probability that the
  best combination's true Sharpe ratio exceeds the Sharpe ratio the best of that many trials
  would show by luck alone, given the length, skewness and kurtosis of its returns.

Sharpe ratios here are per period (per session for daily PnL), never annualised: both papers'
formulas are stated in the returns' own frequency. Pure numpy/scipy, no I/O.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

EULER_GAMMA = 0.5772156649015329
"""The Euler–Mascheroni constant, in the expected maximum of N Gaussian draws."""

DEFAULT_BLOCKS = 16
"""Bailey et al. use S = 16 blocks: C(16, 8) = 12,870 train/test splits."""

_CHUNK_CELLS = 1 << 17
"""Splits × strategies evaluated at once: a few MB of arrays whatever the sweep's size, and
plain element-wise numpy (no BLAS threads to contend with a sweep's workers)."""


@dataclass(frozen=True, slots=True)
class PboResult:
    """The outcome of CSCV over a T × N matrix of per-period returns.

    `logits` has one value per split, λ = ln(ω / (1 − ω)) with ω the out-of-sample relative
    rank of the in-sample best; `pbo` is the share of λ ≤ 0. `oos_loss_share` is the share of
    splits in which the in-sample best lost money out of sample (mean return below zero).
    """

    pbo: float
    logits: np.ndarray
    blocks: int
    splits: int
    oos_loss_share: float


@dataclass(frozen=True, slots=True)
class DsrResult:
    """The deflated Sharpe ratio of one strategy chosen among `trials`.

    `sharpe` is the chosen strategy's per-period Sharpe ratio, `benchmark` the expected
    maximum Sharpe ratio of `trials` luck-only trials (SR₀), `dsr` = PSR(SR₀) in [0, 1];
    `skewness` and `kurtosis` (non-excess: 3 for a normal) are of its returns.
    """

    dsr: float
    sharpe: float
    benchmark: float
    trials: int
    observations: int
    skewness: float
    kurtosis: float


def sharpe_ratios(returns: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratio (mean / sample std) of each column of a T × N matrix.

    A column without variance (a parameter set that never traded) gets 0, not NaN, so that it
    still ranks between winners and losers.
    """
    matrix = _as_matrix(returns)
    count = matrix.shape[0]
    return _sharpe_from_sums(matrix.sum(axis=0), np.square(matrix).sum(axis=0), count)


def blocks_for(periods: int, wanted: int = DEFAULT_BLOCKS) -> int:
    """The even number of CSCV blocks used for `periods` rows: `wanted`, fewer for short data.

    Every block keeps at least two periods so each half has a standard deviation.
    """
    if periods < 4:
        raise ValueError(f"PBO needs at least 4 periods, got {periods}")
    blocks = min(wanted, periods // 2)
    return max(2, blocks - blocks % 2)


def probability_of_backtest_overfitting(
    returns: np.ndarray, blocks: int = DEFAULT_BLOCKS
) -> PboResult:
    """PBO of choosing the best column of `returns` (T periods × N strategies) by Sharpe ratio.

    The rows are cut into S even blocks of ⌊T/S⌋ consecutive periods (the earliest T mod S rows
    are left out). For each of the C(S, S/2) ways to pick half the blocks as the training set
    (the rest is the test set), the strategy with the best in-sample Sharpe ratio is ranked
    among all N on the test set; ω = rank / (N + 1) with ties at their average rank.

    Parameters
    ----------
    returns : array of shape (T, N)
        Per-period returns (daily PnL) of N strategies over the same T periods; N ≥ 2.
    blocks : int
        The wanted S (even); reduced for short histories by `blocks_for`.
    """
    matrix = _as_matrix(returns)
    periods, strategies = matrix.shape
    if strategies < 2:
        raise ValueError(f"PBO needs at least 2 strategies, got {strategies}")
    count = blocks_for(periods, blocks)
    size = periods // count
    used = matrix[periods - size * count :].reshape(count, size, strategies)
    block_sums = used.sum(axis=1)
    block_squares = np.square(used).sum(axis=1)
    total_sums = block_sums.sum(axis=0)
    total_squares = block_squares.sum(axis=0)
    half = size * (count // 2)
    splits = np.array(list(itertools.combinations(range(count), count // 2)))
    logits = np.empty(len(splits))
    losses = 0
    step = max(1, _CHUNK_CELLS // strategies)
    for start in range(0, len(splits), step):
        chosen = splits[start : start + step]
        sums = block_sums[chosen[:, 0]]
        squares = block_squares[chosen[:, 0]]
        for column in range(1, chosen.shape[1]):
            sums += block_sums[chosen[:, column]]
            squares += block_squares[chosen[:, column]]
        best = np.argmax(_sharpe_order(sums, squares, half), axis=1)
        np.subtract(total_sums, sums, out=sums)
        np.subtract(total_squares, squares, out=squares)
        test = _sharpe_order(sums, squares, half)
        rows = np.arange(len(chosen))
        best_test = test[rows, best][:, None]
        below = np.count_nonzero(test < best_test, axis=1)
        equal = np.count_nonzero(test == best_test, axis=1)
        omega = (below + (equal + 1) / 2.0) / (strategies + 1)
        logits[start : start + len(chosen)] = np.log(omega / (1.0 - omega))
        losses += int(np.count_nonzero(sums[rows, best] < 0.0))
    return PboResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        blocks=count,
        splits=len(splits),
        oos_loss_share=losses / len(splits),
    )


def expected_max_sharpe(trials: int, sharpe_variance: float) -> float:
    """SR₀: the expected maximum Sharpe ratio of `trials` trials whose true Sharpe is zero.

    E[max] ≈ √V · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e))), with V the variance of the
    trials' Sharpe ratios and γ the Euler–Mascheroni constant (Bailey and López de Prado 2014,
    after the false strategy theorem). One trial has nothing to be lucky against: 0.
    """
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    if trials == 1 or sharpe_variance <= 0.0:
        return 0.0
    spread = (1.0 - EULER_GAMMA) * ndtri(1.0 - 1.0 / trials) + EULER_GAMMA * ndtri(
        1.0 - 1.0 / (trials * math.e)
    )
    return float(math.sqrt(sharpe_variance) * spread)


def probabilistic_sharpe(
    sharpe: float, benchmark: float, observations: int, skewness: float, kurtosis: float
) -> float:
    """PSR: the probability that the true Sharpe ratio exceeds `benchmark`.

    Φ((SR − SR*) √(T − 1) / √(1 − γ₃ SR + (γ₄ − 1)/4 · SR²)), with γ₃ the skewness and γ₄ the
    (non-excess) kurtosis of the T returns behind SR; all Sharpe ratios per period.
    """
    if observations < 2:
        return math.nan
    spread = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if not spread > 0.0:
        return math.nan
    z = (sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(spread)
    return float(ndtr(z))


def deflated_sharpe(best_returns: np.ndarray, trial_sharpes: np.ndarray) -> DsrResult:
    """DSR of the strategy with returns `best_returns`, chosen among trials with `trial_sharpes`.

    The number of trials is the number of Sharpe ratios given (every combination the sweep
    evaluated). Correlated combinations make that count larger than the number of truly
    independent trials, which raises SR₀: the DSR errs on the side of doubt. A chosen strategy
    without variance (it never traded) has no Sharpe ratio to deflate: DSR is NaN.
    """
    returns = np.asarray(best_returns, dtype=float).ravel()
    sharpes = np.asarray(trial_sharpes, dtype=float).ravel()
    if not np.isfinite(returns).all() or not np.isfinite(sharpes).all():
        raise ValueError("returns and Sharpe ratios must be finite")
    observations = len(returns)
    trials = len(sharpes)
    variance = float(np.var(sharpes, ddof=1)) if trials > 1 else 0.0
    benchmark = expected_max_sharpe(max(trials, 1), variance)
    deviation = float(np.std(returns, ddof=1)) if observations > 1 else 0.0
    if deviation <= 1e-12 * float(np.max(np.abs(returns), initial=0.0)) or deviation == 0.0:
        return DsrResult(math.nan, 0.0, benchmark, trials, observations, math.nan, math.nan)
    centred = returns - returns.mean()
    moment2 = float(np.mean(centred**2))
    skewness = float(np.mean(centred**3)) / moment2**1.5
    kurtosis = float(np.mean(centred**4)) / moment2**2
    sharpe = float(returns.mean()) / deviation
    dsr = probabilistic_sharpe(sharpe, benchmark, observations, skewness, kurtosis)
    return DsrResult(dsr, sharpe, benchmark, trials, observations, skewness, kurtosis)


def _as_matrix(returns: np.ndarray) -> np.ndarray:
    matrix = np.asarray(returns, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"returns must be a T × N matrix, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("returns must be finite")
    return matrix


def _sharpe_order(sums: np.ndarray, squares: np.ndarray, count: int) -> np.ndarray:
    """A quantity that orders columns as their Sharpe ratios do, for columns of `count` periods.

    mean / std = s / √((n q − s²) / (n − 1)) for sum s and sum of squares q of n values; the
    factor √(n − 1) is common to the columns compared, so s / √(n q − s²) ranks them alike at
    a few element-wise passes. Columns without variance get 0, as in `sharpe_ratios`.
    """
    spread = np.multiply(squares, count)
    scale = spread.copy()
    spread -= np.square(sums)
    varied = spread > 1e-12 * scale
    np.sqrt(spread, out=spread, where=varied)
    return np.asarray(np.divide(sums, spread, out=np.zeros_like(sums), where=varied))


def _sharpe_from_sums(sums: np.ndarray, squares: np.ndarray, count: int) -> np.ndarray:
    """Sharpe ratio (ddof=1) from per-column sums and sums of squares over `count` periods.

    Variances within rounding of zero (against the squares' size) count as no variance.
    """
    mean = sums / count
    variance = (squares - sums * mean) / (count - 1)
    floor = 1e-12 * np.maximum(squares / count, 1e-300)
    flat = variance <= floor
    deviation = np.sqrt(np.where(flat, 1.0, variance))
    return np.where(flat, 0.0, mean / deviation)
