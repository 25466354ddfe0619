"""Pacing requests to Schwab: the rolling count of requests, and the pause a 429 asks for.

Schwab's limit (about 120 requests a minute, widely reported, not published) is watched on the
loop's clock, so it works the same on a simulated one; a `Retry-After` is read in either of its
forms and capped, so a hostile or broken header cannot stop the daemon for days.
"""

from __future__ import annotations

import email.utils
import threading
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

MAX_RETRY_AFTER_S = 900.0


def retry_after_seconds(headers: Mapping[str, str], now: datetime) -> float | None:
    """Schwab's requested pause from a `Retry-After` header (seconds or an HTTP date), capped."""
    raw = headers.get("Retry-After", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            until = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        date_header = headers.get("Date", "")
        try:
            base = email.utils.parsedate_to_datetime(date_header) if date_header else now
        except (TypeError, ValueError):
            base = now
        seconds = (until - base).total_seconds()
    if seconds != seconds:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class RequestWindow:
    """Requests sent in the last 60 s of clock time, to see how close we are to the limit."""

    def __init__(self) -> None:
        self._times: deque[datetime] = deque()
        self._lock = threading.Lock()

    def add(self, at: datetime) -> int:
        """Count one request at `at`; returns the count in the window ending at `at`."""
        with self._lock:
            self._times.append(at)
            return self._prune(at)

    def count(self, at: datetime) -> int:
        """Requests in the 60 s before `at`."""
        with self._lock:
            return self._prune(at)

    def _prune(self, at: datetime) -> int:
        start = at - timedelta(seconds=60)
        while self._times and self._times[0] <= start:
            self._times.popleft()
        return sum(1 for moment in self._times if moment <= at)
