"""Statistics of a backtest: risk-adjusted returns of daily PnL and drawdown of closed trades.

Sharpe and Sortino are computed on the PnL of each session in dollars (a trade counts in the
session it closes in; sessions without a trade count as 0), annualised by √252 sessions a year,
with no risk-free rate: the balance earns nothing between trades. Dollars rather than returns
because sizes are a fraction of the balance, so the two give nearly the same ratio, and the
dollars are what the daemon reports per day.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

SESSIONS_PER_YEAR = 252
FloatArray = npt.NDArray[np.float64]


def sharpe(daily_pnl: FloatArray) -> float | None:
    """Annualised mean / standard deviation (ddof 1) of daily PnL; None below 2 sessions or for
    a PnL that never varies."""
    if daily_pnl.shape[0] < 2:
        return None
    spread = float(np.std(daily_pnl, ddof=1))
    if not spread > 0.0:
        return None
    return float(np.mean(daily_pnl)) / spread * math.sqrt(SESSIONS_PER_YEAR)


def sortino(daily_pnl: FloatArray) -> float | None:
    """Annualised mean / downside deviation (root mean square of the losing days' PnL, over all
    days); None without a losing day."""
    if daily_pnl.shape[0] < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(daily_pnl, 0.0) ** 2)))
    if not downside > 0.0:
        return None
    return float(np.mean(daily_pnl)) / downside * math.sqrt(SESSIONS_PER_YEAR)


def max_drawdown(starting_balance: float, balances: FloatArray) -> tuple[float, float]:
    """Largest fall of the balance after a closed trade below its peak so far, in dollars and
    as a share of that peak (each its own maximum), as the daemon's summary reports it."""
    if balances.shape[0] == 0:
        return 0.0, 0.0
    peaks = np.maximum.accumulate(np.concatenate(([starting_balance], balances)))[1:]
    falls = peaks - balances
    shares = np.divide(falls, peaks, out=np.zeros_like(falls), where=peaks > 0)
    return float(falls.max()), float(shares.max())
