"""Clocks the loop runs on: the wall clock, or a simulated one that can run faster.

The loop never reads time any other way, so live, simulated and replayed runs share one loop
and tests drive it without sleeping. Waiting is interruptible through a `threading.Event`, so
SIGTERM ends a wait at once instead of after the minute.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from gexbot.core.session import EASTERN


class Clock(Protocol):
    """What the loop asks of time."""

    def now(self) -> datetime:
        """The current (wall or simulated) time, timezone-aware."""
        ...

    def sleep_until(self, moment: datetime) -> bool:
        """Wait until `moment`; False when the wait was interrupted by a stop request."""
        ...

    def skip_to(self, moment: datetime) -> bool:
        """Get to `moment` across closed-market time: a real clock waits, a simulated one jumps."""
        ...

    @property
    def realtime(self) -> bool:
        """True when minutes can be missed because the world moves on without us."""
        ...


class RealClock:
    """The wall clock in America/New_York."""

    realtime = True

    def __init__(self, stop: threading.Event, on_wait: Callable[[], object] | None = None) -> None:
        """`on_wait` is called at least every 30 s while waiting (health heartbeats)."""
        self._stop = stop
        self._on_wait = on_wait

    def now(self) -> datetime:
        """The wall-clock time."""
        return datetime.now(EASTERN)

    def sleep_until(self, moment: datetime) -> bool:
        """Sleep in bounded slices so a wall-clock jump (NTP, suspend) is noticed."""
        while not self._stop.is_set():
            remaining = (moment - self.now()).total_seconds()
            if remaining <= 0:
                return True
            self._stop.wait(min(remaining, 30.0))
            if self._on_wait is not None:
                self._on_wait()
        return False

    def skip_to(self, moment: datetime) -> bool:
        """The wall clock cannot jump: wait."""
        return self.sleep_until(moment)


class SimClock:
    """A simulated clock: jumps to each moment at once (`speed=None`) or runs `speed`× real time.

    `sleep` is the real wait, injectable so tests of paced runs never sleep.
    """

    realtime = False

    def __init__(
        self,
        start: datetime,
        stop: threading.Event,
        speed: float | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("a clock needs a timezone-aware start")
        self._now = start
        self._stop = stop
        self._speed = speed
        self._wait = sleep if sleep is not None else stop.wait

    def now(self) -> datetime:
        """The simulated time."""
        return self._now

    def sleep_until(self, moment: datetime) -> bool:
        """Advance to `moment`, waiting the scaled real time when a speed is set."""
        if self._stop.is_set():
            return False
        if moment <= self._now:
            return True
        if self._speed is not None:
            self._wait((moment - self._now).total_seconds() / self._speed)
            if self._stop.is_set():
                return False
        self._now = moment
        return True

    def skip_to(self, moment: datetime) -> bool:
        """Jump over closed-market time at once, whatever the speed."""
        if self._stop.is_set():
            return False
        self._now = max(self._now, moment)
        return True
