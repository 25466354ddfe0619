"""Sessions, gaps, skips and purity: what carries over between minutes and days, and what not.

`step` must be a pure fold: the same inputs give the same outputs, the input state is never
touched, every minute yields exactly one `Decided`, a SKIP only moves `last_minute`, and a new
session date starts from empty buffers.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import time, timedelta

import numpy as np
import pytest
from scenario import (
    DAY,
    EARLY_DAY,
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
    state_fields,
    warm_then,
)

from gexbot.core.engine import end_session, initial_state, skip, step
from gexbot.core.session import session_minutes
from gexbot.core.types import (
    Action,
    Blocker,
    Closed,
    Decided,
    Direction,
    Opened,
    SessionEnded,
    SessionStarted,
    State,
)

LONG = Direction.LONG


def spiky_day(market: Market, minutes: int) -> list[float]:
    """A zigzag with a lower-band breach every 30 minutes: several round trips in one day."""
    spots: list[float] = []
    for i, spot in enumerate(reverting(minutes)):
        spots.append(beyond_band(spots, LONG) if i >= WARM and i % 30 == 0 else spot)
    return spots


def test_every_minute_of_a_day_decides_once() -> None:
    market = Market()
    minutes = list(session_minutes(market.session))
    snapshots = market.snapshots(spiky_day(market, len(minutes)), ofi=3.0)
    state, events = run(snapshots)
    assert [decided(e).at for e in events] == minutes
    assert sum(len(of_type(e, SessionStarted)) for e in events) == 1
    assert isinstance(events[0][0], SessionStarted)
    opened = [e for m in events for e in of_type(m, Opened)]
    closed = [e for m in events for e in of_type(m, Closed)]
    assert len(opened) >= 3
    assert len(closed) == len(opened) - (state.position is not None)
    for minute_events in events:
        assert not (of_type(minute_events, Opened) and of_type(minute_events, Closed))
    balance = 100_000.0 + sum(c.trade.pnl for c in closed)
    assert state.balance == pytest.approx(balance, abs=1e-9)
    (ended,) = end_session(state, PARAMS)[1]
    assert ended == SessionEnded(
        variant="es",
        session_date=DAY,
        trades=len(closed),
        pnl=state.balance - 100_000.0,
        balance=state.balance,
    )


def test_early_close_day_ends_at_1300_and_refuses_entries_from_1245() -> None:
    market = Market(day=EARLY_DAY)
    minutes = list(session_minutes(market.session))
    assert (len(minutes), minutes[-1].time()) == (210, time(12, 59))
    _, events = run(market.snapshots(spiky_day(market, len(minutes)), ofi=3.0))
    for at, minute_events in zip(minutes, events, strict=True):
        row = decided(minute_events)
        assert (Blocker.FLATTEN in row.blocked_by) == (at.time() >= time(12, 45))
        if at.time() >= time(12, 45):
            assert row.position is None


def test_a_new_session_empties_the_buffers_and_keeps_the_money() -> None:
    state, _ = run(Market().snapshots(reverting(WARM), ofi=1.5))
    until = state.last_minute + timedelta(minutes=5)
    state = replace(state, balance=101_000.0, cooldown_until=until, day_trades=3)
    nxt = Market(day=NEXT_DAY, gap=0.001).snapshots([6810.0], ofi=0.7)[0]
    after, events = step(state, nxt, PARAMS)
    started = events[0]
    assert isinstance(started, SessionStarted)
    assert (started.session.date, started.at, started.first_spot) == (NEXT_DAY, nxt.at, 6810.0)
    assert started.previous_close == nxt.previous_close
    assert started.gap == pytest.approx(0.001, rel=1e-9)
    assert not started.gap_suspends
    assert started.balance == 101_000.0
    assert after.prices.tolist() == [6810.0]
    assert after.ofi_samples.tolist() == [0.7]
    assert (after.session_date, after.first_spot) == (NEXT_DAY, 6810.0)
    assert after.previous_close == nxt.previous_close
    assert (after.day_start_balance, after.day_trades) == (101_000.0, 0)
    assert (after.balance, after.cooldown_until) == (101_000.0, until)
    assert decided(events).features.hurst is None


@pytest.mark.parametrize(
    ("gap", "suspends"), [(0.006, True), (0.004, False), (-0.006, True), (None, False)]
)
def test_session_started_reports_the_open_gap(gap: float | None, suspends: bool) -> None:
    _, events = run(Market(gap=gap).snapshots([LEVEL]))
    started = events[0][0]
    assert isinstance(started, SessionStarted)
    if gap is None:
        assert (started.previous_close, started.gap) == (None, None)
    else:
        previous = LEVEL / (1 + gap)
        assert started.gap == pytest.approx(abs(LEVEL - previous) / previous, rel=1e-9)
    assert started.gap_suspends is suspends


@pytest.mark.parametrize(("gap", "gapped"), [(0.006, True), (None, False), (0.004, False)])
def test_gap_suspends_entries_while_the_buffer_holds_fewer_than_15_prices(
    gap: float | None, gapped: bool
) -> None:
    _, events = run(Market(gap=gap).snapshots(reverting(20)))
    flags = [Blocker.GAP in decided(m).blocked_by for m in events]
    assert flags == [gapped] * 14 + [False] * 6


def test_a_previous_close_learned_later_judges_the_first_spot_from_then_on() -> None:
    snapshots = Market(gap=None).snapshots(reverting(5))
    first = snapshots[0].spot
    gapped_close = first / 1.01
    known = [
        replace(s, previous_close=gapped_close) if i >= 2 else s for i, s in enumerate(snapshots)
    ]
    state, events = run(known)
    flags = [Blocker.GAP in decided(m).blocked_by for m in events]
    assert flags == [False, False, True, True, True]
    assert state.previous_close == gapped_close
    assert state.first_spot == first


def test_end_session_reports_only_the_days_trades() -> None:
    snapshots = warm_then(None, LONG, ofi=3.0)
    state, _ = run(snapshots)
    state, events = step(state, Market(start=time(10, 11)).snapshots([LEVEL + 1.0])[0], PARAMS)
    (closed,) = of_type(events, Closed)
    _, (day1,) = end_session(state, PARAMS)
    assert (day1.variant, day1.session_date, day1.trades) == ("es", DAY, 1)
    assert day1.pnl == pytest.approx(closed.trade.pnl, abs=1e-9)
    assert day1.balance == state.balance
    state, _ = run(Market(day=NEXT_DAY).snapshots(reverting(3)), state=state)
    same, day2 = end_session(state, PARAMS)
    assert same is state
    assert day2 == [SessionEnded("es", NEXT_DAY, 0, 0.0, state.balance)]


def test_end_session_before_any_session_says_nothing() -> None:
    state = initial_state(PARAMS)
    assert end_session(state, PARAMS) == (state, [])


def test_skip_changes_nothing_but_the_last_minute() -> None:
    snapshots = warm_then(None, LONG, ofi=3.0)
    state, _ = run(snapshots)
    assert state.position is not None
    at = snapshots[-1].at + timedelta(minutes=1)
    state = replace(state, cooldown_until=at, day_trades=2, day_start_balance=99_000.0)
    after, events = skip(state, at, "quote_missing", PARAMS)
    expected = state_fields(state) | {"last_minute": at}
    assert state_fields(after) == expected
    assert events == [
        Decided(
            variant="es",
            at=at,
            spot=None,
            features=None,
            position=LONG,
            target=state.position.target,
            stop=state.position.stop,
            action=Action.SKIP,
            reason="quote_missing",
            blocked_by=(),
            balance=state.balance,
        )
    ]


def test_a_skipped_minute_does_not_enter_the_buffers() -> None:
    snapshots = Market().snapshots(reverting(6))
    state, _ = run(snapshots[:3])
    state, _ = skip(state, snapshots[3].at, "chain_status", PARAMS)
    state, _ = run(snapshots[4:], state=state)
    assert state.prices.tolist() == [s.spot for i, s in enumerate(snapshots) if i != 3]


def frozen_copy(state: State) -> dict[str, object]:
    return state_fields(state) | {
        "prices_writeable": state.prices.flags.writeable,
        "ofi_writeable": state.ofi_samples.flags.writeable,
    }


@pytest.mark.parametrize("holding", [False, True])
def test_step_is_pure(holding: bool) -> None:
    """Same state and snapshot twice: equal events and states; the input state is untouched."""
    snapshots = warm_then(None, LONG, ofi=3.0)
    state, _ = run(snapshots[:-1] if not holding else snapshots)
    last = snapshots[-1] if not holding else Market(start=time(10, 11)).snapshots([LEVEL])[0]
    before = frozen_copy(state)
    prices_before = state.prices.copy()
    first_state, first_events = step(state, last, PARAMS)
    second_state, second_events = step(state, last, PARAMS)
    assert first_events == second_events
    assert state_fields(first_state) == state_fields(second_state)
    assert frozen_copy(state) == before
    assert np.array_equal(state.prices, prices_before)
    assert not first_state.prices.flags.writeable
    assert not first_state.ofi_samples.flags.writeable
    assert first_state.prices is not state.prices
    kinds = {type(e) for e in first_events}
    assert kinds == ({Opened, Decided} if not holding else {Closed, Decided})


def test_a_replay_gives_the_same_events_bit_for_bit() -> None:
    market = Market()
    snapshots = market.snapshots(spiky_day(market, 200), ofi=3.0)
    first_state, first = run(snapshots)
    second_state, second = run(snapshots)
    assert first == second
    assert state_fields(first_state) == state_fields(second_state)
