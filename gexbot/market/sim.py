"""A seeded simulated market that answers the three market-data requests in Schwab's JSON.

`SimMarket` is a `Transport`: the loop, the recorder and the parser cannot tell it from live
Schwab except by the numbers. Answers depend only on (seed, preset, request, clock minute), so a
run is reproducible byte for byte whatever order the days are asked in. The market itself
(paths, order flow, open interest, option maths) lives in `sim_path`; this module only serves it.

Semantics: spot at minute `at` is the index's lastPrice; the bar that opened at minute m closes
at the price of minute m + 1; previousClose is the previous session's last price. Outside a
session, quotes show the last session's close and the history of a closed day is empty.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.core.types import FloatArray, SessionTimes
from gexbot.errors import CalendarError, ConfigError
from gexbot.market.sim_chain import ChainSide, chain_body, chain_sides
from gexbot.market.sim_path import EPOCH, DailyWalk, DayPath, build_day, variant_key
from gexbot.market.transport import Endpoint, Exchange, ManagedTransport
from gexbot.settings import Preset

CENTRAL = ZoneInfo("America/Chicago")
DAY_CACHE = 8
MAX_CHAIN_DAYS = 370
ROOTS = {"$SPX": "SPXW", "$NDX": "NDXP"}
_ERROR_NS = uuid.UUID("6b1f7a4e-3c55-4d1e-9a57-0c5e3f7d2a10")


class _BadRequest(Exception):
    def __init__(self, detail: str, parameter: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.parameter = parameter


@dataclass(frozen=True, slots=True, eq=False)
class SimMinute:
    """One session minute's numbers as the three answers carry them (see `minute_values`).

    `closes` are the closes of today's bars that opened before the minute; `chain` the strike
    keys, gamma and open interest of each side and expiration, in the answer's order.
    """

    spot: float
    bid_size: int
    ask_size: int
    closes: FloatArray
    previous_close: float
    chain: list[ChainSide]


@dataclass(frozen=True, slots=True)
class _Moment:
    """Where the clock stands in the simulated market: a day's path and a minute of it."""

    path: DayPath
    minute: int
    live: bool
    now: datetime
    """The minute instant while live, else the clock floored to the minute."""


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _expect(params: dict[str, str], required: set[str], allowed: set[str]) -> None:
    missing = sorted(required - params.keys())
    if missing:
        raise _BadRequest(f"missing parameter {missing[0]}", missing[0])
    unknown = sorted(params.keys() - allowed - required)
    if unknown:
        raise _BadRequest(f"parameter {unknown[0]} is not supported by the simulated market",
                          unknown[0])


def _choice(params: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name, default)
    if value not in allowed:
        raise _BadRequest(f"{name}={value!r} is not one of {', '.join(allowed)}", name)
    return value


def _integer(params: dict[str, str], name: str, default: int | None = None) -> int:
    if name not in params and default is not None:
        return default
    try:
        return int(params[name])
    except ValueError:
        raise _BadRequest(f"{name}={params[name]!r} is not an integer", name) from None


def _instant(params: dict[str, str], name: str) -> datetime:
    try:
        return datetime.fromtimestamp(_integer(params, name) / 1000, tz=EASTERN)
    except (OverflowError, OSError, ValueError):
        raise _BadRequest(f"{name}={params[name]!r} is out of range", name) from None


def _day_param(params: dict[str, str], name: str, default: date) -> date:
    if name not in params:
        return default
    try:
        return date.fromisoformat(params[name])
    except ValueError:
        raise _BadRequest(f"{name}={params[name]!r} is not a date (yyyy-MM-dd)", name) from None


def check_simulated(sessions: Sequence[SessionTimes], calendar: TradingCalendar,
                    hint: str) -> None:
    """ConfigError unless the simulated market can answer every one of `sessions`.

    Its daily walk starts at `EPOCH`: a session before that would be a day of HTTP 400s.
    """
    if sessions and sessions[0].date < EPOCH:
        raise ConfigError(
            f"the simulated market runs from {EPOCH} to {calendar.last_date} (the exchange"
            f" calendar's last session); the sessions asked for begin {sessions[0].date}: {hint}"
        )


class SimMarket(ManagedTransport):
    """A seeded synthetic index, proxy ETF and option chain served as Schwab's JSON.

    Answers of the same minute may share objects (the chain is built once per minute), so a
    caller treats a body as read-only, as it would a parsed HTTP answer it did not copy.
    """

    def __init__(self, preset: Preset, calendar: TradingCalendar, seed: int) -> None:
        """Simulate `preset`'s variant on `calendar`'s sessions from random seed `seed`."""
        if seed < 0:
            raise ConfigError(f"sim seed must be a non-negative integer (got {seed})")
        self._preset = preset
        self._calendar = calendar
        self._seed = seed
        self._vkey = variant_key(preset.variant)
        self._walk = DailyWalk(calendar, seed, self._vkey, preset.sim)
        self._root = ROOTS.get(preset.symbol, preset.symbol.lstrip("$") + "W")
        self._sessions: dict[date, SessionTimes | None] = {}
        self._previous: dict[date, SessionTimes] = {}
        self._days: OrderedDict[date, tuple[DayPath, list[dict[str, Any]]]] = OrderedDict()
        self._chain: tuple[tuple[object, ...], dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        """Answer `endpoint?params` as the simulated market stands at clock time `at`.

        Safe to call from several threads (the feed may ask the three requests at once): the
        caches are shared, so answers are made one at a time.
        """
        with self._lock:
            return self._answer(endpoint, params, at)

    def _answer(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        handlers = {"quotes": self._quotes, "pricehistory": self._history, "chains": self._chains}
        try:
            if at.tzinfo is None:
                raise _BadRequest("the clock time must be timezone-aware")
            handler = handlers.get(endpoint)
            if handler is None:
                raise _BadRequest(f"unknown endpoint {endpoint!r}")
            body = handler(params, at.astimezone(EASTERN))
        except _BadRequest as exc:
            return self._error(endpoint, params, at, exc.detail, exc.parameter)
        except CalendarError as exc:
            return self._error(endpoint, params, at, str(exc), None)
        return Exchange(at=at, endpoint=endpoint, params=dict(params), status=200, body=body)

    def minute_values(self, at: datetime, from_date: date, to_date: date,
                      strike_count: int) -> SimMinute | None:
        """What the quotes, history and chain answers of session minute `at` carry that a parser
        reads, taken from the same numbers without building the answers (for bulk research).

        `from_date`, `to_date` and `strike_count` are the chain request's. None when `at` is not
        inside a session or the request is one the chains handler would refuse: then only the
        answers say what happens.
        """
        with self._lock:
            at = at.astimezone(EASTERN)
            moment = self._moment(at)
            span = (to_date - from_date).days
            if not moment.live or not 0 <= span <= MAX_CHAIN_DAYS or not 1 <= strike_count <= 500:
                return None
            path, m = moment.path, moment.minute
            expirations = self._expirations(moment, from_date, to_date)
            closes = path.prices[1:m + 1].copy()
            closes.flags.writeable = False
            return SimMinute(
                spot=float(path.prices[m]),
                bid_size=int(path.bid_size[m]),
                ask_size=int(path.ask_size[m]),
                closes=closes,
                previous_close=path.closes.previous,
                chain=chain_sides(path, m, moment.now, expirations, "ALL", strike_count,
                                  self._preset.sim.strike_interval),
            )

    def minute_closes(self, day: date) -> FloatArray:
        """The 1-minute bar closes of the index on session `day`, from the open to the close."""
        with self._lock:
            session = self._session(day)
            if session is None:
                raise CalendarError(f"{day} is not a trading session")
            closes = self._day(session)[0].prices[1:].copy()
        closes.flags.writeable = False
        return closes

    def _error(self, endpoint: str, params: dict[str, str], at: datetime, detail: str,
               parameter: str | None) -> Exchange:
        error: dict[str, Any] = {
            "id": str(uuid.uuid5(_ERROR_NS, f"{endpoint}|{detail}")),
            "status": "400",
            "title": "Bad Request",
            "detail": detail,
        }
        if parameter is not None:
            error["source"] = {"parameter": parameter}
        return Exchange(at=at, endpoint=endpoint, params=dict(params),  # type: ignore[arg-type]
                        status=400, body={"errors": [error]}, error=f"HTTP 400: {detail}")

    def _session(self, day: date) -> SessionTimes | None:
        if day not in self._sessions:
            is_session = self._calendar.is_session(day)
            self._sessions[day] = self._calendar.session(day) if is_session else None
        return self._sessions[day]

    def _previous_session(self, day: date) -> SessionTimes:
        if day not in self._previous:
            self._previous[day] = self._calendar.previous_session(day)
        return self._previous[day]

    def _day(self, session: SessionTimes) -> tuple[DayPath, list[dict[str, Any]]]:
        cached = self._days.get(session.date)
        if cached is not None:
            self._days.move_to_end(session.date)
            return cached
        ahead = self._calendar.sessions_from(
            session.date + timedelta(days=1), self._preset.chain.expirations_ahead
        ) if self._preset.chain.expirations_ahead else []
        path = build_day(self._seed, self._vkey, session, self._walk.closes(session.date),
                         [session.close, *(s.close for s in ahead)], self._preset.sim,
                         self._preset.chain.strike_count)
        entry = (path, self._candles(path))
        self._days[session.date] = entry
        if len(self._days) > DAY_CACHE:
            self._days.popitem(last=False)
        return entry

    @staticmethod
    def _candles(path: DayPath) -> list[dict[str, Any]]:
        opens = _ms(path.session.open)
        rows = zip(path.prices[:-1].tolist(), path.high.tolist(), path.low.tolist(),
                   path.prices[1:].tolist(), path.volume.tolist(), strict=True)
        return [
            {"open": o, "high": h, "low": lo, "close": c, "volume": v,
             "datetime": opens + 60_000 * m}
            for m, (o, h, lo, c, v) in enumerate(rows)
        ]

    def _moment(self, at: datetime) -> _Moment:
        floored = at.replace(second=0, microsecond=0)
        session = self._session(at.date())
        if session is not None and session.open <= at < session.close:
            minute = int((at - session.open).total_seconds() // 60)
            return _Moment(self._day(session)[0], minute, True, session.open
                           + timedelta(minutes=minute))
        if session is None or at < session.open:
            session = self._previous_session(at.date())
        path = self._day(session)[0]
        return _Moment(path, path.minutes, False, floored)

    def _quotes(self, params: dict[str, str], at: datetime) -> dict[str, Any]:
        _expect(params, {"symbols"}, {"fields", "indicative"})
        fields = params.get("fields", "quote,reference").split(",")
        for name in fields:
            if name not in ("quote", "reference"):
                raise _BadRequest(f"fields value {name!r} is not simulated", "fields")
        symbols = [s.strip() for s in params["symbols"].split(",") if s.strip()]
        for symbol in symbols:
            if symbol not in (self._preset.symbol, self._preset.proxy):
                raise _BadRequest(f"symbol {symbol!r} is not simulated", "symbols")
        moment = self._moment(at)
        body: dict[str, Any] = {}
        for symbol in symbols:
            index = symbol == self._preset.symbol
            entry = self._index_quote(moment) if index else self._proxy_quote(moment)
            if "quote" not in fields:
                del entry["quote"]
            if "reference" not in fields:
                del entry["reference"]
            body[symbol] = entry
        return body

    def _index_quote(self, moment: _Moment) -> dict[str, Any]:
        path, m = moment.path, moment.minute
        last = float(path.prices[m])
        previous = path.closes.previous
        high = max(float(path.high[:m].max()), last) if m else last
        low = min(float(path.low[:m].min()), last) if m else last
        stamp = _ms(moment.now if moment.live else path.session.close)
        symbol = self._preset.symbol
        return {
            "assetMainType": "INDEX", "symbol": symbol, "realtime": True,
            "quote": {
                "lastPrice": last, "openPrice": float(path.prices[0]), "highPrice": high,
                "lowPrice": low, "closePrice": previous, "netChange": round(last - previous, 2),
                "netPercentChange": round(100.0 * (last - previous) / previous, 4),
                "totalVolume": int(path.volume[:m].sum()), "tradeTime": stamp,
                "securityStatus": "Normal",
            },
            "reference": {"description": f"{symbol} index (simulated)", "exchange": "$",
                          "exchangeName": "Index"},
        }

    def _proxy_quote(self, moment: _Moment) -> dict[str, Any]:
        path, m = moment.path, moment.minute
        ratio = self._preset.sim.proxy_ratio
        last = float(path.proxy[m])
        previous = round(path.closes.previous / ratio, 2)
        stamp = _ms(moment.now if moment.live else path.session.close)
        symbol = self._preset.proxy
        return {
            "assetMainType": "EQUITY", "assetSubType": "ETF", "quoteType": "NBBO",
            "realtime": True, "symbol": symbol,
            "quote": {
                "bidPrice": round(last - 0.01, 2), "askPrice": round(last + 0.01, 2),
                "bidSize": int(path.bid_size[m]), "askSize": int(path.ask_size[m]),
                "lastPrice": last, "lastSize": 100, "mark": last, "closePrice": previous,
                "netChange": round(last - previous, 2),
                "totalVolume": 40 * int(path.volume[:m].sum()),
                "quoteTime": stamp, "tradeTime": stamp, "securityStatus": "Normal",
            },
            "reference": {"description": f"{symbol} ETF (simulated)", "exchange": "P",
                          "exchangeName": "NYSE Arca"},
        }

    def _history(self, params: dict[str, str], at: datetime) -> dict[str, Any]:
        _expect(params, {"symbol", "startDate", "endDate"},
                {"periodType", "period", "frequencyType", "frequency",
                 "needExtendedHoursData", "needPreviousClose"})
        symbol = params["symbol"]
        if symbol != self._preset.symbol:
            raise _BadRequest(f"price history of {symbol!r} is not simulated", "symbol")
        _choice(params, "periodType", ("day",), "day")
        _choice(params, "period", ("1",), "1")
        _choice(params, "frequencyType", ("minute",), "minute")
        _choice(params, "frequency", ("1",), "1")
        _choice(params, "needExtendedHoursData", ("true", "false"), "false")
        previous_close = _choice(params, "needPreviousClose", ("true", "false"), "false") == "true"
        start, end = _instant(params, "startDate"), _instant(params, "endDate")
        if start > end:
            raise _BadRequest("startDate is after endDate", "startDate")
        end = min(end, at)
        session = self._session(end.date())
        candles: list[dict[str, Any]] = []
        if session is None:
            previous = self._previous_session(end.date())
            close_of_previous = self._walk.closes(previous.date).close
        else:
            path, full = self._day(session)
            close_of_previous = path.closes.previous
            previous = self._previous_session(session.date)
            candles = self._bars(path, full, start, end)
        body: dict[str, Any] = {"symbol": symbol, "empty": not candles, "candles": candles}
        if previous_close:
            midnight = datetime.combine(previous.date, datetime.min.time(), tzinfo=CENTRAL)
            body["previousClose"] = close_of_previous
            body["previousCloseDate"] = _ms(midnight)
        return body

    @staticmethod
    def _bars(path: DayPath, full: list[dict[str, Any]], start: datetime,
              end: datetime) -> list[dict[str, Any]]:
        """Bars that opened in [start, end]; the bar of `end`'s minute is still in progress."""
        opened = path.session.open
        first = max(0, math.ceil((start - opened).total_seconds() / 60))
        upto = (end - opened).total_seconds() // 60
        if upto < 0:
            return []
        current = int(upto)
        candles = full[first:min(current, path.minutes)]
        if first <= current < path.minutes:
            price = float(path.prices[current])
            candles.append({"open": price, "high": price, "low": price, "close": price,
                            "volume": int(path.volume[current]) // 10,
                            "datetime": _ms(opened) + 60_000 * current})
        return candles

    def _chains(self, params: dict[str, str], at: datetime) -> dict[str, Any]:
        _expect(params, {"symbol"}, {"contractType", "strikeCount", "includeUnderlyingQuote",
                                     "fromDate", "toDate", "strategy"})
        symbol = params["symbol"]
        if symbol != self._preset.symbol:
            raise _BadRequest(f"option chain of {symbol!r} is not simulated", "symbol")
        kind = _choice(params, "contractType", ("ALL", "CALL", "PUT"), "ALL")
        _choice(params, "strategy", ("SINGLE",), "SINGLE")
        underlying = _choice(params, "includeUnderlyingQuote", ("true", "false"), "false")
        count = _integer(params, "strikeCount", self._preset.chain.strike_count)
        if not 1 <= count <= 500:
            raise _BadRequest(f"strikeCount={count} is outside 1..500", "strikeCount")
        moment = self._moment(at)
        first = _day_param(params, "fromDate", moment.now.date())
        last = _day_param(params, "toDate", first)
        if not 0 <= (last - first).days <= MAX_CHAIN_DAYS:
            raise _BadRequest("toDate must be on or after fromDate, within a year", "toDate")
        key = (moment.path.session.date, moment.minute, moment.now, kind, underlying, count,
               first, last)
        if self._chain is None or self._chain[0] != key:
            body = chain_body(
                self._preset.symbol, self._root, moment.path, moment.minute, moment.now,
                self._expirations(moment, first, last), kind, count,
                self._preset.sim.strike_interval,
            )
            if underlying == "true":
                body["underlying"] = self._underlying(moment)
            self._chain = (key, body)
        return self._chain[1]

    def _expirations(self, moment: _Moment, first: date,
                     last: date) -> list[tuple[int, SessionTimes]]:
        """Sessions in [first, last] not yet past, each with its distance in sessions from the
        path's day (0 for the path's own session), which sets its open interest."""
        earliest = max(first, moment.now.date())
        found: list[tuple[int, SessionTimes]] = []
        ahead, day = 0, moment.path.session.date
        while day <= last:
            session = self._session(day)
            if session is not None:
                if day >= earliest:
                    found.append((ahead, session))
                ahead += 1
            day += timedelta(days=1)
        return found

    def _underlying(self, moment: _Moment) -> dict[str, Any]:
        quote = self._index_quote(moment)["quote"]
        return {
            "symbol": self._preset.symbol, "last": quote["lastPrice"], "mark": quote["lastPrice"],
            "close": quote["closePrice"], "change": quote["netChange"],
            "percentChange": quote["netPercentChange"], "openPrice": quote["openPrice"],
            "highPrice": quote["highPrice"], "lowPrice": quote["lowPrice"],
            "totalVolume": quote["totalVolume"], "quoteTime": quote["tradeTime"],
            "tradeTime": quote["tradeTime"], "delayed": False, "exchangeName": "IND",
        }
