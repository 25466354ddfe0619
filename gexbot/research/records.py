"""Kernel records back to the core's values: `TRADE_DTYPE` rows as `Trade`s.

The backtest writes and compares trades as the daemon does (`schema.trade_row` of a `Trade`),
so the two runs meet in one type, not in two spellings of the same columns.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from gexbot.core.session import EASTERN
from gexbot.core.types import Direction, GexRegime, Trade
from gexbot.research.enums import DIRECTION_CODES, EXIT_REASONS, REGIME_CODES
from gexbot.settings import Preset

_DIRECTIONS = {code: direction for direction, code in DIRECTION_CODES.items()}
_REGIMES: dict[int, GexRegime] = {code: regime for regime, code in REGIME_CODES.items()}


def minute_time(minute: int) -> datetime:
    """The New York time of a minute counted from the Unix epoch."""
    return datetime.fromtimestamp(int(minute) * 60, tz=EASTERN)


def to_trades(records: np.ndarray, preset: Preset) -> list[Trade]:
    """The kernel's round trips as the `Trade`s `step` reports, in order."""
    trades = []
    for row in records:
        direction: Direction = _DIRECTIONS[int(row["direction"])]
        trades.append(
            Trade(
                variant=preset.variant,
                symbol=preset.symbol,
                direction=direction,
                bucket=preset.strategy.sizing.bucket,
                entry_time=minute_time(row["entry_minute"]),
                entry_price=float(row["entry_price"]),
                exit_time=minute_time(row["exit_minute"]),
                exit_price=float(row["exit_price"]),
                size_usd=float(row["size_usd"]),
                exit_regime=_REGIMES.get(int(row["exit_regime"])),
                exit_reason=EXIT_REASONS[int(row["exit_reason"])],
                pnl=float(row["pnl"]),
            )
        )
    return trades
