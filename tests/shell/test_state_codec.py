"""The saved state reads back exactly: every field, array bytes, time zones, None fields."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest

from gexbot.core.session import EASTERN
from gexbot.core.types import EMPTY, Direction, GexRegime, Position, State, frozen_array
from gexbot.shell.state_codec import StateFormatError, state_from_json, state_to_json

ENTRY = datetime(2026, 11, 17, 10, 31, tzinfo=EASTERN)


def open_state() -> State:
    """Mid-position, after a stop: every optional field set, awkward floats in the buffers."""
    position = Position(
        direction=Direction.SHORT,
        bucket="REVERSION",
        entry_time=ENTRY,
        entry_price=6812.75,
        size_usd=2345.678901234567,
        target=6801.123456789012,
        stop=6830.000000000001,
        entry_regime=GexRegime.POSITIVE,
        session_date=date(2026, 11, 17),
    )
    return State(
        balance=100_123.45678901234,
        position=position,
        cooldown_until=ENTRY + timedelta(minutes=5),
        session_date=date(2026, 11, 17),
        prices=frozen_array([0.1 + 0.2, 6800.25, 1e-300, -0.0, 5e-324, 1.7976931348623157e308]),
        ofi_samples=frozen_array([1 / 3, 2.0, float("nan"), float("inf")]),
        first_spot=6790.5,
        previous_close=6788.0,
        day_start_balance=100_000.0,
        day_trades=3,
        last_minute=ENTRY + timedelta(minutes=12),
    )


def fresh_state() -> State:
    return State(
        balance=100_000.0,
        position=None,
        cooldown_until=None,
        session_date=None,
        prices=EMPTY,
        ofi_samples=EMPTY,
        first_spot=None,
        previous_close=None,
        day_start_balance=100_000.0,
        day_trades=0,
        last_minute=None,
    )


def assert_same(got: State, want: State) -> None:
    for field in fields(State):
        a, b = getattr(got, field.name), getattr(want, field.name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype, field.name
            assert a.shape == b.shape, field.name
            assert a.tobytes() == b.tobytes(), field.name
            assert not a.flags.writeable, field.name
        else:
            assert a == b, field.name
            assert type(a) is type(b), field.name
        if isinstance(b, datetime):
            assert a.tzinfo is b.tzinfo, field.name
            assert a.utcoffset() == b.utcoffset(), field.name


@pytest.mark.parametrize("state", [open_state(), fresh_state()], ids=["open", "fresh"])
def test_round_trip_is_exact(state: State) -> None:
    back = state_from_json(state_to_json(state))
    assert_same(back, state)
    if state.position is not None:
        assert back.position == state.position
        assert back.position.entry_time.tzinfo is EASTERN


def test_text_is_versioned_json_with_plain_values() -> None:
    document = json.loads(state_to_json(open_state()))
    assert (document["format"], document["version"]) == ("gexbot-state", 1)
    assert document["position"]["direction"] == "SHORT"
    assert document["position"]["entry_regime"] == "POSITIVE"
    assert document["cooldown_until"] == "2026-11-17T10:36:00-05:00[America/New_York]"
    assert document["session_date"] == "2026-11-17"
    assert document["prices"][0] == 0.30000000000000004


def test_ambiguous_and_fixed_offset_times_keep_their_instant_and_zone() -> None:
    second_one_thirty = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=EASTERN)
    for moment in (second_one_thirty, datetime(2026, 3, 2, 15, 0, tzinfo=UTC),
                   datetime(2026, 3, 2, 15, 0, tzinfo=timezone(timedelta(hours=-5)))):
        state = replace(fresh_state(), last_minute=moment)
        back = state_from_json(state_to_json(state)).last_minute
        assert back == moment
        assert back is not None
        assert back.utcoffset() == moment.utcoffset()
    back = state_from_json(state_to_json(replace(fresh_state(), last_minute=second_one_thirty)))
    assert back.last_minute is not None
    assert back.last_minute.utcoffset() == timedelta(hours=-5)
    assert back.last_minute.fold == 1


def test_naive_datetime_is_refused_on_save() -> None:
    naive = datetime(2026, 11, 17, 10, 31)  # noqa: DTZ001 (the mistake under test)
    with pytest.raises(ValueError, match="naive"):
        state_to_json(replace(fresh_state(), last_minute=naive))


def _edited(edit: dict[str, object]) -> str:
    document = json.loads(state_to_json(open_state()))
    for path, value in edit.items():
        target = document
        *parents, leaf = path.split(".")
        for parent in parents:
            target = target[parent]
        if value is KeyError:
            del target[leaf]
        else:
            target[leaf] = value
    return json.dumps(document)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (_edited({"version": 2}), "version 2"),
        (_edited({"format": "other"}), "format"),
        (_edited({"balance": KeyError}), "missing fields \\['balance'\\]"),
        (_edited({"extra": 1}), "unknown fields \\['extra'\\]"),
        (_edited({"balance": "100"}), "balance is not a number"),
        (_edited({"day_trades": 1.5}), "day_trades is not an integer"),
        (_edited({"prices": [1.0, "x"]}), "prices is not a list of numbers"),
        (_edited({"position.direction": "UP"}), "position"),
        (_edited({"position.entry_time": None}), "entry_time"),
        (_edited({"last_minute": "2026-11-17T10:31:00"}), "no UTC offset"),
        (_edited({"last_minute": "2026-11-17T10:31:00-05:00[Mars/Base]"}), "unknown time zone"),
        (_edited({"session_date": "17/11/2026"}), "not an ISO date"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (_edited({"prices": [[[[1.0]]]]}), "prices is not a list of numbers"),
        (_edited({"position": [1, 2]}), "position"),
        (_edited({"position.size_usd": {"a": 1}}), "size_usd"),
    ],
)
def test_unreadable_text_says_why(text: str, message: str) -> None:
    with pytest.raises(StateFormatError, match=message):
        state_from_json(text)
