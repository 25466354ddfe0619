"""Every field of the events of an entry, an exit, a session start and a quiet minute.

The store, the log lines and Discord read the events field by field, so a field left blank or
taken from the wrong place must fail here. Each event is compared whole with one built in the
test: prices and sizes from the README's formulas applied to the minute's features (which the
entry tests pin on their own), the explanation naming the band the spot actually crossed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import time

import numpy as np
import pytest
from scenario import DAY, LEVEL, NEXT_DAY, PARAMS, Market, chain, run, warm_then

from gexbot.core.engine import step
from gexbot.core.types import (
    Action,
    Blocker,
    Chain,
    Closed,
    Decided,
    Direction,
    ExitReason,
    GexRegime,
    HmmState,
    Opened,
    Position,
    SessionStarted,
    Trade,
    frozen_array,
)

LONG, SHORT = Direction.LONG, Direction.SHORT
POS = GexRegime.POSITIVE
WIN_RATE, HALF_KELLY, CAP, SLIPPAGE, STOP_SIGMA = 0.79, 0.5, 0.05, 0.25, 3.0


def entered(direction: Direction):
    """The state before a clean breach on `direction`'s side, the breach minute, its events."""
    ofi = 3.0 if direction is LONG else 0.1
    snapshots = warm_then(None, direction, ofi=ofi)
    before, _ = run(snapshots[:-1])
    last = snapshots[-1]
    after, events = step(before, last, PARAMS)
    return before, last, after, events


@pytest.mark.parametrize("direction", [LONG, SHORT])
def test_an_entry_reports_every_field(direction: Direction) -> None:
    before, last, after, events = entered(direction)
    assert [type(e) for e in events] == [Opened, Decided]
    opened, row = events
    feats = row.features
    assert feats is not None
    assert (feats.gex_regime, feats.hmm_state) == (POS, HmmState.LOW)
    sign = direction.sign
    fill = last.spot + sign * SLIPPAGE
    risk = STOP_SIGMA * feats.band_sigma
    b = sign * (feats.band_mid - fill) / risk
    kelly = HALF_KELLY * (WIN_RATE - (1.0 - WIN_RATE) / b)
    position = Position(
        direction=direction,
        bucket="REVERSION",
        entry_time=last.at,
        entry_price=fill,
        size_usd=min(kelly, CAP) * before.balance,
        target=feats.band_mid,
        stop=fill - sign * risk,
        entry_regime=POS,
        session_date=DAY,
    )
    if direction is LONG:
        side = "below the lower band"
        assert last.spot < feats.band_lower
    else:
        side = "above the upper band"
        assert last.spot > feats.band_upper
    why = (
        f"spot {last.spot:.2f} {side}, OFI {feats.ofi:.2f}, Hurst {feats.hurst:.2f}, "
        f"GEX POSITIVE, HMM LOW, b {b:.2f}"
    )
    assert opened == Opened(
        variant="es",
        symbol="$SPX",
        position=position,
        kelly_fraction=kelly,
        features=feats,
        spot=last.spot,
        why=why,
    )
    assert row == Decided(
        variant="es",
        at=last.at,
        spot=last.spot,
        features=feats,
        position=direction,
        target=position.target,
        stop=position.stop,
        action=Action(direction.value),
        reason=None,
        blocked_by=(),
        balance=before.balance,
    )
    assert after.position == position
    assert (after.balance, after.day_trades, after.cooldown_until) == (before.balance, 0, None)


@pytest.mark.parametrize(
    ("direction", "reason", "regime"),
    [
        (LONG, ExitReason.TARGET, POS),
        (SHORT, ExitReason.STOP_LOSS, POS),
        (LONG, ExitReason.REGIME_FLIP, GexRegime.NEGATIVE),
    ],
)
def test_an_exit_reports_every_field(
    direction: Direction, reason: ExitReason, regime: GexRegime
) -> None:
    _, entry, holding, _ = entered(direction)
    held = holding.position
    assert held is not None
    spot = {
        ExitReason.TARGET: held.target,
        ExitReason.STOP_LOSS: held.stop,
        ExitReason.REGIME_FLIP: (held.target + held.stop) / 2,
    }[reason]
    exit_minute = Market(start=time(10, 11)).snapshots([spot], gex=regime)[0]
    after, events = step(holding, exit_minute, PARAMS)
    assert [type(e) for e in events] == [Closed, Decided]
    closed, row = events
    sign = direction.sign
    pnl = held.size_usd * sign * (spot - held.entry_price) / held.entry_price
    trade = Trade(
        variant="es",
        symbol="$SPX",
        direction=direction,
        bucket="REVERSION",
        entry_time=entry.at,
        entry_price=held.entry_price,
        exit_time=exit_minute.at,
        exit_price=spot,
        size_usd=held.size_usd,
        exit_regime=regime,
        exit_reason=reason,
        pnl=pnl,
    )
    balance = holding.balance + pnl
    assert closed == Closed(trade=trade, balance=balance)
    assert row.features is not None
    assert row.features.gex_regime is regime
    assert row.blocked_by[0] is Blocker.POSITION
    assert row == Decided(
        variant="es",
        at=exit_minute.at,
        spot=spot,
        features=row.features,
        position=None,
        target=None,
        stop=None,
        action=Action.CLOSE,
        reason=str(reason),
        blocked_by=row.blocked_by,
        balance=balance,
    )
    assert (after.position, after.balance, after.day_trades) == (None, balance, 1)


def test_a_session_start_reports_every_field() -> None:
    state, _ = run(Market().snapshots([LEVEL] * 5))
    state = replace(state, balance=101_000.0)
    first = Market(day=NEXT_DAY, gap=0.006).snapshots([6810.0], ofi=0.7)[0]
    previous = first.previous_close
    assert previous is not None
    _, events = step(state, first, PARAMS)
    assert [type(e) for e in events] == [SessionStarted, Decided]
    assert events[0] == SessionStarted(
        variant="es",
        session=first.session,
        at=first.at,
        first_spot=6810.0,
        previous_close=previous,
        gap=abs(6810.0 - previous) / previous,
        gap_suspends=True,
        balance=101_000.0,
    )


def test_a_quiet_minute_reports_its_spot_and_the_contracts_left_out() -> None:
    """A WAIT inside the band, on a chain with one missing gamma and one sentinel interest."""
    base = chain(POS)
    bad = Chain(
        is_call=frozen_array([*base.is_call, True, False], dtype=np.bool_),
        strike=frozen_array([*base.strike, 6795.0, 6805.0]),
        gamma=frozen_array([*base.gamma, np.nan, 0.002]),
        open_interest=frozen_array([*base.open_interest, 1000.0, -999.0]),
    )
    snapshots = warm_then(LEVEL + 0.5, ofi=1.0)
    state, _ = run(snapshots[:-1])
    last = replace(snapshots[-1], chain=bad)
    _, events = step(state, last, PARAMS)
    (row,) = events
    assert isinstance(row, Decided)
    feats = row.features
    assert feats is not None
    assert feats.excluded_contracts == 2
    assert feats.net_gex == pytest.approx((2.0 - 0.8) * 0.002 * 1000.0 * 100.0 * last.spot)
    assert row == Decided(
        variant="es",
        at=last.at,
        spot=LEVEL + 0.5,
        features=feats,
        position=None,
        target=None,
        stop=None,
        action=Action.WAIT,
        reason=None,
        blocked_by=(Blocker.BAND,),
        balance=state.balance,
    )
