"""Trading sessions from the XNYS calendar: holidays, early closes, flatten times, the edges."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from gexbot.core.session import EASTERN, TradingCalendar, session_minutes
from gexbot.errors import CalendarError, ConfigError

CALENDAR = TradingCalendar("XNYS", flatten_minutes=15)


def et(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=EASTERN)


@pytest.mark.parametrize(
    ("day", "is_session"),
    [
        (date(2026, 11, 26), False),  # Thanksgiving
        (date(2026, 7, 3), False),  # Independence Day observed
        (date(2026, 11, 28), False),  # Saturday
        (date(2026, 11, 29), False),  # Sunday
        (date(2026, 11, 27), True),  # the day after Thanksgiving: an early close
        (date(2026, 12, 1), True),
    ],
)
def test_holidays_and_weekends(day: date, is_session: bool) -> None:
    assert CALENDAR.is_session(day) is is_session


def test_a_regular_session_runs_09_30_to_16_00_and_flattens_at_15_45() -> None:
    session = CALENDAR.session(date(2026, 12, 1))
    assert (session.open, session.close) == (et(session.date, 9, 30), et(session.date, 16))
    assert session.flatten == et(session.date, 15, 45)
    assert not session.early_close
    minutes = list(session_minutes(session))
    assert len(minutes) == 390
    assert (minutes[0], minutes[-1]) == (et(session.date, 9, 30), et(session.date, 15, 59))


@pytest.mark.parametrize("day", [date(2026, 11, 27), date(2026, 12, 24)])
def test_early_closes_end_at_13_00_and_flatten_at_12_45(day: date) -> None:
    session = CALENDAR.session(day)
    assert session.close == et(day, 13)
    assert session.flatten == et(day, 12, 45)
    assert session.early_close
    assert len(list(session_minutes(session))) == 210


def test_the_flatten_offset_is_the_presets() -> None:
    assert TradingCalendar("XNYS", 30).session(date(2026, 12, 1)).flatten == et(
        date(2026, 12, 1), 15, 30
    )


def test_windows_of_sessions_skip_closed_days() -> None:
    after = CALENDAR.sessions_from(date(2026, 11, 25), 3)
    assert [s.date for s in after] == [date(2026, 11, 25), date(2026, 11, 27), date(2026, 11, 30)]
    before = CALENDAR.sessions_ending(date(2026, 11, 29), 2)
    assert [s.date for s in before] == [date(2026, 11, 25), date(2026, 11, 27)]
    assert CALENDAR.previous_session(date(2026, 11, 30)).date == date(2026, 11, 27)


def test_current_next_and_last_completed_follow_the_clock() -> None:
    tuesday = date(2026, 12, 1)
    assert CALENDAR.current_or_next(et(tuesday, 4)).date == tuesday
    assert CALENDAR.current_or_next(et(tuesday, 12)).date == tuesday
    assert CALENDAR.current_or_next(et(tuesday, 16)).date == date(2026, 12, 2)
    assert CALENDAR.current_or_next(et(date(2026, 11, 26), 10)).date == date(2026, 11, 27)
    assert CALENDAR.last_completed(et(tuesday, 12)).date == date(2026, 11, 30)
    assert CALENDAR.last_completed(et(tuesday, 16)).date == tuesday
    assert CALENDAR.last_completed(et(date(2026, 11, 28), 10)).date == date(2026, 11, 27)


def test_a_closed_day_is_not_a_session() -> None:
    with pytest.raises(CalendarError, match="2026-11-26 is not a trading session"):
        CALENDAR.session(date(2026, 11, 26))


def test_dates_past_the_calendar_fail_loudly() -> None:
    beyond = CALENDAR.last_date + timedelta(days=3)
    with pytest.raises(CalendarError, match="upgrade exchange_calendars to trade later dates"):
        CALENDAR.is_session(beyond)
    with pytest.raises(CalendarError, match="outside the exchange calendar"):
        CALENDAR.current_or_next(et(beyond, 10))


def test_an_older_start_extends_the_calendar_back() -> None:
    old = TradingCalendar("XNYS", 15, start=date(2001, 3, 1))
    assert old.first_date <= date(2001, 3, 1)
    assert old.is_session(date(2001, 3, 1))


def test_an_unknown_calendar_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown exchange calendar 'XXXX'"):
        TradingCalendar("XXXX", 15)


def test_windows_past_either_end_of_the_calendar_say_how_many_fit() -> None:
    with pytest.raises(CalendarError) as late:
        CALENDAR.sessions_from(date(2026, 10, 5), 100_000)
    assert "100000 sessions from 2026-10-05 run past the exchange calendar's last session" in str(
        late.value)
    fit = int(str(late.value).split("(at most ")[1].split(" fit")[0])
    assert CALENDAR.sessions_from(date(2026, 10, 5), fit)[-1].date == CALENDAR.last_date
    with pytest.raises(CalendarError) as early:
        CALENDAR.sessions_ending(date(2026, 10, 5), 100_000)
    message = str(early.value)
    assert "begin before the exchange calendar's first session" in message
    fit = int(message.split("(at most ")[1].split(" fit")[0])
    assert CALENDAR.sessions_ending(date(2026, 10, 5), fit)[0].date == CALENDAR.first_date
    with pytest.raises(CalendarError):
        CALENDAR.sessions_ending(date(2026, 10, 5), fit + 1)


def test_a_start_before_any_calendar_can_reach_is_one_line() -> None:
    with pytest.raises(CalendarError) as raised:
        TradingCalendar("XNYS", 15, start=date(1, 1, 5))
    assert str(raised.value) == (
        "the XNYS calendar cannot reach back to 0001-01-05; it can start from 1677-09-22 at the"
        " earliest"
    )
