"""Codes and record layouts shared by the compiled kernel and the Python around it.

The kernel (`nb.py`) sees only numbers: enum members become small integers, a parameter set
becomes a float vector, and its results are NumPy structured arrays of the dtypes below. Kept
in one module so the kernel, the feature table and the readers of results agree on them.
"""

from __future__ import annotations

import numpy as np

from gexbot.core.types import Direction, ExitReason, GexRegime, HmmState

UNKNOWN = -1
"""Code of a feature that is unknown this minute (None in `Features`)."""

REGIME_CODES: dict[GexRegime, int] = {GexRegime.NEGATIVE: 0, GexRegime.POSITIVE: 1}
HMM_CODES: dict[HmmState, int] = {HmmState.HIGH: 0, HmmState.LOW: 1}
REGIME_POSITIVE = REGIME_CODES[GexRegime.POSITIVE]
HMM_LOW = HMM_CODES[HmmState.LOW]

DIRECTION_CODES: dict[Direction, int] = {Direction.LONG: 1, Direction.SHORT: -1}
"""A direction's code is its sign: +1 LONG, -1 SHORT (0: flat)."""

EXIT_REASONS: tuple[ExitReason, ...] = (
    ExitReason.STOP_LOSS,
    ExitReason.TARGET,
    ExitReason.REGIME_FLIP,
    ExitReason.EOD_FLATTEN,
)
"""Exit reasons in the order the rules test them; a reason's code is its index here."""
STOP_LOSS, TARGET, REGIME_FLIP, EOD_FLATTEN = range(len(EXIT_REASONS))

PARAM_NAMES: tuple[str, ...] = (
    "strategy.bands.width_sigma",
    "strategy.stop_sigma",
    "strategy.hurst.threshold",
    "strategy.ofi.short_below",
    "strategy.ofi.long_above",
    "win_rate",
    "strategy.sizing.kelly_fraction",
    "strategy.sizing.max_fraction",
    "strategy.sizing.slippage_points",
    "strategy.cooldown_minutes",
    "strategy.gap.threshold",
    "strategy.gap.suspend_until_prices",
    "strategy.flatten_minutes_before_close",
    "strategy.starting_balance",
)
"""The kernel's parameter vector, in order. `win_rate` is the win rate of the preset's bucket
(`strategy.sizing.win_rates.<bucket>`); integers (minutes, prices) are stored as exact floats."""
(
    P_WIDTH,
    P_STOP_SIGMA,
    P_HURST,
    P_OFI_SHORT,
    P_OFI_LONG,
    P_WIN_RATE,
    P_KELLY,
    P_MAX_FRACTION,
    P_SLIPPAGE,
    P_COOLDOWN,
    P_GAP,
    P_GAP_PRICES,
    P_FLATTEN,
    P_BALANCE,
) = range(len(PARAM_NAMES))
N_PARAMS = len(PARAM_NAMES)

TRADE_DTYPE = np.dtype(
    [
        ("session", np.int32),
        ("direction", np.int8),
        ("entry_minute", np.int64),
        ("entry_price", np.float64),
        ("exit_minute", np.int64),
        ("exit_price", np.float64),
        ("size_usd", np.float64),
        ("exit_regime", np.int8),
        ("exit_reason", np.int8),
        ("pnl", np.float64),
        ("balance", np.float64),
    ],
    align=True,
)
"""One round trip of a backtest. Minutes are whole minutes since the Unix epoch (UTC);
`balance` is the balance after the exit."""

COUNTS_DTYPE = np.dtype(
    [
        ("trades", np.int64),
        ("wins", np.int64),
        ("stop_loss", np.int64),
        ("target", np.int64),
        ("regime_flip", np.int64),
        ("eod_flatten", np.int64),
        ("held_minutes", np.int64),
        ("decided_minutes", np.int64),
        ("end_balance", np.float64),
    ],
    align=True,
)
"""Totals of one parameter set: trades, winners (PnL > 0), trades by exit reason (in
`EXIT_REASONS` order), minutes that ended holding a position, minutes decided (not skipped),
and the balance at the end."""
EXIT_COUNT_FIELDS = ("stop_loss", "target", "regime_flip", "eod_flatten")
