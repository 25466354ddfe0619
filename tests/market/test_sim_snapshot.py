"""Snapshots made from the simulated market's numbers equal the parser's, minute for minute."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import numpy as np
import pytest

from gexbot.core.session import TradingCalendar, session_minutes
from gexbot.core.types import SessionTimes, Snapshot
from gexbot.errors import DataError
from gexbot.market.feed import MarketFeed
from gexbot.market.sim import SimMarket
from gexbot.market.sim_snapshot import SimSnapshots
from gexbot.settings import Preset, load_variant


def _same(a: Snapshot, b: Snapshot) -> bool:
    """Every field, arrays bit for bit (NaN where NaN), including the chain's contract order."""
    arrays = [(a.closes, b.closes), (a.chain.is_call, b.chain.is_call),
              (a.chain.strike, b.chain.strike), (a.chain.gamma, b.chain.gamma),
              (a.chain.open_interest, b.chain.open_interest), (a.chain.strikes, b.chain.strikes)]
    return (
        a.at == b.at and a.session == b.session and a.spot == b.spot
        and a.ofi_sample == b.ofi_sample and a.previous_close == b.previous_close
        and all(x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
                for x, y in arrays)
    )


def _minutes(preset: Preset, start: date, days: int) -> Iterator[tuple[SessionTimes, datetime]]:
    calendar = TradingCalendar(preset.calendar, preset.strategy.flatten_minutes_before_close)
    for session in calendar.sessions_from(start, days):
        for minute in session_minutes(session):
            yield session, minute


@pytest.mark.parametrize(
    ("variant", "seed", "start", "days", "stride"),
    [
        ("es", 7, date(2026, 10, 1), 3, 1),     # every minute of three sessions
        ("nq", 2, date(2026, 11, 25), 2, 1),    # Thanksgiving's early close
        ("es", 11, date(2026, 12, 22), 3, 1),   # Christmas Eve's early close
        ("es", 5, date(2026, 1, 2), 60, 37),    # sampled through a quarter of other days
        ("nq", 9, date(2026, 4, 1), 60, 41),
    ],
)
def test_direct_snapshots_equal_the_parsers(variant: str, seed: int, start: date, days: int,
                                            stride: int) -> None:
    preset = load_variant(variant)
    calendar = TradingCalendar(preset.calendar, preset.strategy.flatten_minutes_before_close)
    market = SimMarket(preset, calendar, seed)
    feed = MarketFeed(market, preset, calendar)
    direct = SimSnapshots(SimMarket(preset, calendar, seed), feed, preset)
    compared = 0
    for index, (session, minute) in enumerate(_minutes(preset, start, days)):
        if index % stride:
            continue
        expected = feed.snapshot(session, minute, minute)
        assert _same(direct.snapshot(session, minute), expected), minute
        compared += 1
    assert compared >= 500


def test_minutes_in_doubt_go_through_the_parser() -> None:
    """A preset whose plausibility limits refuse every simulated minute skips as the parser does."""
    preset = load_variant("es")
    strict = preset.model_copy(update={"data": preset.data.model_copy(
        update={"max_move_from_previous_close": 1e-9})})
    calendar = TradingCalendar(preset.calendar, preset.strategy.flatten_minutes_before_close)
    feed = MarketFeed(SimMarket(strict, calendar, 1), strict, calendar)
    direct = SimSnapshots(SimMarket(strict, calendar, 1), feed, strict)
    session = calendar.sessions_from(date(2026, 10, 1), 1)[0]
    minute = session.open
    with pytest.raises(DataError) as parsed:
        feed.snapshot(session, minute, minute)
    with pytest.raises(DataError) as made:
        direct.snapshot(session, minute)
    assert (made.value.kind, str(made.value)) == (parsed.value.kind, str(parsed.value))


def test_json_chains_carry_the_values_the_direct_way_reads() -> None:
    """The chain answer's gamma and open interest are those `chain_sides` computes."""
    preset = load_variant("es")
    calendar = TradingCalendar(preset.calendar, preset.strategy.flatten_minutes_before_close)
    market = SimMarket(preset, calendar, 4)
    feed = MarketFeed(market, preset, calendar)
    session = calendar.sessions_from(date(2026, 10, 5), 1)[0]
    minute = session.open.replace(hour=11)
    quotes, _, chain = feed.exchanges(session, minute, minute)
    request = feed.requests(session, minute)[2][1]
    values = SimMarket(preset, calendar, 4).minute_values(
        minute, date.fromisoformat(request["fromDate"]), date.fromisoformat(request["toDate"]),
        int(request["strikeCount"]))
    assert values is not None
    sent_gamma = [c[0]["gamma"] for side in ("callExpDateMap", "putExpDateMap")
                  for by_strike in chain.body[side].values() for c in by_strike.values()]
    read_gamma = [g for call in (True, False) for side in values.chain if side.call is call
                  for g in side.gamma.tolist()]
    assert sent_gamma == read_gamma
    assert -999.0 in sent_gamma or len(sent_gamma) > 100
    assert quotes.body[preset.symbol]["quote"]["lastPrice"] == values.spot
