"""The market side of a run, made from its plan: calendar, model, transport, sessions, feed.

Everything that reads minutes the way the daemon does (the daemon itself, a replay, research's
feature tables) opens its market here, so they agree on which sessions a plan covers, which
HMM model trades them and which requests each minute makes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gexbot.core.hmm import HmmModel, model_to_dict
from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.core.types import SessionTimes
from gexbot.market.feed import MarketFeed
from gexbot.market.replay import ReplayTransport
from gexbot.market.sim import check_simulated
from gexbot.model_io import read_model
from gexbot.run.plan import RunPlan
from gexbot.settings import Preset
from gexbot.sources import Market, SourceOptions, open_market, recorded_model

CALENDAR_MARGIN = timedelta(days=14)
"""Sessions before `start` the calendar must know (the previous close of the first one)."""
log = logging.getLogger("gexbot")


@dataclass(frozen=True, slots=True, eq=False)
class RunMarket:
    """An opened market and what a run reads from it; `market.transport` must be closed."""

    calendar: TradingCalendar
    market: Market
    model: HmmModel
    """The model the run trades with: `plan.model`, else the recordings', else the preset's."""
    sessions: list[SessionTimes]
    """The sessions to trade, oldest first; empty for a run on the wall clock, which asks the
    calendar as it goes (`gexbot.shell.loop.live_sessions`)."""
    feed: MarketFeed


def open_run_market(
    plan: RunPlan,
    preset: Preset,
    env: Mapping[str, str],
    stop: threading.Event | None = None,
) -> RunMarket:
    """Open the market `plan` names for `preset`; `env` holds Schwab's settings and secrets.

    `stop` abandons a minute whose answers are still awaited (see `MarketFeed`).
    """
    model = read_model(plan.model or preset.model_file(), variant=preset.variant)
    calendar = TradingCalendar(
        preset.calendar,
        preset.strategy.flatten_minutes_before_close,
        start=_calendar_start(plan.start),
    )
    options = SourceOptions(
        source=plan.source,
        seed=plan.seed,
        replay=plan.replay or None,
        record=plan.record,
        model=plan.model,
    )
    market = open_market(options, preset, calendar, env)
    try:
        if market.replay is not None and plan.model is None:
            model = _replay_model(market.replay, model)
        sessions = _sessions(plan, calendar, market)
    except BaseException:
        market.transport.close()
        raise
    feed = MarketFeed(market.transport, preset, calendar, concurrent=plan.live, stop=stop)
    return RunMarket(calendar=calendar, market=market, model=model, sessions=sessions, feed=feed)


def _replay_model(replay: ReplayTransport, preset_model: HmmModel) -> HmmModel:
    """The model the recordings were traded with, else the preset's (`--model` overrides)."""
    recorded = recorded_model(replay)
    if recorded is None:
        return preset_model
    if model_to_dict(recorded) != model_to_dict(preset_model):
        log.info("replaying with the HMM model the recordings name (pass --model to try another)")
    return recorded


def _calendar_start(start: date | None) -> date | None:
    """Where the calendar must begin for sessions from `start` (None: its default window)."""
    if start is None:
        return None
    try:
        return start - CALENDAR_MARGIN
    except OverflowError:
        return start  # before year 1: the calendar refuses it in words


def _sessions(plan: RunPlan, calendar: TradingCalendar, market: Market) -> list[SessionTimes]:
    """The sessions a simulated or replayed run trades (a run on the wall clock asks as it
    goes)."""
    if market.replay is not None:
        return market.replay_sessions(calendar)
    if plan.realtime:
        return []
    if plan.start is not None:
        sessions = calendar.sessions_from(plan.start, plan.days)
    else:
        last = calendar.last_completed(datetime.now(EASTERN))
        sessions = calendar.sessions_ending(last.date, plan.days)
    if plan.source == "sim":
        check_simulated(sessions, calendar, "pass a later --start or fewer --days")
    return sessions
