"""The daemon's own record of its latest session days: its live page and Discord's day chart.

`DayBook` is one of the loop's sinks, so it sees each minute's events only once the minute is
committed, exactly what a reader of the database would find. It keeps them in memory (the last
two session days at most, a few hundred rows), so neither the page nor the chart ever opens the
database while the daemon trades: no reader competes with a commit, and at `--speed max`, where
the daemon holds the file for the whole run, the page still shows every committed minute. A
restarted daemon seeds the book from its store before its first minute.

`LivePage` draws the page on the HTTP server's thread, at most once per `min_interval_s` and
only when a minute was added since, and serves the cached page in between; the loop only
appends rows under a short lock and never waits for a drawing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime

import pandas as pd

from gexbot.core.session import EASTERN
from gexbot.core.types import Closed, Decided, Event, SessionEnded
from gexbot.report.source import DECISION_FIELDS, TRADE_FIELDS, Ledger, normalized
from gexbot.shell.schema import DECISION_COLUMNS, TRADE_COLUMNS, Row, decision_row, trade_row

KEEP_DAYS = 2
"""Today and the day before: a session's chart is drawn after the next one may have begun."""
REFRESH_S = 60
REASON = [name for name, _ in DECISION_COLUMNS].index("reason")
log = logging.getLogger("gexbot.report")


def _day_of(moment: datetime) -> date:
    return moment.astimezone(EASTERN).date()


class DayBook:
    """Decision and trade rows of the latest `keep_days` session days of one variant.

    `redact` masks secrets in a skip's reason, as the store does before writing it.
    """

    def __init__(
        self,
        variant: str,
        *,
        keep_days: int = KEEP_DAYS,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.variant = variant
        self._keep = keep_days
        self._redact = redact if redact is not None else (lambda text: text)
        self._lock = threading.Lock()
        self._days: dict[date, list[Row]] = {}
        self._trades: list[Row] = []
        self._version = 0

    @property
    def version(self) -> int:
        """Grows with every minute added: a drawing of an older version is out of date."""
        return self._version

    def handle(self, events: Sequence[Event]) -> None:
        """The loop's sink: keep the committed minutes' decisions and closed trades."""
        decisions = [decision_row(e) for e in events if isinstance(e, Decided)]
        trades = [trade_row(e.trade) for e in events if isinstance(e, Closed)]
        if decisions or trades:
            self.add(decisions, trades)

    def add(self, decisions: Sequence[Row], trades: Sequence[Row]) -> None:
        """Add rows in the `decisions` / `trades` column order (a restart's seed, or a minute)."""
        with self._lock:
            for row in decisions:
                if row[REASON] is not None:
                    row = (*row[:REASON], self._redact(str(row[REASON])), *row[REASON + 1 :])
                self._days.setdefault(_day_of(row[1]), []).append(row)
            self._trades.extend(trades)
            for old in sorted(self._days)[: -self._keep]:
                del self._days[old]
            kept = set(self._days)
            self._trades = [t for t in self._trades if _day_of(t[0]) in kept
                            or _day_of(t[7]) in kept]
            self._version += 1

    def seed(self, decisions: pd.DataFrame, trades: pd.DataFrame) -> None:
        """Start from the rows a store already holds (frames with the tables' columns)."""
        names = [name for name, _ in DECISION_COLUMNS]
        self.add(
            [tuple(row) for row in decisions[names].itertuples(index=False)],
            [tuple(row) for row in trades[[name for name, _ in TRADE_COLUMNS]].itertuples(
                index=False)],
        )

    def ledger(self, session: date | None = None) -> Ledger | None:
        """The rows of `session` (the latest day when None) as a report's frames, or None."""
        with self._lock:
            day = session if session is not None else max(self._days, default=None)
            if day is None or day not in self._days:
                return None
            rows = list(self._days[day])
            trades = [t for t in self._trades if _day_of(t[0]) == day or _day_of(t[7]) == day]
        decisions = pd.DataFrame.from_records(rows, columns=[n for n, _ in DECISION_COLUMNS])
        closed = pd.DataFrame.from_records(trades, columns=[n for n, _ in TRADE_COLUMNS])
        return Ledger(
            normalized(decisions, DECISION_FIELDS),
            normalized(closed, TRADE_FIELDS),
            "this daemon's committed minutes",
        )

    def chart_job(self, ended: SessionEnded) -> Callable[[], bytes] | None:
        """A drawing of the ended session's PNG, bound to a copy of its rows taken now (in the
        loop's thread, cheap) and run later on another thread; None when no row is kept."""
        ledger = self.ledger(ended.session_date)
        if ledger is None:
            return None

        def draw() -> bytes:
            from gexbot.report.png import day_png

            return day_png(ledger, ended)

        return draw


class LivePage:
    """The report page of the book's latest day, drawn on demand and cached."""

    def __init__(
        self,
        book: DayBook,
        *,
        label: str,
        now: Callable[[], datetime] = lambda: datetime.now(EASTERN),
        clock: Callable[[], float] = time.monotonic,
        min_interval_s: float = 5.0,
    ) -> None:
        self._book = book
        self._label = label
        self._now = now
        self._clock = clock
        self._min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._page: bytes | None = None
        self._page_version = -1
        self._drawn_at = 0.0
        self.renders = 0

    def html(self) -> bytes:
        """The page: redrawn when a minute was added, at most once per `min_interval_s`."""
        with self._lock:
            version = self._book.version
            fresh = version == self._page_version
            recent = self._clock() - self._drawn_at < self._min_interval_s
            if self._page is not None and (fresh or recent):
                return self._page
            self._page = self._draw().encode("utf-8")
            self._page_version, self._drawn_at = version, self._clock()
            self.renders += 1
            return self._page

    def _draw(self) -> str:
        from gexbot.report.page import build_page, waiting_page

        ledger = self._book.ledger()
        title = f"gexbot live: {self._label}"
        if ledger is None:
            return waiting_page(title, "No minute committed yet by this daemon; this page"
                                " reloads every minute.", REFRESH_S)
        last = ledger.decisions["at"].max()
        banner = (f"Live: the minutes this daemon has committed, up to {last:%Y-%m-%d %H:%M}"
                  f" New York time. This page reloads every minute.")
        return build_page(ledger, title=title, generated=self._now(), refresh_s=REFRESH_S,
                          banner=banner)
