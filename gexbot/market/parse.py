"""Schwab-shaped exchanges -> one typed, validated `Snapshot`, or `DataError`.

Every source (live Schwab, the simulated market, a replayed recording) answers in Schwab's JSON,
so this module is the one place where bad or missing fields are judged. The rule is: a field the
strategy cannot do without (the index price, the minute closes, a chain with something usable)
makes the whole minute unusable and raises `DataError` with a one-line message naming the
endpoint; a value the strategy can leave out (a sentinel greek, a missing proxy size) becomes NaN
or None here and is left out downstream. Numbers are never invented: only JSON numbers count as
numbers, so strings such as "NaN" or "12.5" are treated as missing.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, cast

import numpy as np

from gexbot.core.types import BoolArray, Chain, FloatArray, SessionTimes, Snapshot, frozen_array
from gexbot.errors import DataError, TransientError
from gexbot.market.transport import Exchange
from gexbot.settings import DataSettings

SENTINEL = -999.0
"""Schwab's marker for an unavailable greek (also seen as the integer -999)."""

_NAN = math.nan
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_DETAIL_CHARS = 120
_CALLS, _PUTS = "callExpDateMap", "putExpDateMap"


def _number(raw: object) -> float | None:
    """A JSON number as a float; None for anything else (null, strings, booleans, huge ints)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    try:
        return float(raw)
    except OverflowError:
        return None


def _positive(raw: object) -> float | None:
    """A finite JSON number above zero, else None."""
    value = _number(raw)
    return value if value is not None and math.isfinite(value) and value > 0 else None


def _greek(raw: object) -> float:
    """A chain value as a float; NaN when missing, non-numeric, non-finite or the sentinel."""
    value = _number(raw)
    if value is None or value == SENTINEL or not math.isfinite(value):
        return _NAN
    return value


def _show(raw: object) -> str:
    """A short printable form of a bad value for an error message."""
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_line(text: str) -> str:
    """`text` on one line, cut to a length that fits a log line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _DETAIL_CHARS else flat[: _DETAIL_CHARS - 3] + "..."


def _epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of a timezone-aware datetime, exactly (no float rounding)."""
    return (moment - _EPOCH) // _MS


def _body_detail(body: Any) -> str | None:
    """What an error body says, from Schwab's `errors[]` or a gateway `fault`; never headers."""
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        parts = [errors[0].get(key) for key in ("title", "detail")]
        words = [part for part in parts if isinstance(part, str) and part]
        return ": ".join(words) or None
    fault = body.get("fault")
    if isinstance(fault, dict):
        detail = fault.get("detail")
        code = detail.get("errorcode") if isinstance(detail, dict) else None
        words = [part for part in (fault.get("faultstring"), code) if isinstance(part, str)]
        return ": ".join(words) or None
    return None


def check_exchange(exchange: Exchange) -> Any:
    """Return the decoded body of a successful exchange; raise what a failed one means.

    No answer (status None) is a `TransientError` of kind "rate_limited" when the transport held
    the request back for Schwab's rate limit (its error starts with "rate limited"), "timeout"
    when the error mentions a timeout, else "connection"; 429 is "rate_limited" and 5xx
    "server_error", both transient. Any other status is a `DataError` "http_<status>", and a 200
    without a JSON body is "bad_json". Messages quote the body's error title, the status phrase
    or the transport's words, never headers.
    """
    if exchange.ok:
        return exchange.body
    name = exchange.endpoint
    status = exchange.status
    said = _one_line(exchange.error) if exchange.error else None
    if status is None:
        if said is not None and said.lower().startswith("rate limited"):
            raise TransientError(f"{name}: {said} (not sent)", kind="rate_limited")
        timed_out = said is not None and ("timeout" in said.lower() or "timed out" in said.lower())
        kind = "timeout" if timed_out else "connection"
        raise TransientError(f"{name}: {said or kind} (no answer)", kind=kind)
    if status == 200:
        raise DataError(f"{name}: HTTP 200 without a JSON body ({said or 'empty'})", "bad_json")
    detail = _body_detail(exchange.body)
    if detail is None:
        try:
            detail = HTTPStatus(status).phrase
        except ValueError:
            detail = said or "unknown status"
    message = f"{name}: HTTP {status} ({_one_line(detail)})"
    if status == 429:
        raise TransientError(message, kind="rate_limited")
    if 500 <= status <= 599:
        raise TransientError(message, kind="server_error")
    raise DataError(message, kind=f"http_{status}")


def _object(exchange: Exchange, kind: str) -> dict[str, Any]:
    """The exchange's body, which must be a JSON object."""
    body = check_exchange(exchange)
    if not isinstance(body, dict):
        raise DataError(
            f"{exchange.endpoint}: body is a {type(body).__name__}, not an object", kind=kind
        )
    return body


def parse_quotes(exchange: Exchange, symbol: str, proxy: str) -> tuple[float, float | None]:
    """Read the index spot and the proxy ETF's order-flow sample from a quotes answer.

    Returns (spot, ofi_sample): spot is the index `lastPrice`; ofi_sample is the proxy's
    bidSize / askSize, None when the proxy is absent or either size is missing, non-numeric or
    not positive (the caller logs that; it is not a reason to skip the minute).
    """
    body = _object(exchange, "quote_shape")
    entry = body.get(symbol)
    quote = entry.get("quote") if isinstance(entry, dict) else None
    if not isinstance(quote, dict):
        errors = body.get("errors")
        invalid = errors.get("invalidSymbols") if isinstance(errors, dict) else None
        if isinstance(entry, dict):
            why = "has no quote"
        elif isinstance(invalid, list) and symbol in invalid:
            why = "missing (listed in invalidSymbols)"
        else:
            why = "missing"
        raise DataError(f"quotes: {symbol} {why}", kind="quote_missing")
    if "lastPrice" not in quote:
        raise DataError(f"quotes: {symbol} lastPrice missing", kind="quote_price")
    raw = quote["lastPrice"]
    spot = _positive(raw)
    if spot is None:
        raise DataError(
            f"quotes: {symbol} lastPrice {_show(raw)} is not a positive number", kind="quote_price"
        )
    proxy_entry = body.get(proxy)
    proxy_quote = proxy_entry.get("quote") if isinstance(proxy_entry, dict) else None
    if not isinstance(proxy_quote, dict):
        return spot, None
    bid = _positive(proxy_quote.get("bidSize"))
    ask = _positive(proxy_quote.get("askSize"))
    if bid is None or ask is None:
        return spot, None
    return spot, bid / ask


def parse_history(
    exchange: Exchange,
    at: datetime,
    session_open: datetime,
    bars_expected_after: timedelta | None = None,
) -> tuple[FloatArray, float | None]:
    """Read today's completed 1-minute closes and the previous close from a pricehistory answer.

    Keeps bars whose `datetime` (the bar's opening minute) is in [session_open, at): Schwab
    ignores intraday bounds and may include the bar still in progress at `at`. Bars are sorted
    by time; of two bars with the same time the later one in the answer wins (a revision).

    Returns (closes, previous_close): closes as a read-only float array, oldest first (empty
    early in the session, which is not an error); previous_close None when absent or invalid.
    From `bars_expected_after` past the open, no bar at all (`empty: true` mid-session) is bad
    data: features would silently go unknown.
    """
    body = _object(exchange, "history_shape")
    candles = body.get("candles", [] if body.get("empty") is True else None)
    if not isinstance(candles, list):
        raise DataError(
            f"pricehistory: candles is {_show(candles)}, not a list", kind="history_shape"
        )
    start, end = _epoch_ms(session_open), _epoch_ms(at)
    closes: dict[int, object] = {}
    for index, candle in enumerate(candles):
        if not isinstance(candle, dict) or "close" not in candle:
            raise DataError(f"pricehistory: candle {index} has no close", kind="history_shape")
        stamp = _number(candle.get("datetime"))
        if stamp is None or not math.isfinite(stamp):
            raise DataError(
                f"pricehistory: candle {index} has no valid datetime", kind="history_shape"
            )
        if start <= stamp < end:
            closes[int(stamp)] = candle["close"]
    values: list[float] = []
    for stamp in sorted(closes):
        close = _positive(closes[stamp])
        if close is None:
            minute = datetime.fromtimestamp(stamp / 1000, tz=at.tzinfo).strftime("%H:%M")
            raise DataError(
                f"pricehistory: close {_show(closes[stamp])} of the {minute} bar"
                " is not a positive number",
                kind="history_close",
            )
        values.append(close)
    if not values and bars_expected_after is not None and at >= session_open + bars_expected_after:
        asked = at.astimezone(session_open.tzinfo)
        raise DataError(
            f"pricehistory: no 1-minute bar of today before {asked:%H:%M}"
            f" ({len(candles)} candles in the answer)",
            kind="history_empty",
        )
    array = cast(FloatArray, frozen_array(values))
    return array, _positive(body.get("previousClose"))


def _side(body: dict[str, Any], key: str, strikes: list[float], values: list[object]) -> int:
    """Append one side's strikes and raw (gamma, OI) pairs; return its contract count."""
    by_expiry = body.get(key)
    if by_expiry is None:
        return 0
    if not isinstance(by_expiry, dict):
        raise DataError(f"chains: {key} is {_show(by_expiry)}, not an object", "chain_shape")
    count = 0
    for expiry, by_strike in by_expiry.items():
        if not isinstance(by_strike, dict):
            raise DataError(f"chains: {key}[{expiry}] is not an object", "chain_shape")
        for strike_key, contracts in by_strike.items():
            try:
                strike = float(strike_key)
            except ValueError:
                strike = _NAN
            if not (math.isfinite(strike) and strike > 0) or not isinstance(contracts, list):
                raise DataError(
                    f"chains: {key}[{expiry}] has a bad strike entry {_show(strike_key)}",
                    "chain_shape",
                )
            for contract in contracts:
                if not isinstance(contract, dict):
                    raise DataError(
                        f"chains: {key}[{expiry}][{strike_key}] holds a non-object", "chain_shape"
                    )
                strikes.append(strike)
                values.append(contract.get("gamma"))
                values.append(contract.get("openInterest"))
            count += len(contracts)
    return count


def parse_chain(exchange: Exchange, min_usable_per_side: float = 0.0) -> Chain:
    """Flatten a chains answer into parallel per-contract arrays.

    Order: every call (expirations, then strikes, then contracts, as in the answer), then every
    put in the same order. Gamma and open interest that are missing, non-numeric, non-finite or
    the -999 sentinel become NaN; other values are kept as given. A chain whose status is not
    SUCCESS, that holds no contract, or in which no contract has both a finite gamma >= 0 and a
    finite open interest >= 0 is bad data (`DataError`), never a zero exposure. So is a chain
    in which no contract at all shows open interest: a near-the-money index chain always has
    some, so the field is broken, and a zero exposure read from it would flip the GEX regime.
    So, last, is a chain in which fewer than `min_usable_per_side` of the calls, or of the puts,
    are usable, or, with that share above 0, a side is missing: the other side's sum alone
    would set the GEX sign.
    """
    body = _object(exchange, "chain_shape")
    status = body.get("status")
    if status != "SUCCESS":
        raise DataError(f"chains: status {_show(status)}, expected 'SUCCESS'", "chain_status")
    strikes: list[float] = []
    raw: list[object] = []
    calls = _side(body, _CALLS, strikes, raw)
    puts = _side(body, _PUTS, strikes, raw)
    if calls + puts == 0:
        raise DataError("chains: no contracts (both expiration maps empty)", "chain_empty")
    pairs = np.fromiter(map(_greek, raw), dtype=np.float64, count=len(raw)).reshape(-1, 2)
    return judge_chain(calls, strikes, pairs[:, 0], pairs[:, 1], min_usable_per_side)


def judge_chain(
    calls: int,
    strikes: list[float] | FloatArray,
    gamma: FloatArray,
    open_interest: FloatArray,
    min_usable_per_side: float,
) -> Chain:
    """A `Chain` of parsed values (calls first, NaN where missing), or the `DataError` saying
    why it is unusable (see `parse_chain`). Shared with sources that read the same values
    without a JSON answer, so a chain is judged one way."""
    total = int(gamma.shape[0])
    puts = total - calls
    usable = (gamma >= 0) & (open_interest >= 0)
    if not np.any(usable):
        raise DataError(
            f"chains: none of {total} contracts has a usable gamma and open interest",
            "chain_unusable",
        )
    if not np.any(open_interest > 0):
        raise DataError(
            f"chains: none of {total} contracts shows any open interest",
            "chain_no_interest",
        )
    for name, side in (("calls", usable[:calls]), ("puts", usable[calls:])):
        good = int(np.count_nonzero(side))
        missing = side.shape[0] == 0 and min_usable_per_side > 0
        if missing or good < min_usable_per_side * side.shape[0]:
            raise DataError(
                f"chains: {good} of {side.shape[0]} {name} have a usable gamma and open"
                f" interest (at least {min_usable_per_side:.0%} needed)",
                "chain_one_sided",
            )
    return Chain(
        is_call=cast(BoolArray, frozen_array(np.repeat([True, False], [calls, puts]), np.bool_)),
        strike=cast(FloatArray, frozen_array(strikes)),
        gamma=cast(FloatArray, frozen_array(gamma)),
        open_interest=cast(FloatArray, frozen_array(open_interest)),
    )


def parse_snapshot(
    quotes: Exchange,
    history: Exchange,
    chain: Exchange,
    *,
    at: datetime,
    session: SessionTimes,
    symbol: str,
    proxy: str,
    limits: DataSettings,
) -> Snapshot:
    """Build the minute's `Snapshot` from its three exchanges; `DataError` when any is unusable.

    Beyond each answer's own checks, the index price must lie within the preset's distance of
    the previous close (or, without one, of today's last bar): a quote off by a factor of ten
    parses, and would close a position at a fantasy price.
    """
    spot, ofi_sample = parse_quotes(quotes, symbol, proxy)
    closes, previous_close = parse_history(
        history, at, session.open, timedelta(minutes=limits.bars_expected_after_minutes)
    )
    reference = previous_close if previous_close is not None else (
        float(closes[-1]) if closes.shape[0] else None
    )
    if reference is not None:
        move = abs(spot / reference - 1.0)
        if move > limits.max_move_from_previous_close:
            raise DataError(
                f"quotes: {symbol} lastPrice {spot:g} is {move:.0%} from {reference:g}"
                f" (more than {limits.max_move_from_previous_close:.0%}): a broken quote",
                kind="quote_price",
            )
    return Snapshot(
        at=at,
        session=session,
        spot=spot,
        ofi_sample=ofi_sample,
        chain=parse_chain(chain, limits.min_usable_per_side),
        closes=closes,
        previous_close=previous_close,
    )
