"""Paper fills, half-Kelly sizing and realized PnL: the money arithmetic of the strategy.

Kept apart from the engine so each formula of the strategy (README, "The strategy": the size,
the entry fill, the PnL) is one small function with its own tests, and the engine reads as the
rules rather than arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from gexbot.core.types import Direction


@dataclass(frozen=True, slots=True)
class EntryPlan:
    """Where a candidate entry would fill, aim and stop, and what Kelly says about it.

    `kelly` is the (fractional) Kelly fraction before the cap; `size_usd` is capital at risk after
    the cap. A plan with `kelly <= 0` is not traded.
    """

    direction: Direction
    fill: float
    target: float
    stop: float
    reward_risk: float
    kelly: float
    size_usd: float

    @property
    def tradable(self) -> bool:
        """True when Kelly gives a positive stake."""
        return self.kelly > 0.0


def fill_price(direction: Direction, spot: float, slippage: float) -> float:
    """Entry fill with slippage always against the trade: LONG pays up, SHORT sells lower."""
    return spot + direction.sign * slippage


def kelly_fraction(win_rate: float, reward_risk: float, scale: float) -> float:
    """Scaled Kelly fraction f = scale · (p − (1 − p) / b); ≤ 0 when the edge is gone.

    A reward/risk `b` ≤ 0 means the target lies on the wrong side of the fill: no edge at all,
    so the fraction is reported as 0 rather than the formula's meaningless value.
    """
    if reward_risk <= 0.0:
        return 0.0
    return scale * (win_rate - (1.0 - win_rate) / reward_risk)


def plan_entry(
    direction: Direction,
    spot: float,
    band_mid: float,
    band_sigma: float,
    *,
    stop_sigma: float,
    slippage: float,
    win_rate: float,
    kelly_scale: float,
    max_fraction: float,
    balance: float,
) -> EntryPlan:
    """Fill, target (the band mid), stop (stop_sigma · σ from the fill) and capped Kelly size."""
    fill = fill_price(direction, spot, slippage)
    risk = stop_sigma * band_sigma
    stop = fill - direction.sign * risk
    reward = direction.sign * (band_mid - fill)
    reward_risk = reward / risk if risk > 0.0 else 0.0
    kelly = kelly_fraction(win_rate, reward_risk, kelly_scale)
    size_usd = min(kelly, max_fraction) * balance if kelly > 0.0 else 0.0
    return EntryPlan(
        direction=direction,
        fill=fill,
        target=band_mid,
        stop=stop,
        reward_risk=reward_risk,
        kelly=kelly,
        size_usd=size_usd,
    )


def realized_pnl(direction: Direction, size_usd: float, entry: float, exit_price: float) -> float:
    """PnL in dollars: size × direction-adjusted percent move from the entry fill."""
    return size_usd * direction.sign * (exit_price - entry) / entry
