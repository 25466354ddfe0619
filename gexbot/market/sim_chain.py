"""The simulated option chain of one minute, in the shape of Schwab's /chains answer.

Prices and greeks are Black-Scholes at the minute's spot with the day's smile; open interest is
the day's fixed profile. A few realistic warts are kept on purpose, at low rates, so the parser
meets them in every long run: greeks of about one contract in 300 come back as Schwab's -999.0
"unavailable" sentinel, and some far strikes carry no open interest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from gexbot.core.types import BoolArray, FloatArray, SessionTimes
from gexbot.market.sim_path import (
    RATE,
    DayPath,
    IntArray,
    hashed_uniform,
    smile,
    strike_prices,
    strike_window,
    years_to,
)

SENTINEL = -999.0
SENTINEL_RATE = 1 / 300
"""Share of contracts whose greeks come back as the sentinel."""
_GREEKS = ("volatility", "delta", "gamma", "theta", "vega", "rho")

_erf = np.frompyfunc(math.erf, 1, 1)


def _cdf(x: FloatArray) -> FloatArray:
    return 0.5 * (1.0 + np.asarray(_erf(x / math.sqrt(2.0)), dtype=np.float64))


def _d1(spot: float, strikes: FloatArray, years: float,
        iv: FloatArray) -> tuple[float, FloatArray, FloatArray]:
    """(√T, σ√T, d1) of Black-Scholes, shared by every greek so each is computed one way."""
    root_t = math.sqrt(years)
    root = iv * root_t
    d1 = (np.log(spot / strikes) + (RATE + 0.5 * iv * iv) * years) / root
    return root_t, root, d1


def _pdf(d1: FloatArray) -> FloatArray:
    return np.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)


def _gamma(pdf: FloatArray, spot: float, root: FloatArray) -> FloatArray:
    return pdf / (spot * root)


def bs_greeks(spot: float, strikes: FloatArray, years: float, iv: FloatArray,
              call: bool) -> dict[str, FloatArray]:
    """Price and greeks in Schwab's units: theta per day, vega per vol point, rho per 1%."""
    root_t, root, d1 = _d1(spot, strikes, years, iv)
    d2 = d1 - root
    pdf = _pdf(d1)
    disc = strikes * math.exp(-RATE * years)
    sign = 1.0 if call else -1.0
    n1, n2 = _cdf(sign * d1), _cdf(sign * d2)
    return {
        "price": sign * (spot * n1 - disc * n2),
        "delta": sign * n1,
        "gamma": _gamma(pdf, spot, root),
        "theta": (-spot * pdf * iv / (2.0 * root_t) - sign * RATE * disc * n2) / 365.0,
        "vega": spot * pdf * root_t / 100.0,
        "rho": sign * disc * years * n2 / 100.0,
    }


def bs_gamma_only(spot: float, strikes: FloatArray, years: float, iv: FloatArray) -> FloatArray:
    """`bs_greeks(...)["gamma"]`, the same operations, without the other greeks' cost."""
    _, root, d1 = _d1(spot, strikes, years, iv)
    return _gamma(_pdf(d1), spot, root)


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True, eq=False)
class ChainSide:
    """One side of one expiration as the chain answer carries it, in the answer's order.

    `keys` are the strike keys of the expiration's map; `gamma` and `open_interest` are the
    values sent (gamma rounded to 4 places, the sentinel where a contract's greeks are missing).
    """

    call: bool
    keys: list[str]
    gamma: FloatArray
    open_interest: IntArray


@dataclass(frozen=True, slots=True, eq=False)
class _Side:
    call: bool
    label: str
    expiry: SessionTimes
    years: float
    oi: FloatArray


def _sides(path: DayPath, now: datetime, expirations: list[tuple[int, SessionTimes]],
           kind: str, ks: IntArray, interval: float) -> Iterator[_Side]:
    """Each side of each expiration in the answer's order, with its open interest."""
    for ahead, expiry in expirations:
        label = f"{expiry.date.isoformat()}:{(expiry.date - now.date()).days}"
        years = years_to(expiry.close, now)
        for call in (True, False):
            if kind not in ("ALL", "CALL" if call else "PUT"):
                continue
            oi = path.open_interest.contracts(ks, interval, call, ahead)
            yield _Side(call, label, expiry, years, oi)


def _window(path: DayPath, minute: int, count: int,
            interval: float) -> tuple[float, IntArray, FloatArray, FloatArray]:
    """(spot, strike indices, strikes, implied vols) of the minute's chain."""
    spot = float(path.prices[minute])
    ks = strike_window(spot, interval, count)
    strikes = strike_prices(ks, interval)
    return spot, ks, strikes, smile(float(path.iv_atm[minute]), spot, strikes)


def strike_key(strike: float) -> str:
    """A strike's key in an expiration's map."""
    return f"{strike:.1f}"


def chain_body(symbol: str, root: str, path: DayPath, minute: int, now: datetime,
               expirations: list[tuple[int, SessionTimes]], kind: str, count: int,
               interval: float) -> dict[str, Any]:
    """The chain at minute `minute` of `path`, clock `now`, for `expirations`.

    Parameters
    ----------
    expirations : (sessions after the path's day, expiration session), oldest first; the
        distance picks the open-interest profile of that expiration.
    kind : "ALL", "CALL" or "PUT".
    count : strikes per expiration, count // 2 at or below spot and the rest above.
    """
    spot, ks, strikes, iv = _window(path, minute, count, interval)
    maps: dict[str, dict[str, Any]] = {"CALL": {}, "PUT": {}}
    contracts = 0
    for side in _sides(path, now, expirations, kind, ks, interval):
        maps["CALL" if side.call else "PUT"][side.label] = _contracts(
            root, path, minute, now, side.expiry, ks, strikes, iv, side.years, side.oi, side.call
        )
        contracts += len(ks)
    return {
        "symbol": symbol, "status": "SUCCESS" if contracts else "FAILED",
        "strategy": "SINGLE", "interval": 0.0, "isDelayed": False, "isIndex": True,
        "interestRate": RATE * 100.0, "underlyingPrice": spot, "volatility": 29.0,
        "daysToExpiration": 0.0, "numberOfContracts": contracts, "assetMainType": "INDEX",
        "isChainTruncated": False, "callExpDateMap": maps["CALL"], "putExpDateMap": maps["PUT"],
    }


def chain_sides(path: DayPath, minute: int, now: datetime,
                expirations: list[tuple[int, SessionTimes]], kind: str, count: int,
                interval: float) -> list[ChainSide]:
    """What `chain_body` sends that a parser reads (strike keys, gamma, open interest), per
    side and expiration in the answer's order, computed by the same functions, without
    building the answer."""
    spot, ks, strikes, iv = _window(path, minute, count, interval)
    keys = [strike_key(k) for k in strikes.tolist()]
    key = path.open_interest.key
    return [
        ChainSide(
            call=side.call,
            keys=keys,
            gamma=_gamma_sent(spot, strikes, side.years, iv,
                              _warts(key, _ident(ks, side.expiry, side.call), minute)),
            open_interest=side.oi.astype(np.int64),
        )
        for side in _sides(path, now, expirations, kind, ks, interval)
    ]


def _ident(ks: IntArray, expiry: SessionTimes, call: bool) -> IntArray:
    """Each contract's number in the hashed draws (warts, sizes, volume)."""
    return ks * 8 + (expiry.date.toordinal() % 4) * 2 + int(call)


def _warts(key: int, ident: IntArray, minute: int) -> BoolArray:
    """Which contracts' greeks come back as the sentinel this minute."""
    return hashed_uniform(key, ident, 1000 + minute) < SENTINEL_RATE


def _gamma_sent(spot: float, strikes: FloatArray, years: float, iv: FloatArray,
                warts: BoolArray) -> FloatArray:
    """Gamma as the answer carries it: rounded to 4 places, the sentinel on a wart."""
    return np.where(warts, SENTINEL, np.round(bs_gamma_only(spot, strikes, years, iv), 4))


def _contracts(root: str, path: DayPath, minute: int, now: datetime, expiry: SessionTimes,
               ks: IntArray, strikes: FloatArray, iv: FloatArray, years: float,
               oi: FloatArray, call: bool) -> dict[str, list[dict[str, Any]]]:
    spot = float(path.prices[minute])
    greeks = bs_greeks(spot, strikes, years, iv, call)
    price = np.maximum(greeks["price"], 0.0)
    tick = np.where(price < 3.0, 0.05, 0.10)
    half = np.maximum(tick, 0.02 * price) / 2.0
    bid = np.maximum(np.floor((price - half) / tick + 1e-9) * tick, 0.0)
    ask = np.maximum(np.ceil((price + half) / tick - 1e-9) * tick, tick)
    intrinsic = np.maximum((spot - strikes) if call else (strikes - spot), 0.0)
    ident = _ident(ks, expiry, call)
    key = path.open_interest.key
    warts = _warts(key, ident, minute)
    gamma_sent = _gamma_sent(spot, strikes, years, iv, warts)
    bid_size = (1 + 99 * hashed_uniform(key, ident, 5000 + minute)).astype(np.int64)
    ask_size = (1 + 99 * hashed_uniform(key, ident, 9000 + minute)).astype(np.int64)
    volume = np.rint(oi * (minute + 1) / (path.minutes + 1) * hashed_uniform(key, ident, 7))
    stamp = _ms(now)
    iso = expiry.close.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")
    letter = "C" if call else "P"
    side = "CALL" if call else "PUT"
    dte = (expiry.date - now.date()).days
    last_day = _ms(expiry.close)
    code = f"{root:<6}{expiry.date:%y%m%d}{letter}"
    named = f"{root} {expiry.date:%m/%d/%Y} "
    mark = np.round((bid + ask) / 2.0, 2)
    extrinsic = np.round(mark - intrinsic, 2).tolist()
    columns = zip(
        strikes.tolist(), np.round(bid, 2).tolist(), np.round(ask, 2).tolist(),
        np.round(price, 2).tolist(), mark.tolist(), np.round(price, 3).tolist(),
        np.round(iv * 100.0, 3).tolist(), np.round(greeks["delta"], 3).tolist(),
        gamma_sent.tolist(), np.round(greeks["theta"], 3).tolist(),
        np.round(greeks["vega"], 3).tolist(), np.round(greeks["rho"], 3).tolist(),
        oi.astype(np.int64).tolist(), bid_size.tolist(), ask_size.tolist(),
        volume.astype(np.int64).tolist(), np.round(intrinsic, 2).tolist(), extrinsic,
        warts.tolist(), strict=True,
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for k, b, a, p, mk, theo, vol, de, ga, th, ve, rh, o, bs, az, tv, intr, ext, wart in columns:
        contract: dict[str, Any] = {
            "putCall": side,
            "symbol": f"{code}{round(k * 1000):08d}",
            "description": f"{named}{k:.2f} {letter}",
            "exchangeName": "OPR", "optionRoot": root, "bid": b, "ask": a, "last": p,
            "mark": mk, "bidSize": bs, "askSize": az, "bidAskSize": f"{bs}X{az}",
            "lastSize": 1, "totalVolume": tv, "openInterest": o, "volatility": vol,
            "delta": de, "gamma": ga, "theta": th, "vega": ve, "rho": rh, "timeValue": ext,
            "theoreticalOptionValue": theo, "theoreticalVolatility": 29.0, "strikePrice": k,
            "expirationDate": iso, "daysToExpiration": dte, "expirationType": "W",
            "lastTradingDay": last_day, "multiplier": 100.0, "settlementType": "P",
            "intrinsicValue": intr, "extrinsicValue": ext, "exerciseType": "E",
            "inTheMoney": intr > 0.0, "mini": False, "nonStandard": False, "pennyPilot": True,
            "quoteTimeInLong": stamp, "tradeTimeInLong": stamp - 1500,
        }
        if wart:
            contract.update(dict.fromkeys(_GREEKS, SENTINEL))
        out[strike_key(k)] = [contract]
    return out
