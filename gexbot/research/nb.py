"""The rules of `gexbot.core` compiled over feature columns: one pass per parameter set.

Only NumPy arrays and plain numbers go in; trades come out as `TRADE_DTYPE` records and totals
as `COUNTS_DTYPE` records (`enums.py`). Each arithmetic expression is written in the same order
as its twin in `gexbot/core` (rules.py, broker.py, engine.py), so that IEEE-754 double precision
gives the same bits: equality with `step` is held by tests, trade for trade and column for
column, not "close". numba compiles without fast-math, so no reassociation or fused
multiply-add changes an operation.

Feature columns (one element per session minute, sessions concatenated in order):
    minute     int64   whole minutes since the Unix epoch
    skipped    bool    the minute's data was unusable (`skip`: nothing is decided)
    spot       float64 index price
    ofi        float64 mean order-flow sample (NaN: unknown)
    regime     int8    GEX regime code (`enums.REGIME_CODES`, -1 unknown)
    hurst      float64 Hurst exponent (NaN: unknown)
    hmm        int8    HMM state code (`enums.HMM_CODES`, -1 unknown)
    band_mid   float64 μ of the band window (NaN: unknown)
    band_sigma float64 σ of the band window (NaN: unknown)
    n_prices   int32   prices in the session's buffer after this minute's
    gap        float64 |first spot − previous close| / previous close (NaN: unknown)
Per session: `offsets` (n_sessions + 1) delimit each session's rows; `close_minute` is its
close. A parameter set is a float vector in `enums.PARAM_NAMES` order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gexbot.research.enums import (
    COUNTS_DTYPE,
    EOD_FLATTEN,
    HMM_LOW,
    P_BALANCE,
    P_COOLDOWN,
    P_FLATTEN,
    P_GAP,
    P_GAP_PRICES,
    P_HURST,
    P_KELLY,
    P_MAX_FRACTION,
    P_OFI_LONG,
    P_OFI_SHORT,
    P_SLIPPAGE,
    P_STOP_SIGMA,
    P_WIDTH,
    P_WIN_RATE,
    REGIME_FLIP,
    REGIME_POSITIVE,
    STOP_LOSS,
    TARGET,
    TRADE_DTYPE,
    UNKNOWN,
)


@njit(cache=True)
def _entry_plan(
    price: float,
    direction: int,
    mid: float,
    sigma: float,
    balance: float,
    params: np.ndarray,
) -> tuple[float, float, float, float]:
    """(fill, stop, kelly, size_usd) of an entry as `broker.plan_entry` makes it.

    Kelly ≤ 0 means no trade (its size is then 0).
    """
    fill = price + direction * params[P_SLIPPAGE]
    risk = params[P_STOP_SIGMA] * sigma
    stop = fill - direction * risk
    reward = direction * (mid - fill)
    reward_risk = reward / risk if risk > 0.0 else 0.0
    win_rate = params[P_WIN_RATE]
    kelly = 0.0
    if reward_risk > 0.0:
        kelly = params[P_KELLY] * (win_rate - (1.0 - win_rate) / reward_risk)
    if not kelly > 0.0:
        return fill, stop, kelly, 0.0
    max_fraction = params[P_MAX_FRACTION]
    fraction = max_fraction if max_fraction < kelly else kelly
    return fill, stop, kelly, fraction * balance


@njit(cache=True)
def _breach(price: float, mid: float, sigma: float, width: float) -> int:
    """-1 (SHORT) above the upper band, +1 (LONG) below the lower one, 0 inside or σ = 0."""
    if not sigma > 0.0:
        return 0
    half_width = width * sigma
    if price > mid + half_width:
        return -1
    if price < mid - half_width:
        return 1
    return 0


@njit(cache=True)
def simulate(
    minute: np.ndarray,
    skipped: np.ndarray,
    spot: np.ndarray,
    ofi: np.ndarray,
    regime: np.ndarray,
    hurst: np.ndarray,
    hmm: np.ndarray,
    band_mid: np.ndarray,
    band_sigma: np.ndarray,
    n_prices: np.ndarray,
    gap: np.ndarray,
    offsets: np.ndarray,
    close_minute: np.ndarray,
    params: np.ndarray,
    daily_pnl: np.ndarray,
    session_trades: np.ndarray,
    trades: np.ndarray,
    counts: np.ndarray,
) -> int:
    """Fold the rules over every session for one parameter set; return the trades recorded.

    Writes each session's PnL (balance at its end − at its start, as `SessionEnded`) into
    `daily_pnl`, its closed trades into `session_trades`, the totals into `counts[0]`, and, when
    `trades` has room, each round trip into `trades`.
    """
    width = params[P_WIDTH]
    hurst_below = params[P_HURST]
    short_below = params[P_OFI_SHORT]
    long_above = params[P_OFI_LONG]
    gap_above = params[P_GAP]
    gap_prices = np.int64(params[P_GAP_PRICES])
    cooldown = np.int64(params[P_COOLDOWN])
    flatten = np.int64(params[P_FLATTEN])
    balance = params[P_BALANCE]
    record = trades.shape[0] > 0

    direction = 0
    entry_price = 0.0
    entry_minute = np.int64(0)
    size_usd = 0.0
    target = 0.0
    stop = 0.0
    entry_regime = UNKNOWN
    entry_session = -1
    cooling = False
    cooldown_until = np.int64(0)
    n_trades = 0
    wins = 0
    by_reason = np.zeros(4, np.int64)
    held = 0
    decided = 0

    for s in range(offsets.shape[0] - 1):
        start_balance = balance
        closed_today = 0
        flatten_at = close_minute[s] - flatten
        for i in range(offsets[s], offsets[s + 1]):
            if skipped[i]:
                continue
            decided += 1
            at = minute[i]
            price = spot[i]
            if direction != 0:
                reason = -1
                if direction * (price - stop) <= 0.0:
                    reason = STOP_LOSS
                elif direction * (price - target) >= 0.0:
                    reason = TARGET
                elif regime[i] != UNKNOWN and regime[i] != entry_regime:
                    reason = REGIME_FLIP
                elif entry_session != s or at >= flatten_at:
                    reason = EOD_FLATTEN
                if reason < 0:
                    held += 1
                    continue
                pnl = size_usd * direction * (price - entry_price) / entry_price
                balance = balance + pnl
                if record:
                    row = trades[n_trades]
                    row["session"] = s
                    row["direction"] = direction
                    row["entry_minute"] = entry_minute
                    row["entry_price"] = entry_price
                    row["exit_minute"] = at
                    row["exit_price"] = price
                    row["size_usd"] = size_usd
                    row["exit_regime"] = regime[i]
                    row["exit_reason"] = reason
                    row["pnl"] = pnl
                    row["balance"] = balance
                n_trades += 1
                closed_today += 1
                by_reason[reason] += 1
                if pnl > 0:
                    wins += 1
                if reason == STOP_LOSS:
                    cooling = True
                    cooldown_until = at + cooldown
                direction = 0
                continue  # an exit and an entry never share a minute

            if cooling and at < cooldown_until:
                continue
            if n_prices[i] < gap_prices and gap[i] > gap_above:
                continue
            if at >= flatten_at:
                continue
            if hmm[i] != HMM_LOW or regime[i] != REGIME_POSITIVE:
                continue
            if not hurst[i] < hurst_below:
                continue
            mid = band_mid[i]
            sigma = band_sigma[i]
            if np.isnan(mid) or np.isnan(sigma):
                continue
            side = _breach(price, mid, sigma, width)
            if side == 0:
                continue
            flow = ofi[i]
            if np.isnan(flow):
                continue
            if side < 0 and not flow < short_below:
                continue
            if side > 0 and not flow > long_above:
                continue
            fill, stop_at, kelly, size = _entry_plan(price, side, mid, sigma, balance, params)
            if not kelly > 0.0:
                continue
            direction = side
            entry_price = fill
            entry_minute = at
            size_usd = size
            target = mid
            stop = stop_at
            entry_regime = regime[i]
            entry_session = s
            held += 1
        daily_pnl[s] = balance - start_balance
        session_trades[s] = closed_today

    totals = counts[0]
    totals["trades"] = n_trades
    totals["wins"] = wins
    totals["stop_loss"] = by_reason[STOP_LOSS]
    totals["target"] = by_reason[TARGET]
    totals["regime_flip"] = by_reason[REGIME_FLIP]
    totals["eod_flatten"] = by_reason[EOD_FLATTEN]
    totals["held_minutes"] = held
    totals["decided_minutes"] = decided
    totals["end_balance"] = balance
    return n_trades


@njit(cache=True)
def backtest(
    minute: np.ndarray,
    skipped: np.ndarray,
    spot: np.ndarray,
    ofi: np.ndarray,
    regime: np.ndarray,
    hurst: np.ndarray,
    hmm: np.ndarray,
    band_mid: np.ndarray,
    band_sigma: np.ndarray,
    n_prices: np.ndarray,
    gap: np.ndarray,
    offsets: np.ndarray,
    close_minute: np.ndarray,
    params: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One parameter set with its trades: (trades, daily_pnl, session_trades, counts)."""
    n_sessions = offsets.shape[0] - 1
    daily_pnl = np.zeros(n_sessions, np.float64)
    session_trades = np.zeros(n_sessions, np.int64)
    counts = np.zeros(1, COUNTS_DTYPE)
    room = np.zeros(minute.shape[0] // 2 + 1, TRADE_DTYPE)
    n = simulate(minute, skipped, spot, ofi, regime, hurst, hmm, band_mid, band_sigma, n_prices,
                 gap, offsets, close_minute, params, daily_pnl, session_trades, room, counts)
    return room[:n].copy(), daily_pnl, session_trades, counts


@njit(cache=True)
def evaluate_many(
    minute: np.ndarray,
    skipped: np.ndarray,
    spot: np.ndarray,
    ofi: np.ndarray,
    regime: np.ndarray,
    hurst: np.ndarray,
    hmm: np.ndarray,
    band_mid: np.ndarray,
    band_sigma: np.ndarray,
    n_prices: np.ndarray,
    gap: np.ndarray,
    offsets: np.ndarray,
    close_minute: np.ndarray,
    param_sets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Many parameter sets (rows of `param_sets`): (daily_pnl, session_trades, counts).

    daily_pnl and session_trades are (n_sets, n_sessions); counts is (n_sets,) records.
    """
    n_sets = param_sets.shape[0]
    n_sessions = offsets.shape[0] - 1
    daily_pnl = np.zeros((n_sets, n_sessions), np.float64)
    session_trades = np.zeros((n_sets, n_sessions), np.int64)
    counts = np.zeros(n_sets, COUNTS_DTYPE)
    no_room = np.zeros(0, TRADE_DTYPE)
    for k in range(n_sets):
        simulate(minute, skipped, spot, ofi, regime, hurst, hmm, band_mid, band_sigma, n_prices,
                 gap, offsets, close_minute, param_sets[k], daily_pnl[k], session_trades[k],
                 no_room, counts[k:k + 1])
    return daily_pnl, session_trades, counts
