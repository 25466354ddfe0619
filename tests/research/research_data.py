"""Sessions of market data for the research tests, and the daemon's own fold over them.

The kernel is held equal to `step` on the same minutes: each test gets the minutes once (the
simulated market through the daemon's feed), folds `step` over them exactly as the loop does
(`skip` for an unusable minute, `end_session` after each session), builds the feature table
from the same minutes, and compares. Minutes are cached per process, since simulating them
costs far more than either fold.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from gexbot.core.engine import EngineParams, end_session, initial_state, skip, step
from gexbot.core.types import Closed, SessionEnded, SessionTimes, Trade
from gexbot.errors import DataError
from gexbot.model_io import read_model
from gexbot.research.featureset import FeatureSet, assemble, model_sha256, table_key
from gexbot.research.fold import MinuteData, fold_session
from gexbot.research.markets import DataSpec, MarketData
from gexbot.settings import Preset, load_variant

Day = tuple[SessionTimes, tuple[MinuteData, ...]]


@functools.cache
def sim_days(variant: str, seed: int, start: date, days: int) -> tuple[Day, ...]:
    """Every minute of `days` simulated sessions, as the daemon's feed parses them."""
    market = MarketData(DataSpec.sim(seed, start, days), load_variant(variant))
    return tuple((s, tuple(market.minutes(s))) for s in market.sessions())


def with_skips(days: Sequence[Day], dropped: Callable[[int, int, datetime], bool]) -> list[Day]:
    """The same days with the minutes `dropped(session_index, minute_index, at)` made unusable."""
    out = []
    for s, (session, minutes) in enumerate(days):
        kept = tuple(
            (at, DataError("dropped by the test", "connection") if dropped(s, m, at) else data)
            for m, (at, data) in enumerate(minutes)
        )
        out.append((session, kept))
    return out


def with_flatten(days: Sequence[Day], minutes_before_close: int) -> list[Day]:
    """The same days with sessions whose flatten time is `minutes_before_close` before the close,
    as a calendar built with that preset setting gives them to the daemon."""
    out = []
    for session, minutes in days:
        moved = replace(session, flatten=session.close - timedelta(minutes=minutes_before_close))
        out.append((moved, tuple(
            (at, data if isinstance(data, DataError) else replace(data, session=moved))
            for at, data in minutes
        )))
    return out


def engine_params(preset: Preset) -> EngineParams:
    """The preset with its shipped model, as the daemon trades it."""
    return EngineParams.from_preset(preset, read_model(preset.model_file()))


@dataclass(frozen=True)
class Reference:
    """What the daemon's fold of `step` gave: its trades and each session's PnL."""

    trades: list[Trade]
    daily_pnl: list[float]


def fold_step(params: EngineParams, days: Sequence[Day]) -> Reference:
    """Fold `step` over the days as `TradingLoop` does on a simulated clock."""
    state = initial_state(params)
    trades: list[Trade] = []
    daily: list[float] = []
    for session, minutes in days:
        for at, data in minutes:
            if isinstance(data, DataError):
                state, _ = skip(state, at, f"{data.kind}: {data}", params)
                continue
            state, events = step(state, data, params)
            trades.extend(e.trade for e in events if isinstance(e, Closed))
        ended: list[float] = []
        if state.session_date == session.date:
            state, events = end_session(state, params)
            ended = [e.pnl for e in events if isinstance(e, SessionEnded)]
        daily.append(ended[0] if ended else 0.0)
    return Reference(trades=trades, daily_pnl=daily)


def feature_set(params: EngineParams, days: Sequence[Day]) -> FeatureSet:
    """The feature set of the days, built in memory by the table builder's fold."""
    preset = load_variant(params.variant).model_copy(update={"strategy": params.strategy})
    sessions = []
    for session, minutes in days:
        built = fold_session(session, iter(minutes), params)
        sessions.append((built.columns, built.skip_reason, built.facts))
    return assemble(params.variant, preset, Path("memory"), table_key(preset),
                    model_sha256(params.model), sessions)


def same_floats(a: Sequence[float], b: Sequence[float]) -> bool:
    """Bit-for-bit equality of two float sequences."""
    return np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
