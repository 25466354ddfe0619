"""Bad market data from Schwab, through the live transport and the feed: the minute's verdict.

Each case answers the minute's three requests (exact URLs and parameters, as the feed builds
them) with Schwab-shaped bodies, one of them bad, and checks that the minute is skipped with the
right kind, or, for values the strategy can leave out, that the snapshot is still made.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import responses
from responses import matchers
from schwab_helpers import AT, FIXTURES, URLS, add_refresh, load, make_transport

from gexbot.core.session import TradingCalendar
from gexbot.errors import DataError, TransientError
from gexbot.market.feed import MarketFeed
from gexbot.market.parse import parse_chain
from gexbot.market.transport import Exchange
from gexbot.settings import load_variant

PRESET = load_variant("es")
CALENDAR = TradingCalendar(PRESET.calendar, PRESET.strategy.flatten_minutes_before_close)
SESSION = CALENDAR.session(date(2026, 11, 17))
GOOD = {"quotes": "quotes_spx_spy", "pricehistory": "pricehistory_spx", "chains": "chains_spx"}


@pytest.fixture
def feed() -> Iterator[MarketFeed]:
    transport, _ = make_transport()
    market = MarketFeed(transport, PRESET, CALENDAR, concurrent=True)
    yield market
    transport.close()


def _answer(feed: MarketFeed, bad: dict[str, Any], minute: datetime = AT) -> None:
    """Register the minute's three answers: `bad[endpoint]` (fixture name or (status, body))."""
    add_refresh(responses.mock, "access-token-1")
    for endpoint, params in feed.requests(SESSION, minute):
        answer = bad.get(endpoint, GOOD[endpoint])
        status, body = answer if isinstance(answer, tuple) else (200, load(answer))
        match = [matchers.query_param_matcher(params),
                 matchers.header_matcher({"Authorization": "Bearer access-token-1"})]  # fmt: skip
        if isinstance(body, str):
            responses.get(URLS[endpoint], status=status, body=body, match=match)
        else:
            responses.get(URLS[endpoint], status=status, json=body, match=match)


@pytest.mark.parametrize(
    ("bad", "kind", "message"),
    [
        ({"quotes": "quotes_invalid_index"}, "quote_missing",
         "quotes: $SPX missing (listed in invalidSymbols)"),
        ({"quotes": "quotes_spx_zero_price"}, "quote_price",
         "quotes: $SPX lastPrice 0.0 is not a positive number"),
        ({"quotes": "quotes_spx_negative_price"}, "quote_price",
         "quotes: $SPX lastPrice -6812.37 is not a positive number"),
        ({"quotes": "quotes_spx_missing_price"}, "quote_price", "quotes: $SPX lastPrice missing"),
        ({"chains": "chains_failed"}, "chain_status",
         "chains: status 'FAILED', expected 'SUCCESS'"),
        ({"chains": "chains_empty"}, "chain_empty",
         "chains: no contracts (both expiration maps empty)"),
        ({"chains": "chains_unusable"}, "chain_unusable",
         "chains: none of 2 contracts has a usable gamma and open interest"),
        ({"chains": "chains_zero_open_interest"}, "chain_no_interest",
         "chains: none of 12 contracts shows any open interest"),
        ({"pricehistory": (200, (FIXTURES / "pricehistory_truncated.txt").read_text())},
         "bad_json", "pricehistory: HTTP 200 without a JSON body (bad JSON: "),
        ({"chains": (502, load("error_gateway_fault"))}, "server_error",
         "chains: HTTP 502 (Body buffer overflow: protocol.http.TooBigBody)"),
        ({"quotes": (500, load("error_500"))}, "server_error",
         "quotes: HTTP 500 (Internal Server Error)"),
        ({"quotes": (404, "404 Not Found: Requested route does not exist.")}, "http_404",
         "quotes: HTTP 404 (Not Found)"),
    ],
)  # fmt: skip
@responses.activate
def test_bad_data_skips_the_minute_with_its_kind(
    feed: MarketFeed, bad: dict[str, Any], kind: str, message: str
) -> None:
    _answer(feed, bad)
    with pytest.raises(DataError) as info:
        feed.snapshot(SESSION, AT, AT)
    assert info.value.kind == kind
    assert str(info.value).startswith(message)
    transient = kind in ("server_error", "timeout", "connection", "rate_limited")
    assert isinstance(info.value, TransientError) == transient


@responses.activate
def test_sentinel_greeks_are_left_out_and_a_side_left_empty_skips(feed: MarketFeed) -> None:
    # The fixture's calls keep one usable contract of three, its puts none: each sentinel is
    # read as missing, and with a side gone the minute is skipped rather than traded.
    _answer(feed, {"chains": "chains_spx_sentinels"})
    with pytest.raises(DataError, match="1 of 3 calls have a usable gamma") as info:
        feed.snapshot(SESSION, AT, AT)
    assert info.value.kind == "chain_one_sided"
    gamma = parse_chain(Exchange(AT, "chains", {}, 200, load("chains_spx_sentinels"))).gamma
    assert [math.isnan(g) for g in gamma.tolist()] == [True, True, False, False, True, False]


@responses.activate
def test_empty_history_is_a_minute_without_bars_only_at_the_open(feed: MarketFeed) -> None:
    first = SESSION.open + timedelta(minutes=1)
    _answer(feed, {"pricehistory": "pricehistory_empty"}, first)
    _answer(feed, {"pricehistory": "pricehistory_empty"})
    snapshot = feed.snapshot(SESSION, first, first)
    assert snapshot.closes.tolist() == []
    assert snapshot.previous_close == 6790.15
    with pytest.raises(DataError, match="no 1-minute bar of today before 09:36") as info:
        feed.snapshot(SESSION, AT, AT)
    assert info.value.kind == "history_empty"


@responses.activate
def test_out_of_order_candles_are_put_in_order(feed: MarketFeed) -> None:
    _answer(feed, {"pricehistory": "pricehistory_out_of_order"})
    in_order = feed.snapshot(SESSION, AT, AT).closes.tolist()
    responses.mock.reset()
    _answer(feed, {})
    assert in_order == feed.snapshot(SESSION, AT, AT).closes.tolist()
    assert len(in_order) == 6
