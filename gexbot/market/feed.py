"""One minute of market data: the three requests, made together, parsed into a `Snapshot`.

The request parameters are built here once for every source, so the simulated market, a
recording and live Schwab all see byte-identical requests, and a replay finds exactly what
the live run asked for.
"""

from __future__ import annotations

import queue
import threading
from datetime import date, datetime

from gexbot.core.session import TradingCalendar
from gexbot.core.types import SessionTimes, Snapshot
from gexbot.market.parse import parse_snapshot
from gexbot.market.transport import Endpoint, Exchange, Transport
from gexbot.settings import Preset

STOP_POLL_S = 0.1
"""How often a stop request is looked at while the minute's requests are in flight."""


class MinuteAbandoned(Exception):
    """A stop was requested while the minute's requests were in flight; nothing was decided."""


def epoch_ms(moment: datetime) -> str:
    """Milliseconds since the epoch, as Schwab's date parameters want them."""
    return str(int(moment.timestamp() * 1000))


def quote_params(preset: Preset) -> dict[str, str]:
    """Index and proxy ETF in one quotes request."""
    return {"symbols": f"{preset.symbol},{preset.proxy}", "fields": "quote,reference"}


def history_params(preset: Preset, session: SessionTimes, at: datetime) -> dict[str, str]:
    """Today's 1-minute bars up to `at`, with the previous close (explicit endDate: see docs)."""
    return {
        "symbol": preset.symbol,
        "periodType": "day",
        "period": "1",
        "frequencyType": "minute",
        "frequency": "1",
        "startDate": epoch_ms(session.open),
        "endDate": epoch_ms(at),
        "needExtendedHoursData": "false",
        "needPreviousClose": "true",
    }


def chain_params(preset: Preset, today: date, last_expiration: date) -> dict[str, str]:
    """The near-the-money chain, bounded to the preset's expirations (unbounded overflows)."""
    return {
        "symbol": preset.symbol,
        "contractType": "ALL",
        "strikeCount": str(preset.chain.strike_count),
        "includeUnderlyingQuote": "false",
        "fromDate": today.isoformat(),
        "toDate": last_expiration.isoformat(),
    }


class MarketFeed:
    """Fetches and parses one minute; concurrent requests for slow (live) transports."""

    def __init__(
        self,
        transport: Transport,
        preset: Preset,
        calendar: TradingCalendar,
        *,
        concurrent: bool = False,
        stop: threading.Event | None = None,
    ) -> None:
        """`stop`, when given, abandons a minute whose answers are still awaited (SIGTERM)."""
        self.transport = transport
        self._stop = stop
        self._preset = preset
        self._calendar = calendar
        self._concurrent = concurrent
        self._last_expiration: tuple[date, date] | None = None

    def requests(
        self, session: SessionTimes, minute: datetime
    ) -> list[tuple[Endpoint, dict[str, str]]]:
        """The minute's three requests, in a fixed order: quotes, pricehistory, chains."""
        return [
            ("quotes", quote_params(self._preset)),
            ("pricehistory", history_params(self._preset, session, minute)),
            ("chains", chain_params(self._preset, session.date, self._expiration_end(session))),
        ]

    def exchanges(
        self, session: SessionTimes, minute: datetime, clock_time: datetime
    ) -> list[Exchange]:
        """Make the minute's requests (together when concurrent) and return the answers."""
        requests = self.requests(session, minute)
        if not self._concurrent:
            return [self.transport.get(ep, params, clock_time) for ep, params in requests]
        return self._together(requests, minute, clock_time)

    def _together(
        self,
        requests: list[tuple[Endpoint, dict[str, str]]],
        minute: datetime,
        clock_time: datetime,
    ) -> list[Exchange]:
        """The requests at once, each on a daemon thread of its own.

        Daemon threads, not a pool: a request stuck in a read timeout or a Retry-After wait must
        not hold the process at exit (a pool's threads are joined), so that SIGTERM ends the
        daemon within seconds whatever Schwab is doing. A failure that stops the daemon
        (`AuthError`) is raised as soon as it happens, without waiting for the others.
        """
        answers: queue.Queue[tuple[int, Exchange | BaseException]] = queue.Queue()

        def ask(index: int, endpoint: Endpoint, params: dict[str, str]) -> None:
            try:
                answers.put((index, self.transport.get(endpoint, params, clock_time)))
            except BaseException as problem:  # handed to the loop's thread, raised there
                answers.put((index, problem))

        for index, (endpoint, params) in enumerate(requests):
            threading.Thread(
                target=ask, args=(index, endpoint, params), name=f"gexbot-{endpoint}", daemon=True
            ).start()
        results: dict[int, Exchange] = {}
        while len(results) < len(requests):
            try:
                index, answer = answers.get(timeout=STOP_POLL_S)
            except queue.Empty:
                if self._stop is not None and self._stop.is_set():
                    raise MinuteAbandoned(
                        f"stop requested while {minute:%H:%M} was being fetched"
                    ) from None
                continue
            if isinstance(answer, BaseException):
                raise answer
            results[index] = answer
        return [results[index] for index in range(len(requests))]

    def snapshot(self, session: SessionTimes, minute: datetime, clock_time: datetime) -> Snapshot:
        """The parsed minute; raises `DataError` (skip the minute) when anything is unusable."""
        quotes, history, chain = self.exchanges(session, minute, clock_time)
        return parse_snapshot(
            quotes,
            history,
            chain,
            at=minute,
            session=session,
            symbol=self._preset.symbol,
            proxy=self._preset.proxy,
            limits=self._preset.data,
        )

    def _expiration_end(self, session: SessionTimes) -> date:
        cached = self._last_expiration
        if cached is not None and cached[0] == session.date:
            return cached[1]
        ahead = self._preset.chain.expirations_ahead
        last = self._calendar.sessions_from(session.date, ahead + 1)[-1].date
        self._last_expiration = (session.date, last)
        return last
