"""Trading sessions from an exchange calendar: open, close, flatten time, holidays, early closes.

The calendar object is built by the shell (building one reads the wall clock to set its bounds)
and handed in; every question asked of it here is a deterministic lookup. Dates outside what
the installed calendar knows raise `CalendarError`: a daemon must fail loudly rather than
silently stop trading when its calendar runs out.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

from gexbot.core.types import SessionTimes
from gexbot.errors import CalendarError, ConfigError

EASTERN = ZoneInfo("America/New_York")
REGULAR_SESSION = timedelta(hours=6, minutes=30)
DEFAULT_FIRST_SESSION = xcals.exchange_calendar.GLOBAL_DEFAULT_START


class TradingCalendar:
    """Sessions of one exchange (XNYS for the U.S. equity session)."""

    def __init__(self, name: str, flatten_minutes: int, start: date | None = None) -> None:
        """Load the calendar `name`; `start` extends it further back than the library's default.

        The default window (about 20 years back, 1 year ahead) covers the simulated market's
        history; a narrower one would leave it without the sessions its daily walk starts from.
        """
        try:
            if start is None or pd.Timestamp(start) >= DEFAULT_FIRST_SESSION:
                self._calendar = xcals.get_calendar(name)
            else:
                self._calendar = xcals.get_calendar(name, start=pd.Timestamp(start))
        except xcals.errors.InvalidCalendarName:
            raise ConfigError(f"unknown exchange calendar {name!r}") from None
        except (ValueError, OverflowError):
            # pandas' timestamps end before 1677-09-22; the library may refuse a start too.
            raise CalendarError(
                f"the {name} calendar cannot reach back to {start}; it can start from"
                f" {(pd.Timestamp.min + pd.Timedelta(days=1)).date()} at the earliest"
            ) from None
        self._flatten = timedelta(minutes=flatten_minutes)
        self.first_date: date = self._calendar.first_session.date()
        self.last_date: date = self._calendar.last_session.date()

    def _check(self, day: date) -> None:
        if not self.first_date <= day <= self.last_date:
            raise CalendarError(
                f"{day} is outside the exchange calendar ({self.first_date} to {self.last_date});"
                " upgrade exchange_calendars to trade later dates"
            )

    def is_session(self, day: date) -> bool:
        """True when the exchange trades on `day`."""
        self._check(day)
        return bool(self._calendar.is_session(pd.Timestamp(day)))

    def session(self, day: date) -> SessionTimes:
        """Open, close and flatten time of the session on `day` (which must be a session)."""
        if not self.is_session(day):
            raise CalendarError(f"{day} is not a trading session")
        label = pd.Timestamp(day)
        open_at = self._calendar.session_open(label).to_pydatetime().astimezone(EASTERN)
        close_at = self._calendar.session_close(label).to_pydatetime().astimezone(EASTERN)
        return SessionTimes(
            date=day,
            open=open_at,
            close=close_at,
            flatten=close_at - self._flatten,
            early_close=close_at - open_at < REGULAR_SESSION,
        )

    def sessions_from(self, start: date, count: int) -> list[SessionTimes]:
        """`count` sessions, the first on or after `start`."""
        self._check(start)
        first = self._calendar.date_to_session(pd.Timestamp(start), direction="next")
        room = self._calendar.sessions_distance(first, self._calendar.last_session)
        if count > room:
            raise CalendarError(
                f"{count} sessions from {first.date()} run past the exchange calendar's last"
                f" session {self.last_date} (at most {room} fit); upgrade exchange_calendars to"
                " trade later dates"
            )
        days = self._calendar.sessions_window(first, count)
        return [self.session(label.date()) for label in days]

    def sessions_ending(self, last: date, count: int) -> list[SessionTimes]:
        """`count` sessions, the last on or before `last`."""
        self._check(last)
        end = self._calendar.date_to_session(pd.Timestamp(last), direction="previous")
        room = self._calendar.sessions_distance(self._calendar.first_session, end)
        if count > room:
            raise CalendarError(
                f"{count} sessions ending {end.date()} begin before the exchange calendar's"
                f" first session {self.first_date} (at most {room} fit)"
            )
        days = self._calendar.sessions_window(end, -count)
        return [self.session(label.date()) for label in days]

    def previous_session(self, day: date) -> SessionTimes:
        """The session before `day` (whether or not `day` is one)."""
        return self.sessions_ending(day - timedelta(days=1), 1)[0]

    def last_completed(self, now: datetime) -> SessionTimes:
        """The latest session whose close is at or before `now`."""
        today = now.astimezone(EASTERN).date()
        candidate = self.sessions_ending(today, 1)[0]
        return candidate if candidate.close <= now else self.previous_session(candidate.date)

    def current_or_next(self, now: datetime) -> SessionTimes:
        """The session in progress at `now`, else the next one to open."""
        today = now.astimezone(EASTERN).date()
        candidate = self.sessions_from(today, 1)[0]
        if candidate.close <= now:
            candidate = self.sessions_from(candidate.date + timedelta(days=1), 1)[0]
        return candidate


def session_minutes(session: SessionTimes) -> Iterator[datetime]:
    """Minute t from the open to the last minute before the close, in America/New_York."""
    minute = session.open
    while minute < session.close:
        yield minute
        minute += timedelta(minutes=1)
