"""Snapshots of the simulated market made from its numbers instead of its JSON answers.

Building and parsing the chain's JSON is most of a simulated minute; a year of research tables
would spend minutes on it. `SimSnapshots` reads the values the three answers would carry
(`SimMarket.minute_values`, computed by the functions that build the answers) and turns them
into a `Snapshot` as `parse_snapshot` would: the same conversions, the chain judged by the
parser's own `judge_chain`. Whenever a value is one the parser might refuse or read otherwise
(a non-positive price, no bars when bars are due, a move beyond the plausible, a strike key
twice, an unusable chain), it does not decide: the minute goes through the feed and the parser
like any other, so skips and their reasons are the parser's. Tests hold the two ways equal on
every minute of many sessions.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np

from gexbot.core.types import FloatArray, SessionTimes, Snapshot
from gexbot.errors import DataError
from gexbot.market.feed import MarketFeed
from gexbot.market.parse import SENTINEL, judge_chain
from gexbot.market.sim import SimMarket, SimMinute
from gexbot.settings import Preset


class SimSnapshots:
    """`MarketFeed.snapshot` for a `SimMarket`, without the JSON when nothing is in doubt."""

    def __init__(self, market: SimMarket, feed: MarketFeed, preset: Preset) -> None:
        self._market = market
        self._feed = feed
        self._preset = preset

    def snapshot(self, session: SessionTimes, minute: datetime) -> Snapshot:
        """The minute's snapshot, or the parser's `DataError`, as the feed gives them."""
        chain_request = self._feed.requests(session, minute)[2][1]
        values = self._market.minute_values(
            minute,
            date.fromisoformat(chain_request["fromDate"]),
            date.fromisoformat(chain_request["toDate"]),
            int(chain_request["strikeCount"]),
        )
        built = None if values is None else self._from_values(values, session, minute)
        if built is None:
            return self._feed.snapshot(session, minute, minute)
        return built

    def _from_values(
        self, values: SimMinute, session: SessionTimes, minute: datetime
    ) -> Snapshot | None:
        """The snapshot the parser would make of these values; None when in any doubt."""
        limits = self._preset.data
        spot = values.spot
        closes = values.closes
        previous = values.previous_close
        if not (_positive(spot) and _positive(previous)):
            return None
        if closes.shape[0] and not (np.all(closes > 0.0) and np.all(np.isfinite(closes))):
            return None
        due = session.open + timedelta(minutes=limits.bars_expected_after_minutes)
        if not closes.shape[0] and minute >= due:
            return None
        if abs(spot / previous - 1.0) > limits.max_move_from_previous_close:
            return None
        bid, ask = float(values.bid_size), float(values.ask_size)
        sample = bid / ask if _positive(bid) and _positive(ask) else None
        sides = sorted(values.chain, key=lambda side: not side.call)  # calls first, stable
        read: dict[int, FloatArray | None] = {}  # sides of a minute share one list of keys
        for side in sides:
            if id(side.keys) not in read:
                read[id(side.keys)] = _strikes(side.keys)
        per_side = [read[id(side.keys)] for side in sides]
        if not per_side or any(strikes is None for strikes in per_side):
            return None
        strikes = np.concatenate([s for s in per_side if s is not None])
        gamma = np.concatenate([_parsed(side.gamma) for side in sides])
        interest = np.concatenate([_parsed(side.open_interest.astype(np.float64))
                                   for side in sides])
        calls = sum(len(side.keys) for side in sides if side.call)
        try:
            chain = judge_chain(calls, strikes, gamma, interest, limits.min_usable_per_side)
        except DataError:
            return None
        return Snapshot(at=minute, session=session, spot=spot, ofi_sample=sample, chain=chain,
                        closes=closes, previous_close=previous)


def _strikes(keys: list[str]) -> FloatArray | None:
    """The strikes the parser reads from an expiration's keys; None if any is in doubt."""
    if not keys or len(set(keys)) != len(keys):
        return None
    strikes = np.array([float(key) for key in keys], dtype=np.float64)
    return strikes if bool(np.all(np.isfinite(strikes) & (strikes > 0.0))) else None


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _parsed(sent: FloatArray) -> FloatArray:
    """Values as the parser reads chain numbers: NaN for the sentinel and non-finite ones."""
    return np.where(np.isfinite(sent) & (sent != SENTINEL), sent, np.nan)
