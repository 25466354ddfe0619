"""Exit rules and the money of a round trip: STOP_LOSS, TARGET, REGIME_FLIP, EOD_FLATTEN (first
match wins), exact entry and exit numbers for one LONG and one SHORT, the stop cooldown, and
the rule that an exit and an entry never share a minute.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import date, time, timedelta

import pytest
from scenario import (
    DAY,
    LEVEL,
    NEXT_DAY,
    PARAMS,
    WARM,
    Market,
    beyond_band,
    decided,
    of_type,
    reverting,
    run,
    warm_then,
)

from gexbot.core.engine import step
from gexbot.core.rules import exit_reason
from gexbot.core.types import (
    Action,
    Blocker,
    Closed,
    Direction,
    ExitReason,
    GexRegime,
    Opened,
    Position,
    SessionStarted,
    State,
)

LONG, SHORT = Direction.LONG, Direction.SHORT
POS, NEG = GexRegime.POSITIVE, GexRegime.NEGATIVE
R = ExitReason


def position(direction: Direction, day: date = DAY) -> Position:
    """Entry at 6,800 with target 5 points and stop 10 points away, on `direction`'s side."""
    sign = direction.sign
    return Position(
        direction=direction,
        bucket="REVERSION",
        entry_time=datetime_on(day, time(12)),
        entry_price=LEVEL,
        size_usd=5000.0,
        target=LEVEL + sign * 5.0,
        stop=LEVEL - sign * 10.0,
        entry_regime=POS,
        session_date=day,
    )


def datetime_on(day: date, at: time):
    return Market(day=day, start=at).first_minute()


def minute(spot: float, at: time = time(12, 30), regime: GexRegime = POS, day: date = DAY):
    return Market(day=day, start=at).snapshots([spot], gex=regime)[0]


@pytest.mark.parametrize(
    ("direction", "spot", "at", "regime", "expected"),
    [
        (LONG, 6790.0, time(12, 30), POS, R.STOP_LOSS),
        (LONG, 6789.0, time(12, 30), POS, R.STOP_LOSS),
        (LONG, 6790.01, time(12, 30), POS, None),
        (LONG, 6805.0, time(12, 30), POS, R.TARGET),
        (LONG, 6804.99, time(12, 30), POS, None),
        (LONG, 6800.0, time(12, 30), NEG, R.REGIME_FLIP),
        (LONG, 6800.0, time(15, 45), POS, R.EOD_FLATTEN),
        (LONG, 6800.0, time(15, 44), POS, None),
        (SHORT, 6810.0, time(12, 30), POS, R.STOP_LOSS),
        (SHORT, 6811.0, time(12, 30), POS, R.STOP_LOSS),
        (SHORT, 6809.99, time(12, 30), POS, None),
        (SHORT, 6795.0, time(12, 30), POS, R.TARGET),
        (SHORT, 6795.01, time(12, 30), POS, None),
        (SHORT, 6800.0, time(12, 30), NEG, R.REGIME_FLIP),
        (SHORT, 6800.0, time(15, 59), POS, R.EOD_FLATTEN),
        # first match wins
        (LONG, 6789.0, time(15, 50), NEG, R.STOP_LOSS),
        (SHORT, 6794.0, time(15, 50), NEG, R.TARGET),
        (LONG, 6800.0, time(15, 50), NEG, R.REGIME_FLIP),
    ],
)
def test_exit_reason(direction, spot, at, regime, expected) -> None:
    assert exit_reason(position(direction), minute(spot, at), regime) == expected


def test_unknown_regime_is_no_flip() -> None:
    assert exit_reason(position(LONG), minute(LEVEL), None) is None


def test_position_from_an_earlier_session_is_flattened() -> None:
    assert exit_reason(position(SHORT), minute(LEVEL, time(9, 30), day=NEXT_DAY), POS) == (
        R.EOD_FLATTEN
    )


def holding_state(direction: Direction, balance: float = 100_000.0) -> State:
    """A warm session (40 zigzag minutes to 10:09) holding `position(direction)`."""
    state, _ = run(Market().snapshots(reverting(WARM)))
    return replace(state, position=position(direction), balance=balance)


@pytest.mark.parametrize(
    ("direction", "spot", "regime", "at", "reason"),
    [
        (LONG, 6789.5, POS, time(10, 10), R.STOP_LOSS),
        (LONG, 6805.5, POS, time(10, 10), R.TARGET),
        (LONG, 6801.0, NEG, time(10, 10), R.REGIME_FLIP),
        (SHORT, 6810.25, POS, time(10, 10), R.STOP_LOSS),
        (SHORT, 6794.0, POS, time(10, 10), R.TARGET),
        (SHORT, 6799.0, NEG, time(10, 10), R.REGIME_FLIP),
        (LONG, 6801.0, POS, time(15, 45), R.EOD_FLATTEN),
        (SHORT, 6799.0, POS, time(15, 45), R.EOD_FLATTEN),
    ],
)
def test_step_closes_at_spot_with_the_pnl(direction, spot, regime, at, reason) -> None:
    state = holding_state(direction, balance=90_000.0)
    snapshot = Market(start=at).snapshots([spot], gex=regime)[0]
    after, events = step(state, snapshot, PARAMS)
    pnl = 5000.0 * direction.sign * (spot - LEVEL) / LEVEL
    (closed,) = of_type(events, Closed)
    trade = closed.trade
    assert (trade.exit_reason, trade.exit_price, trade.exit_time) == (reason, spot, snapshot.at)
    assert (trade.direction, trade.entry_price, trade.size_usd) == (direction, LEVEL, 5000.0)
    assert trade.exit_regime is regime
    assert trade.pnl == pytest.approx(pnl, abs=1e-9)
    assert after.balance == pytest.approx(90_000.0 + pnl, abs=1e-9)
    assert closed.balance == after.balance
    assert after.position is None
    cooldown = snapshot.at + timedelta(minutes=5) if reason is R.STOP_LOSS else None
    assert after.cooldown_until == cooldown
    row = decided(events)
    assert (row.action, row.reason, row.balance) == (Action.CLOSE, str(reason), after.balance)
    assert of_type(events, Opened) == []


@pytest.mark.parametrize("direction", [LONG, SHORT])
def test_step_holds_between_stop_and_target(direction: Direction) -> None:
    state = holding_state(direction)
    after, events = step(state, minute(LEVEL + direction.sign, time(10, 10)), PARAMS)
    row = decided(events)
    assert (row.action, row.reason) == (Action.HOLD, None)
    assert row.blocked_by[0] is Blocker.POSITION
    held = position(direction)
    assert (row.position, row.target, row.stop) == (direction, held.target, held.stop)
    assert after.position == held
    assert after.balance == state.balance
    assert of_type(events, Closed) == []


@pytest.mark.parametrize("direction", [LONG, SHORT])
def test_close_row_shows_the_flat_book_after_the_minute(direction: Direction) -> None:
    """`position`, `target`, `stop` describe the book after the minute: NULL once closed."""
    held = position(direction)
    _, events = step(holding_state(direction), minute(held.target, time(10, 10)), PARAMS)
    row = decided(events)
    assert row.action is Action.CLOSE
    assert row.reason == "TARGET"
    assert Blocker.POSITION in row.blocked_by
    assert (row.position, row.target, row.stop) == (None, None, None)


@pytest.mark.parametrize("direction", [LONG, SHORT])
def test_no_hold_past_a_stop_or_a_target(direction: Direction) -> None:
    """Sweep the spot across stop and target: HOLD exactly when strictly between them."""
    state = holding_state(direction)
    held = position(direction)
    low, high = sorted((held.stop, held.target))
    for i in range(-8, 69):
        spot = low + i * 0.25
        _, events = step(state, minute(spot, time(10, 10)), PARAMS)
        action = decided(events).action
        assert action is (Action.HOLD if low < spot < high else Action.CLOSE), spot


def test_long_round_trip_exact_numbers() -> None:
    """Enter LONG at a lower-band breach, exit at the target a minute later."""
    warm = reverting(WARM)
    spot = beyond_band(warm, LONG)
    band = [*warm, spot][-20:]
    mid, sigma = statistics.fmean(band), statistics.pstdev(band)
    fill = spot + 0.25
    stop = fill - 3 * sigma
    b = (mid - fill) / (fill - stop)
    kelly = 0.5 * (0.79 - 0.21 / b)
    size = min(kelly, 0.05) * 100_000.0
    assert kelly > 0.05
    exit_spot = mid + 0.4
    state, minutes = run(Market().snapshots([*warm, spot, exit_spot], ofi=3.0))

    (opened,) = of_type(minutes[WARM], Opened)
    pos = opened.position
    assert pos.direction is LONG
    assert pos.entry_price == pytest.approx(fill, abs=1e-9)
    assert pos.target == pytest.approx(mid, abs=1e-9)
    assert pos.stop == pytest.approx(stop, abs=1e-9)
    assert opened.kelly_fraction == pytest.approx(kelly, rel=1e-9)
    assert pos.size_usd == pytest.approx(size, abs=1e-9)
    (closed,) = of_type(minutes[WARM + 1], Closed)
    pnl = size * (exit_spot - fill) / fill
    assert closed.trade.exit_reason is R.TARGET
    assert closed.trade.pnl == pytest.approx(pnl, abs=1e-9)
    assert state.balance == pytest.approx(100_000.0 + pnl, abs=1e-9)
    assert state.cooldown_until is None


def test_short_round_trip_exact_numbers_below_the_cap() -> None:
    """A narrow band makes b ≈ 0.29, so half-Kelly (≈ 2.5%) is below the 5% cap; exit at stop."""
    warm = reverting(WARM, swing=0.133)
    spot = beyond_band(warm, SHORT)
    band = [*warm, spot][-20:]
    mid, sigma = statistics.fmean(band), statistics.pstdev(band)
    fill = spot - 0.25
    stop = fill + 3 * sigma
    b = (fill - mid) / (stop - fill)
    kelly = 0.5 * (0.79 - 0.21 / b)
    size = kelly * 100_000.0
    assert 0.0 < kelly < 0.05
    exit_spot = stop + 0.1
    state, minutes = run(Market().snapshots([*warm, spot, exit_spot], ofi=0.1))

    (opened,) = of_type(minutes[WARM], Opened)
    pos = opened.position
    assert (pos.direction, pos.entry_regime) == (SHORT, POS)
    assert pos.entry_price == pytest.approx(fill, abs=1e-9)
    assert pos.target == pytest.approx(mid, abs=1e-9)
    assert pos.stop == pytest.approx(stop, abs=1e-9)
    assert pos.size_usd == pytest.approx(size, rel=1e-9)
    (closed,) = of_type(minutes[WARM + 1], Closed)
    pnl = -size * (exit_spot - fill) / fill
    assert pnl < 0.0
    assert closed.trade.exit_reason is R.STOP_LOSS
    assert closed.trade.pnl == pytest.approx(pnl, abs=1e-9)
    assert state.balance == pytest.approx(100_000.0 + pnl, abs=1e-9)
    stopped_at = closed.trade.exit_time
    assert state.cooldown_until == stopped_at + timedelta(minutes=5)


@pytest.mark.parametrize(("after_stop", "action"), [(4, Action.WAIT), (5, Action.LONG)])
def test_stop_cooldown_end_to_end(after_stop: int, action: Action) -> None:
    """LONG stopped at t: a clean breach at t+4 is refused for the cooldown alone, t+5 taken."""
    warm = reverting(WARM)
    entry = beyond_band(warm, LONG)
    state, _ = run(Market().snapshots([*warm, entry], ofi=3.0))
    assert state.position is not None
    path = [*warm, entry, state.position.stop - 1.0, *reverting(WARM + after_stop + 1)[WARM + 2 :]]
    snapshots = Market().snapshots([*path, beyond_band(path, LONG)], ofi=3.0)
    _, minutes = run(snapshots)
    (stopped,) = of_type(minutes[WARM + 1], Closed)
    assert stopped.trade.exit_reason is R.STOP_LOSS
    assert snapshots[-1].at - stopped.trade.exit_time == timedelta(minutes=after_stop)
    row = decided(minutes[-1])
    expected = (Blocker.COOLDOWN,) if action is Action.WAIT else ()
    assert (row.action, row.blocked_by) == (action, expected)


@pytest.mark.parametrize(
    ("held", "breach", "ofi", "reason", "blockers"),
    [
        (LONG, SHORT, 0.1, R.TARGET, (Blocker.POSITION,)),
        (SHORT, SHORT, 0.1, R.STOP_LOSS, (Blocker.POSITION, Blocker.COOLDOWN)),
        (SHORT, LONG, 3.0, R.TARGET, (Blocker.POSITION,)),
    ],
)
def test_exit_and_entry_never_share_a_minute(held, breach, ofi, reason, blockers) -> None:
    """A clean breach at the exit minute is not taken; the same breach a minute later is."""
    snapshots = warm_then(None, breach, ofi=ofi)
    state, _ = run(snapshots[:-1])
    sign = held.sign
    near = replace(position(held), target=LEVEL + sign * 0.5, stop=LEVEL - sign * 2.0)
    state, events = step(replace(state, position=near), snapshots[-1], PARAMS)
    (closed,) = of_type(events, Closed)
    assert closed.trade.exit_reason is reason
    row = decided(events)
    assert (row.action, row.blocked_by) == (Action.CLOSE, blockers)
    assert of_type(events, Opened) == []
    if reason is R.TARGET:
        path = [s.spot for s in snapshots]
        later = (snapshots[-1].at + timedelta(minutes=1)).time()
        nxt = Market(start=later).snapshots([beyond_band(path, breach)], ofi=ofi)[0]
        _, events = step(state, nxt, PARAMS)
        assert decided(events).action is Action(breach.value)


def test_entry_at_1544_is_flattened_at_1545() -> None:
    snapshots = warm_then(None, SHORT, ofi=0.1, market=Market(start=time(15, 4)))
    state, minutes = run(snapshots)
    assert decided(minutes[-1]).action is Action.SHORT
    pos = state.position
    assert pos is not None
    between = (pos.target + pos.stop) / 2
    after, events = step(state, minute(between, time(15, 45)), PARAMS)
    (closed,) = of_type(events, Closed)
    assert closed.trade.exit_reason is R.EOD_FLATTEN
    assert after.position is None


def test_position_left_from_yesterday_is_flattened_at_the_next_open() -> None:
    state = replace(holding_state(LONG), balance=100_000.0)
    after, events = step(state, minute(6801.0, time(9, 30), day=NEXT_DAY), PARAMS)
    assert isinstance(events[0], SessionStarted)
    (closed,) = of_type(events, Closed)
    assert closed.trade.exit_reason is R.EOD_FLATTEN
    assert closed.trade.exit_price == 6801.0
    assert after.balance == pytest.approx(100_000.0 + 5000.0 * 1.0 / LEVEL, abs=1e-9)
    assert decided(events).blocked_by[0] is Blocker.POSITION
