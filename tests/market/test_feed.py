"""The minute's requests: identical parameters for every source, and a stop never waits on them."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta

import pytest

from gexbot.core.session import TradingCalendar
from gexbot.errors import AuthError
from gexbot.market.feed import MarketFeed, MinuteAbandoned
from gexbot.market.transport import Endpoint, Exchange
from gexbot.settings import load_variant

PRESET = load_variant("es")
CALENDAR = TradingCalendar(PRESET.calendar, PRESET.strategy.flatten_minutes_before_close)
SESSION = CALENDAR.session(date(2026, 10, 5))
MINUTE = SESSION.open + timedelta(minutes=31)


class Hanging:
    """A transport whose chain request never answers until released (a stuck connection)."""

    def __init__(self, fail_quotes: bool = False) -> None:
        self.release = threading.Event()
        self.fail_quotes = fail_quotes

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        if endpoint == "quotes" and self.fail_quotes:
            raise AuthError("Schwab refused the refresh token")
        if endpoint == "chains":
            self.release.wait(30)
        return Exchange(at=at, endpoint=endpoint, params=params, status=200, body={})


def test_requests_are_the_same_for_every_source() -> None:
    feed = MarketFeed(Hanging(), PRESET, CALENDAR)
    (quotes, q), (history, h), (chains, c) = feed.requests(SESSION, MINUTE)
    assert (quotes, history, chains) == ("quotes", "pricehistory", "chains")
    assert q == {"symbols": "$SPX,SPY", "fields": "quote,reference"}
    assert h["endDate"] == str(int(MINUTE.timestamp() * 1000))
    assert h["startDate"] == str(int(SESSION.open.timestamp() * 1000))
    assert (h["needPreviousClose"], h["frequencyType"], h["frequency"]) == ("true", "minute", "1")
    assert c["strikeCount"] == "40"
    assert (c["fromDate"], c["toDate"]) == ("2026-10-05", "2026-10-06")


def test_a_stop_abandons_a_minute_whose_answers_hang() -> None:
    stop = threading.Event()
    transport = Hanging()
    feed = MarketFeed(transport, PRESET, CALENDAR, concurrent=True, stop=stop)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    try:
        with pytest.raises(MinuteAbandoned, match="stop requested while 10:01 was being fetched"):
            feed.exchanges(SESSION, MINUTE, MINUTE)
        assert time.monotonic() - started < 2.0
    finally:
        transport.release.set()


def test_a_failure_that_stops_the_daemon_is_not_held_up_by_a_hanging_request() -> None:
    transport = Hanging(fail_quotes=True)
    feed = MarketFeed(transport, PRESET, CALENDAR, concurrent=True, stop=threading.Event())
    started = time.monotonic()
    try:
        with pytest.raises(AuthError, match="refused the refresh token"):
            feed.exchanges(SESSION, MINUTE, MINUTE)
        assert time.monotonic() - started < 2.0
    finally:
        transport.release.set()
