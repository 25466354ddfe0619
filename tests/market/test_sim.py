"""The simulated market: determinism, clock semantics, Schwab shapes, calendar days, maths."""

from __future__ import annotations

import itertools
import json
import math
import re
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.core.types import SessionTimes
from gexbot.errors import CalendarError
from gexbot.market.sim import SimMarket
from gexbot.settings import Preset, load_variant

SEED = 7
START = date(2026, 10, 1)


@pytest.fixture(scope="module")
def preset() -> Preset:
    return load_variant("es")


@pytest.fixture(scope="module")
def calendar(preset: Preset) -> TradingCalendar:
    return TradingCalendar("XNYS", preset.strategy.flatten_minutes_before_close)


@pytest.fixture(scope="module")
def sim(preset: Preset, calendar: TradingCalendar) -> SimMarket:
    return SimMarket(preset, calendar, SEED)


def et(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=EASTERN)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def quote_params() -> dict[str, str]:
    return {"symbols": "$SPX,SPY", "fields": "quote,reference"}


def history_params(session: SessionTimes, end: datetime) -> dict[str, str]:
    return {"symbol": "$SPX", "periodType": "day", "period": "1", "frequencyType": "minute",
            "frequency": "1", "startDate": str(ms(session.open)), "endDate": str(ms(end)),
            "needExtendedHoursData": "false", "needPreviousClose": "true"}


def chain_params(first: date, last: date, count: int = 40) -> dict[str, str]:
    return {"symbol": "$SPX", "contractType": "ALL", "strikeCount": str(count),
            "includeUnderlyingQuote": "false", "fromDate": first.isoformat(),
            "toDate": last.isoformat()}


def minute_bodies(sim: SimMarket, calendar: TradingCalendar, at: datetime) -> str:
    """The three answers of minute `at`, serialized (the bytes a recorder would keep)."""
    session = calendar.session(at.date())
    following = calendar.sessions_from(at.date() + timedelta(days=1), 1)[0].date
    answers = [
        sim.get("quotes", quote_params(), at),
        sim.get("pricehistory", history_params(session, at), at),
        sim.get("chains", chain_params(at.date(), following), at),
    ]
    assert all(answer.ok for answer in answers)
    return json.dumps([answer.body for answer in answers])


def full_day(sim: SimMarket, session: SessionTimes) -> dict[str, Any]:
    later = session.close + timedelta(hours=2)
    body: dict[str, Any] = sim.get("pricehistory", history_params(session, session.close),
                                   later).body
    return body


def spot(sim: SimMarket, at: datetime) -> float:
    value: float = sim.get("quotes", quote_params(), at).body["$SPX"]["quote"]["lastPrice"]
    return value


def test_same_seed_same_bytes_and_other_seed_differs(preset, calendar):
    first, second = SimMarket(preset, calendar, SEED), SimMarket(preset, calendar, SEED)
    other = SimMarket(preset, calendar, SEED + 1)
    for at in (et(START, 9, 30), et(START, 11, 7), et(date(2026, 10, 2), 15, 59)):
        assert minute_bodies(first, calendar, at) == minute_bodies(second, calendar, at)
        assert minute_bodies(first, calendar, at) != minute_bodies(other, calendar, at)


def test_a_day_answers_the_same_whatever_was_asked_before(preset, calendar):
    target = et(date(2026, 10, 15), 11, 0)
    alone = minute_bodies(SimMarket(preset, calendar, SEED), calendar, target)
    busy = SimMarket(preset, calendar, SEED)
    for session in calendar.sessions_from(date(2026, 10, 19), 10):  # evicts the day cache
        minute_bodies(busy, calendar, et(session.date, 10, 0))
    minute_bodies(busy, calendar, et(date(2026, 10, 15), 15, 0))
    minute_bodies(busy, calendar, et(date(2026, 10, 14), 15, 0))
    assert minute_bodies(busy, calendar, target) == alone


def test_previous_close_is_the_last_price_of_the_previous_session(sim, calendar):
    for day in (date(2026, 10, 2), date(2026, 10, 5)):  # a weekday and a Monday
        session = calendar.session(day)
        before = calendar.previous_session(day)
        last_bar = full_day(sim, before)["candles"][-1]
        history = sim.get("pricehistory", history_params(session, et(day, 10, 0)),
                          et(day, 10, 0)).body
        quote = sim.get("quotes", quote_params(), et(day, 10, 0)).body["$SPX"]["quote"]
        assert history["previousClose"] == last_bar["close"] == quote["closePrice"]
        assert spot(sim, before.close) == last_bar["close"]
        midnight_central = datetime(before.date.year, before.date.month, before.date.day,
                                    tzinfo=EASTERN) + timedelta(hours=1)
        assert history["previousCloseDate"] == ms(midnight_central)


def test_spot_is_the_close_of_the_bar_that_opened_a_minute_earlier(sim, calendar):
    session = calendar.session(START)
    for minute in (1, 2, 45, 200, 389):
        at = session.open + timedelta(minutes=minute)
        candles = sim.get("pricehistory", history_params(session, at), at).body["candles"]
        bar = next(c for c in candles if c["datetime"] == ms(at - timedelta(minutes=1)))
        assert bar["close"] == spot(sim, at)
        assert bar["low"] <= min(bar["open"], bar["close"])
        assert bar["high"] >= max(bar["open"], bar["close"])


def test_history_holds_no_bar_after_end_date_nor_after_the_clock(sim, calendar):
    session = calendar.session(START)
    at = et(START, 10, 0)
    body = sim.get("pricehistory", history_params(session, at), at).body
    stamps = [c["datetime"] for c in body["candles"]]
    assert stamps == [ms(session.open) + 60_000 * m for m in range(31)]  # 30 done + 1 running
    assert body["empty"] is False
    asks_future = sim.get("pricehistory", history_params(session, session.close), at).body
    assert [c["datetime"] for c in asks_future["candles"]] == stamps
    opening = sim.get("pricehistory", history_params(session, session.open), session.open).body
    assert [c["datetime"] for c in opening["candles"]] == [ms(session.open)]
    assert opening["candles"][0]["close"] == spot(sim, session.open)


def test_past_session_history_is_the_full_day_and_matches_minute_closes(sim, calendar):
    session = calendar.session(START)
    candles = full_day(sim, session)["candles"]
    assert len(candles) == 390
    assert candles[-1]["datetime"] == ms(session.close - timedelta(minutes=1))
    closes = sim.minute_closes(START)
    np.testing.assert_array_equal(closes, [c["close"] for c in candles])
    assert closes[-1] == spot(sim, session.close + timedelta(hours=3))


def test_early_close_day_ends_at_one(sim, calendar):
    day = date(2026, 11, 27)
    session = calendar.session(day)
    candles = full_day(sim, session)["candles"]
    assert len(candles) == 210
    assert candles[-1]["datetime"] == ms(et(day, 12, 59))
    assert len(sim.minute_closes(day)) == 210
    after = sim.get("quotes", quote_params(), et(day, 14, 30)).body["$SPX"]["quote"]
    assert after["lastPrice"] == candles[-1]["close"]
    assert after["tradeTime"] == ms(et(day, 13, 0))


def test_holiday_has_empty_history_and_quotes_the_last_close(sim, calendar):
    holiday = date(2026, 11, 26)
    before = calendar.session(date(2026, 11, 25))
    last_close = full_day(sim, before)["candles"][-1]["close"]
    params = history_params(before, et(holiday, 12, 0)) | {"startDate": str(ms(et(holiday, 9, 30)))}
    body = sim.get("pricehistory", params, et(holiday, 12, 0)).body
    assert body["empty"] is True
    assert body["candles"] == []
    assert body["previousClose"] == last_close
    assert spot(sim, et(holiday, 12, 0)) == last_close
    assert spot(sim, et(date(2026, 11, 28), 10, 0)) == spot(sim, et(date(2026, 11, 27), 13, 0))
    with pytest.raises(CalendarError, match="not a trading session"):
        sim.minute_closes(holiday)


def test_twenty_sessions_hold_an_opening_gap(sim, calendar):
    gaps = []
    for session in calendar.sessions_from(START, 20):
        quote = sim.get("quotes", quote_params(), session.open).body["$SPX"]["quote"]
        gaps.append(abs(quote["lastPrice"] - quote["closePrice"]) / quote["closePrice"])
    assert max(gaps) > 0.005
    assert sum(g > 0.005 for g in gaps) <= 8


def test_shapes_follow_schwab(sim):
    at = et(date(2026, 10, 2), 10, 30)  # a Friday: the next expiration is Monday
    quotes = sim.get("quotes", quote_params(), at).body
    assert set(quotes) == {"$SPX", "SPY"}
    assert {"lastPrice", "openPrice", "highPrice", "lowPrice", "closePrice", "netChange",
            "netPercentChange", "totalVolume", "tradeTime", "securityStatus"} <= set(
        quotes["$SPX"]["quote"])
    assert quotes["$SPX"]["assetMainType"] == "INDEX"
    assert "reference" in quotes["$SPX"]
    proxy = quotes["SPY"]
    assert (proxy["assetMainType"], proxy["assetSubType"], proxy["quoteType"]) == (
        "EQUITY", "ETF", "NBBO")
    assert {"bidPrice", "askPrice", "bidSize", "askSize", "lastPrice", "lastSize", "mark",
            "closePrice", "totalVolume", "quoteTime", "tradeTime", "securityStatus"} <= set(
        proxy["quote"])
    assert isinstance(proxy["quote"]["bidSize"], int)

    chain = sim.get("chains", chain_params(at.date(), date(2026, 10, 5), count=10), at).body
    assert chain["status"] == "SUCCESS"
    assert chain["isIndex"] is True
    assert list(chain["callExpDateMap"]) == ["2026-10-02:0", "2026-10-05:3"]
    assert list(chain["putExpDateMap"]) == ["2026-10-02:0", "2026-10-05:3"]
    assert chain["numberOfContracts"] == 40
    underlying = chain["underlyingPrice"]
    assert underlying == quotes["$SPX"]["quote"]["lastPrice"]
    strikes = chain["callExpDateMap"]["2026-10-02:0"]
    assert all(re.fullmatch(r"\d+\.0", key) for key in strikes)
    values = [float(key) for key in strikes]
    assert values == sorted(values)
    assert len(values) == 10
    assert sum(v <= underlying for v in values) == 5
    assert all(b - a == 5.0 for a, b in itertools.pairwise(values))
    contract = strikes[next(iter(strikes))][0]
    assert {"putCall", "symbol", "bid", "ask", "last", "mark", "bidSize", "askSize",
            "totalVolume", "openInterest", "volatility", "delta", "gamma", "theta", "vega", "rho",
            "strikePrice", "expirationDate", "daysToExpiration", "expirationType",
            "settlementType", "multiplier", "inTheMoney", "quoteTimeInLong",
            "tradeTimeInLong"} <= set(contract)
    strike = contract["strikePrice"]
    assert contract["symbol"] == f"SPXW  261002C{round(strike * 1000):08d}"
    assert contract["expirationDate"] == "2026-10-02T20:00:00.000+00:00"
    assert contract["bid"] <= contract["mark"] <= contract["ask"]
    assert sim.get("chains", chain_params(at.date(), date(2026, 10, 5)), at).body[
        "numberOfContracts"] == 160


def test_gamma_is_black_scholes(sim):
    at = et(date(2026, 10, 2), 14, 17)
    chain = sim.get("chains", chain_params(at.date(), date(2026, 10, 5)), at).body
    s, r = chain["underlyingPrice"], chain["interestRate"] / 100.0
    checked = 0
    for side in ("callExpDateMap", "putExpDateMap"):
        for strikes in chain[side].values():
            for contracts in strikes.values():
                c = contracts[0]
                if c["gamma"] == -999.0:
                    continue
                expiry = datetime.fromisoformat(c["expirationDate"])
                years = max((expiry - at).total_seconds(), 300.0) / (365.0 * 86400.0)
                sigma, k = c["volatility"] / 100.0, c["strikePrice"]
                d1 = (math.log(s / k) + (r + sigma**2 / 2) * years) / (sigma * math.sqrt(years))
                gamma = math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi) / (
                    s * sigma * math.sqrt(years))
                assert c["gamma"] == pytest.approx(gamma, abs=6e-5, rel=2e-3)
                checked += 1
    assert checked >= 150


def test_rare_warts_appear_at_low_rates(sim):
    sentinels = contracts = zero_oi = 0
    day = date(2026, 10, 8)
    for minute in range(0, 390, 6):
        at = et(day, 9, 30) + timedelta(minutes=minute)
        chain = sim.get("chains", chain_params(day, date(2026, 10, 9)), at).body
        for side in ("callExpDateMap", "putExpDateMap"):
            for strikes in chain[side].values():
                for (c,) in strikes.values():
                    contracts += 1
                    sentinels += c["gamma"] == -999.0
                    zero_oi += c["openInterest"] == 0
    assert contracts == 65 * 160
    assert 8 <= sentinels <= 90
    assert 0 < zero_oi < contracts * 0.1


def test_bid_ask_sizes_lean_against_moves(sim, calendar):
    deviations, log_ratios, zeros = [], [], 0
    for session in calendar.sessions_from(START, 5):
        spots: list[float] = []
        for minute in range(390):
            at = session.open + timedelta(minutes=minute)
            quote = sim.get("quotes", quote_params(), at).body
            spots.append(quote["$SPX"]["quote"]["lastPrice"])
            bid, ask = quote["SPY"]["quote"]["bidSize"], quote["SPY"]["quote"]["askSize"]
            if bid == 0 or ask == 0:
                zeros += 1
            elif minute >= 10:
                deviations.append(spots[-1] - np.mean(spots[-10:]))
                log_ratios.append(math.log(bid / ask))
    assert np.corrcoef(deviations, log_ratios)[0, 1] < -0.3
    assert 1 <= zeros <= 40


def test_net_gex_takes_both_signs_and_leans_positive(sim, calendar):
    day_shares = []
    for session in calendar.sessions_from(START, 20):
        following = calendar.sessions_from(session.date + timedelta(days=1), 1)[0].date
        signs = []
        for minute in range(0, 390, 30):
            at = session.open + timedelta(minutes=minute)
            chain = sim.get("chains", chain_params(session.date, following), at).body
            total = 0.0
            for side, sign in (("callExpDateMap", 1.0), ("putExpDateMap", -1.0)):
                for strikes in chain[side].values():
                    for (c,) in strikes.values():
                        if c["gamma"] != -999.0:
                            total += sign * c["gamma"] * c["openInterest"] * 100 * chain[
                                "underlyingPrice"]
            signs.append(total > 0)
        day_shares.append(np.mean(signs))
    assert 0.5 <= np.mean(day_shares) <= 0.8
    assert sum(share < 0.5 for share in day_shares) >= 3


@pytest.mark.parametrize(
    ("endpoint", "params", "detail"),
    [
        ("marketHours", {}, "unknown endpoint"),
        ("quotes", {"symbols": "$SPX,AAPL"}, "AAPL"),
        ("chains", {"symbol": "$SPX", "strikeCount": "forty"}, "strikeCount"),
        ("chains", {"symbol": "$SPX", "strategy": "VERTICAL"}, "strategy"),
        ("pricehistory", {"symbol": "$SPX", "startDate": "0", "endDate": "1", "frequency": "5"},
         "frequency"),
        ("pricehistory", {"symbol": "$SPX", "startDate": "1577977200000",
                          "endDate": "1559570400000"}, "startDate"),
    ],
)
def test_requests_it_cannot_serve_are_400(sim, endpoint, params, detail):
    answer = sim.get(endpoint, params, et(START, 10, 0))
    assert answer.status == 400
    assert not answer.ok
    error = answer.body["errors"][0]
    assert error["status"] == "400"
    assert error["title"] == "Bad Request"
    assert detail in error["detail"]


def test_days_before_the_epoch_and_naive_clocks_are_refused(sim):
    before = datetime(2019, 6, 3, 10, 0, tzinfo=EASTERN)
    assert sim.get("quotes", quote_params(), before).status == 400
    assert sim.get("quotes", quote_params(), datetime(2026, 10, 1, 10, 0)).status == 400  # noqa: DTZ001
