"""The money arithmetic: fills, half-Kelly sizing, target and stop, realized PnL.

Expected values are written out from the strategy's formulas (README) in the test itself, so a
change in the broker's arithmetic cannot pass by agreeing with itself.
"""

from __future__ import annotations

import pytest
from scenario import STRATEGY

from gexbot.core.broker import fill_price, kelly_fraction, plan_entry, realized_pnl
from gexbot.core.types import Direction

LONG, SHORT = Direction.LONG, Direction.SHORT
WIN_RATE = 0.79
HALF = 0.5
CAP = 0.05
SLIPPAGE = 0.25
STOP_SIGMA = 3.0
BALANCE = 100_000.0


def plan(direction: Direction, spot: float, mid: float, sigma: float, balance: float = BALANCE):
    return plan_entry(
        direction,
        spot,
        mid,
        sigma,
        stop_sigma=STRATEGY.stop_sigma,
        slippage=STRATEGY.sizing.slippage_points,
        win_rate=STRATEGY.sizing.win_rate,
        kelly_scale=STRATEGY.sizing.kelly_fraction,
        max_fraction=STRATEGY.sizing.max_fraction,
        balance=balance,
    )


def test_es_preset_holds_the_design_numbers() -> None:
    sizing = STRATEGY.sizing
    assert (sizing.bucket, sizing.win_rate) == ("REVERSION", WIN_RATE)
    assert sizing.win_rates["MOMENTUM"] == 0.59
    assert (sizing.kelly_fraction, sizing.max_fraction) == (HALF, CAP)
    assert sizing.slippage_points == SLIPPAGE
    assert STRATEGY.stop_sigma == STOP_SIGMA
    assert STRATEGY.starting_balance == BALANCE


@pytest.mark.parametrize(
    ("direction", "spot", "fill"),
    [(LONG, 6800.0, 6800.25), (SHORT, 6800.0, 6799.75), (LONG, 21000.5, 21000.75)],
)
def test_fill_slips_against_the_trade(direction: Direction, spot: float, fill: float) -> None:
    assert fill_price(direction, spot, SLIPPAGE) == fill


@pytest.mark.parametrize("b", [0.3, 0.5, 1.0, 1.0833, 2.0, 10.0])
def test_kelly_is_half_the_kelly_formula(b: float) -> None:
    assert kelly_fraction(WIN_RATE, b, HALF) == pytest.approx(0.5 * (0.79 - 0.21 / b), rel=1e-12)


@pytest.mark.parametrize("b", [0.0, -0.5, -3.0])
def test_kelly_without_edge_is_zero(b: float) -> None:
    assert kelly_fraction(WIN_RATE, b, HALF) == 0.0


def test_kelly_changes_sign_at_break_even_reward_risk() -> None:
    break_even = 0.21 / 0.79
    assert kelly_fraction(WIN_RATE, break_even * 0.99, HALF) < 0.0
    assert kelly_fraction(WIN_RATE, break_even * 1.01, HALF) > 0.0


@pytest.mark.parametrize("direction", [LONG, SHORT])
def test_quant_worked_example(direction: Direction) -> None:
    """Fill 0.65 from μ with sigma = 0.2: b ≈ 1.08, f ≈ 0.30, capped to 5%: 5,000 on 100,000."""
    mid, sigma = 6800.0, 0.2
    fill = mid - direction.sign * 0.65
    spot = fill - direction.sign * SLIPPAGE
    p = plan(direction, spot, mid, sigma)
    assert p.fill == pytest.approx(fill, abs=1e-9)
    assert p.target == mid
    assert p.stop == pytest.approx(fill - direction.sign * 0.6, abs=1e-9)
    assert p.reward_risk == pytest.approx(0.65 / 0.6, rel=1e-9)
    assert round(p.reward_risk, 2) == 1.08
    assert p.kelly == pytest.approx(0.5 * (0.79 - 0.21 * 0.6 / 0.65), rel=1e-9)
    assert round(p.kelly, 2) == 0.30
    assert p.size_usd == pytest.approx(5000.0, abs=1e-9)
    assert p.tradable


def test_size_below_the_cap_is_kelly_times_balance() -> None:
    """b = 0.28 gives f = 0.5·(0.79 - 0.75) = 0.02 < 5%: 2,000 on 100,000."""
    mid, sigma = 6800.0, 1.0
    fill = mid - 0.84
    p = plan(LONG, fill - SLIPPAGE, mid, sigma)
    assert p.reward_risk == pytest.approx(0.28, rel=1e-9)
    assert p.kelly == pytest.approx(0.02, rel=1e-9)
    assert p.size_usd == pytest.approx(2000.0, rel=1e-9)


def test_size_scales_with_balance() -> None:
    p = plan(SHORT, 6810.0, 6800.0, 2.0, balance=37_000.0)
    assert p.size_usd == pytest.approx(0.05 * 37_000.0, rel=1e-12)


@pytest.mark.parametrize(
    ("direction", "spot"),
    [(LONG, 6799.9), (SHORT, 6800.1), (LONG, 6800.2), (SHORT, 6799.8)],
)
def test_no_trade_when_slippage_puts_the_target_behind_the_fill(
    direction: Direction, spot: float
) -> None:
    p = plan(direction, spot, 6800.0, 0.05)
    assert direction.sign * (p.target - p.fill) < 0.0
    assert p.kelly <= 0.0
    assert p.size_usd == 0.0
    assert not p.tradable


def test_no_trade_just_below_break_even() -> None:
    """b = 0.26 < 0.21/0.79: f < 0, no stake; b = 0.27 trades."""
    mid, sigma = 6800.0, 1.0
    below = plan(LONG, mid - 0.78 - SLIPPAGE, mid, sigma)
    above = plan(LONG, mid - 0.81 - SLIPPAGE, mid, sigma)
    assert below.reward_risk == pytest.approx(0.26, rel=1e-9)
    assert not below.tradable
    assert below.size_usd == 0.0
    assert above.tradable
    assert above.size_usd == pytest.approx(0.5 * (0.79 - 0.21 / 0.27) * BALANCE, rel=1e-9)


def test_zero_sigma_is_no_trade() -> None:
    assert not plan(LONG, 6790.0, 6800.0, 0.0).tradable


@pytest.mark.parametrize(
    ("direction", "exit_price", "pnl"),
    [
        (LONG, 6834.0, 25.0),
        (LONG, 6766.0, -25.0),
        (SHORT, 6834.0, -25.0),
        (SHORT, 6766.0, 25.0),
        (LONG, 6800.0, 0.0),
    ],
)
def test_pnl_is_size_times_signed_percent_move(
    direction: Direction, exit_price: float, pnl: float
) -> None:
    """5,000 at risk, a 34-point move from 6,800 is 0.5%: 25 dollars."""
    assert realized_pnl(direction, 5000.0, 6800.0, exit_price) == pytest.approx(pnl, abs=1e-9)
