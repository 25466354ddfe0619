"""Metrics of daily PnL, many parameter sets at once: the numbers a sweep ranks by.

Every statistic is a function of a (n_sets, n_sessions) matrix of each session's PnL in
dollars, so one code path serves a whole sweep, a training window of a walk-forward and the
stitched out-of-sample run. Sharpe and Sortino ratios are annualised with 252 sessions a year
(daily PnL in dollars on a balance that moves little is proportional to daily returns, and the
ratio does not depend on the scale).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SESSIONS_PER_YEAR = 252


def sharpe(daily: np.ndarray) -> np.ndarray:
    """Annualised Sharpe ratio of each row's daily PnL; 0 for a row without variance."""
    rows = _rows(daily)
    count = rows.shape[1]
    if count < 2:
        return np.zeros(rows.shape[0])
    deviation = rows.std(axis=1, ddof=1)
    flat = deviation <= 1e-12 * np.maximum(np.abs(rows).max(axis=1), 1e-300)
    ratio = rows.mean(axis=1) / np.where(flat, 1.0, deviation)
    return np.where(flat, 0.0, ratio * np.sqrt(SESSIONS_PER_YEAR))


def sortino(daily: np.ndarray) -> np.ndarray:
    """Annualised Sortino ratio: mean over the root mean square of the losing sessions.

    0 for a row that never lost (no downside to divide by) or never traded.
    """
    rows = _rows(daily)
    if rows.shape[1] == 0:
        return np.zeros(rows.shape[0])
    downside = np.sqrt(np.mean(np.square(np.minimum(rows, 0.0)), axis=1))
    flat = downside <= 1e-12 * np.maximum(np.abs(rows).max(axis=1), 1e-300)
    ratio = rows.mean(axis=1) / np.where(flat, 1.0, downside)
    return np.where(flat, 0.0, ratio * np.sqrt(SESSIONS_PER_YEAR))


def total_pnl(daily: np.ndarray) -> np.ndarray:
    """Dollars gained over the sessions."""
    return np.asarray(_rows(daily).sum(axis=1), dtype=np.float64)


def max_drawdown(daily: np.ndarray) -> np.ndarray:
    """Largest fall of the session-end equity from its running peak, in dollars (≥ 0)."""
    rows = _rows(daily)
    if rows.shape[1] == 0:
        return np.zeros(rows.shape[0])
    equity = np.cumsum(rows, axis=1)
    peak = np.maximum.accumulate(np.maximum(equity, 0.0), axis=1)
    return np.asarray((peak - equity).max(axis=1), dtype=np.float64)


METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sharpe": sharpe,
    "sortino": sortino,
    "pnl": total_pnl,
}
"""What `--metric` may rank combinations by; higher is better for each."""


def _rows(daily: np.ndarray) -> np.ndarray:
    rows = np.asarray(daily, dtype=np.float64)
    if rows.ndim != 2:
        raise ValueError(f"daily PnL must be (n_sets, n_sessions), got shape {rows.shape}")
    return rows
