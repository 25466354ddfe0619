"""The engine `State` as versioned JSON text, and back, exactly.

The store keeps the state as text in its own row so that a restarted daemon continues with the
same numbers bit for bit. JSON writes floats with `repr`, the shortest text that reads back to
the same double, so balances and price buffers survive exactly (NaN and infinities included).
Datetimes are ISO 8601 with their UTC offset, followed by the IANA zone name in brackets when
they carry one (`2026-11-17T10:31:00-05:00[America/New_York]`), so they come back in the same
zone, not merely at the same instant. Enums are stored by value. A `version` field lets a later
release recognise, and refuse to misread, a state written by another format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from gexbot.core.types import Direction, FloatArray, GexRegime, Position, State, frozen_array

FORMAT = "gexbot-state"
VERSION = 1

_STATE_FIELDS = frozenset(
    {
        "format",
        "version",
        "balance",
        "position",
        "cooldown_until",
        "session_date",
        "prices",
        "ofi_samples",
        "first_spot",
        "previous_close",
        "day_start_balance",
        "day_trades",
        "last_minute",
    }
)
_POSITION_FIELDS = frozenset(
    {
        "direction",
        "bucket",
        "entry_time",
        "entry_price",
        "size_usd",
        "target",
        "stop",
        "entry_regime",
        "session_date",
    }
)


class StateFormatError(ValueError):
    """Saved state text that this version cannot read back faithfully."""


def state_to_json(state: State) -> str:
    """Encode `state` as one line of JSON text that `state_from_json` reads back exactly."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "balance": state.balance,
        "position": _position_to_dict(state.position) if state.position is not None else None,
        "cooldown_until": _datetime_text(state.cooldown_until),
        "session_date": _date_text(state.session_date),
        "prices": _array_list(state.prices),
        "ofi_samples": _array_list(state.ofi_samples),
        "first_spot": state.first_spot,
        "previous_close": state.previous_close,
        "day_start_balance": state.day_start_balance,
        "day_trades": state.day_trades,
        "last_minute": _datetime_text(state.last_minute),
    }
    return json.dumps(document, separators=(",", ":"))


def state_from_json(text: str) -> State:
    """Decode text written by `state_to_json`; StateFormatError says what is wrong with it."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, TypeError) as problem:
        raise StateFormatError(f"not JSON: {problem}") from None
    except RecursionError:
        raise StateFormatError("JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise StateFormatError("not a JSON object")
    if document.get("format") != FORMAT:
        raise StateFormatError(f"format {document.get('format')!r}, expected {FORMAT!r}")
    if document.get("version") != VERSION:
        raise StateFormatError(
            f"version {document.get('version')!r}, this gexbot reads version {VERSION}"
        )
    _check_keys(document, _STATE_FIELDS, "state")
    position = document["position"]
    return State(
        balance=_float(document, "balance"),
        position=_position_from_dict(position) if position is not None else None,
        cooldown_until=_datetime(document, "cooldown_until"),
        session_date=_date(document, "session_date"),
        prices=_array(document, "prices"),
        ofi_samples=_array(document, "ofi_samples"),
        first_spot=_optional_float(document, "first_spot"),
        previous_close=_optional_float(document, "previous_close"),
        day_start_balance=_float(document, "day_start_balance"),
        day_trades=_int(document, "day_trades"),
        last_minute=_datetime(document, "last_minute"),
    )


def _position_to_dict(position: Position) -> dict[str, Any]:
    return {
        "direction": position.direction.value,
        "bucket": position.bucket,
        "entry_time": _datetime_text(position.entry_time),
        "entry_price": position.entry_price,
        "size_usd": position.size_usd,
        "target": position.target,
        "stop": position.stop,
        "entry_regime": position.entry_regime.value,
        "session_date": _date_text(position.session_date),
    }


def _position_from_dict(document: object) -> Position:
    if not isinstance(document, dict):
        raise StateFormatError("position is not a JSON object")
    _check_keys(document, _POSITION_FIELDS, "position")
    entry_time = _datetime(document, "entry_time")
    session_date = _date(document, "session_date")
    if entry_time is None or session_date is None:
        raise StateFormatError("position without entry_time or session_date")
    bucket = document["bucket"]
    if not isinstance(bucket, str):
        raise StateFormatError("position.bucket is not a string")
    try:
        direction = Direction(document["direction"])
        regime = GexRegime(document["entry_regime"])
    except ValueError as problem:
        raise StateFormatError(f"position: {problem}") from None
    return Position(
        direction=direction,
        bucket=bucket,
        entry_time=entry_time,
        entry_price=_float(document, "entry_price"),
        size_usd=_float(document, "size_usd"),
        target=_float(document, "target"),
        stop=_float(document, "stop"),
        entry_regime=regime,
        session_date=session_date,
    )


def _check_keys(document: Mapping[str, Any], expected: frozenset[str], what: str) -> None:
    missing = sorted(expected - document.keys())
    unknown = sorted(document.keys() - expected)
    if missing or unknown:
        raise StateFormatError(f"{what}: missing fields {missing}, unknown fields {unknown}")


def _datetime_text(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"refusing to save a naive datetime {moment!r}")
    text = moment.isoformat()
    if isinstance(moment.tzinfo, ZoneInfo):
        text += f"[{moment.tzinfo.key}]"
    return text


def _date_text(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _array_list(values: FloatArray) -> list[float]:
    if values.ndim != 1:
        raise ValueError(f"expected a 1-D buffer, got shape {values.shape}")
    return [float(value) for value in values.tolist()]


def _float(document: Mapping[str, Any], key: str) -> float:
    value = document[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StateFormatError(f"{key} is not a number: {value!r}")
    return float(value)


def _optional_float(document: Mapping[str, Any], key: str) -> float | None:
    return None if document[key] is None else _float(document, key)


def _int(document: Mapping[str, Any], key: str) -> int:
    value = document[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateFormatError(f"{key} is not an integer: {value!r}")
    return value


def _date(document: Mapping[str, Any], key: str) -> date | None:
    value = document[key]
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise StateFormatError(f"{key} is not an ISO date: {value!r}") from None


def _datetime(document: Mapping[str, Any], key: str) -> datetime | None:
    value = document[key]
    if value is None:
        return None
    if not isinstance(value, str):
        raise StateFormatError(f"{key} is not a datetime text: {value!r}")
    text, _, zone = value.partition("[")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise StateFormatError(f"{key} is not an ISO datetime: {value!r}") from None
    if moment.tzinfo is None:
        raise StateFormatError(f"{key} has no UTC offset: {value!r}")
    if not zone:
        return moment
    try:
        tz = ZoneInfo(zone.removesuffix("]"))
    except (ZoneInfoNotFoundError, ValueError):
        raise StateFormatError(f"{key} names an unknown time zone: {value!r}") from None
    return moment.astimezone(tz)


def _array(document: Mapping[str, Any], key: str) -> FloatArray:
    values = document[key]
    if not isinstance(values, list) or not all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in values
    ):
        raise StateFormatError(f"{key} is not a list of numbers")
    array: FloatArray = frozen_array([float(value) for value in values], dtype=np.float64)
    return array

