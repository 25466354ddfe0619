"""The minute cycle: gather → step → commit → announce, on any clock and any market.

Live, simulated and replayed runs all go through `TradingLoop.run`; only the clock, the
transport and the session list differ. The order inside a minute is what makes a crash
harmless: the store commits the decision, trades and new state in one transaction *before*
anything is announced, so a restart resumes from the last committed minute and no trade is
written or announced twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from gexbot.core.engine import EngineParams, end_session, skip, step
from gexbot.core.session import TradingCalendar, session_minutes
from gexbot.core.types import Event, SessionTimes, State
from gexbot.errors import DataError
from gexbot.market.feed import MarketFeed, MinuteAbandoned
from gexbot.shell.clock import Clock

MINUTE = timedelta(minutes=1)
log = logging.getLogger("gexbot.loop")


Sink = Callable[[Sequence[Event]], None]
"""Consumes a committed minute's events (console, Discord, metrics); never raises or blocks."""


class Observer(Protocol):
    """Watches the loop's health (the metrics endpoint)."""

    def observe_iteration(self, latency_s: float, state_summary: dict[str, object]) -> None:
        """One minute done, in `latency_s` seconds of work."""
        ...

    def data_error(self, kind: str) -> None:
        """One minute skipped for a data problem of `kind`."""
        ...


class Store(Protocol):
    """Where minutes are committed; see `gexbot.shell.store.Store`."""

    def commit(self, minute: datetime, events: Sequence[Event], state: State) -> bool:
        """Commit the minute; True once it is durable, False while it waits for its batch."""
        ...

    def flush(self) -> bool:
        """Make every committed minute durable now."""
        ...


class Alerter(Protocol):
    """Raises an operator alert (log + Discord)."""

    def alert(self, title: str, message: str) -> None:
        """Send one alert; must not raise."""
        ...


@dataclass
class LoopStats:
    """What the run did, for the exit summary and the health endpoint."""

    minutes: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    last_iteration: float | None = None
    last_latency_s: float = 0.0
    consecutive_failures: int = 0


class TradingLoop:
    """Runs sessions minute by minute until they end or a stop is requested."""

    def __init__(
        self,
        *,
        params: EngineParams,
        feed: MarketFeed,
        clock: Clock,
        store: Store,
        sinks: Sequence[Sink],
        alerter: Alerter,
        stop: threading.Event,
        state: State,
        fetch_delay: timedelta = timedelta(0),
        failure_alert_after: int = 5,
        max_minutes: int | None = None,
        metrics: Observer | None = None,
        source: str = "",
    ) -> None:
        self.params = params
        self.state = state
        self.stats = LoopStats()
        self._feed = feed
        self._clock = clock
        self._store = store
        self._sinks = sinks
        self._alerter = alerter
        self._stop = stop
        self._fetch_delay = fetch_delay
        self._failure_alert_after = failure_alert_after
        self._max_minutes = max_minutes
        self._metrics = metrics
        self._source = source
        self._unannounced: list[Event] = []

    def run(self, sessions: Iterable[SessionTimes]) -> State:
        """Trade every session in order; returns the final state."""
        try:
            for session in sessions:
                if not self._run_session(session):
                    break
        finally:
            self._store.flush()
            self._release()
        return self.state

    def _run_session(self, session: SessionTimes) -> bool:
        """One session; False when the run must stop (stop request or minute budget spent)."""
        traded = False
        for minute in session_minutes(session):
            if self.state.last_minute is not None and minute <= self.state.last_minute:
                continue
            if self._budget_spent():
                return False
            if self._clock.realtime and self._clock.now() >= minute + MINUTE:
                if traded:
                    self._record_skip(minute, DataError("the loop fell behind", "missed"))
                continue
            if not traded and not self._wait_for_open(session, minute):
                return False
            if not self._clock.sleep_until(minute + self._fetch_delay):
                return False
            self._run_minute(session, minute)
            traded = True
            if self._stop.is_set():
                return False
        if traded and self.state.session_date == session.date:
            self.state, events = end_session(self.state, self.params)
            self._store.flush()
            self._unannounced.extend(events)
            self._release()
        return not self._stop.is_set()

    def _wait_for_open(self, session: SessionTimes, minute: datetime) -> bool:
        """Before a session's first minute: sleep (live) or jump (simulated) to it."""
        if self._clock.realtime and self._clock.now() < minute - MINUTE:
            log.info(
                "market closed; next session %s opens %s", session.date, f"{session.open:%H:%M %Z}"
            )
        return self._clock.skip_to(minute)

    def _run_minute(self, session: SessionTimes, minute: datetime) -> None:
        started = time.perf_counter()
        try:
            snapshot = self._feed.snapshot(session, minute, self._clock.now())
        except MinuteAbandoned as why:
            log.info("%s; the minute is left undecided", why)
            return
        except DataError as problem:
            self._record_skip(minute, problem)
            return
        self.state, events = step(self.state, snapshot, self.params)
        self.stats.consecutive_failures = 0
        self._finish_minute(minute, events, started)

    def _record_skip(self, minute: datetime, problem: DataError) -> None:
        started = time.perf_counter()
        self.state, events = skip(self.state, minute, f"{problem.kind}: {problem}", self.params)
        self._count_failure(minute, problem)
        self._finish_minute(minute, events, started)

    def _finish_minute(self, minute: datetime, events: Sequence[Event], started: float) -> None:
        self._unannounced.extend(events)
        if self._store.commit(minute, events, self.state):
            self._release()
        self.stats.minutes += 1
        self.stats.last_latency_s = time.perf_counter() - started
        self.stats.last_iteration = time.monotonic()
        if self._metrics is not None:
            position = self.state.position
            self._metrics.observe_iteration(
                self.stats.last_latency_s,
                {
                    "variant": self.params.variant,
                    "balance": self.state.balance,
                    "position": position.direction.value if position is not None else None,
                    "source": self._source,
                    "last_minute": minute.isoformat(),
                },
            )

    def _count_failure(self, minute: datetime, problem: DataError) -> None:
        self.stats.skipped[problem.kind] = self.stats.skipped.get(problem.kind, 0) + 1
        self.stats.consecutive_failures += 1
        if self._metrics is not None:
            self._metrics.data_error(problem.kind)
        if self.stats.consecutive_failures == self._failure_alert_after:
            message = (
                f"{self.params.variant}: {self._failure_alert_after} consecutive minutes skipped"
                f" up to {minute:%Y-%m-%d %H:%M}; last problem: {problem}"
            )
            log.error("market data failing: %s", message)
            self._alerter.alert("Market data failing", message)

    def _release(self) -> None:
        """Hand the durable minutes' events to the sinks: nothing is announced before it is
        committed, so a crash never announces a trade the restarted run will announce again."""
        if not self._unannounced:
            return
        events, self._unannounced = self._unannounced, []
        for sink in self._sinks:
            sink(events)

    def _budget_spent(self) -> bool:
        return self._max_minutes is not None and self.stats.minutes >= self._max_minutes


def live_sessions(calendar: TradingCalendar, clock: Clock) -> Iterator[SessionTimes]:
    """The session in progress or next, forever: the live daemon's session list."""
    while True:
        session = calendar.current_or_next(clock.now())
        yield session
        if clock.now() < session.close and not clock.sleep_until(session.close):
            return
