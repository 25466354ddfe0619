"""The minute cycle on a simulated market: skips, alerts, announcing only what is durable."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import pytest

from gexbot.core.engine import EngineParams, initial_state
from gexbot.core.session import TradingCalendar
from gexbot.core.types import Action, Decided, Event, SessionEnded, SessionStarted, State
from gexbot.market.feed import MarketFeed
from gexbot.market.sim import SimMarket
from gexbot.market.transport import Endpoint, Exchange, Transport
from gexbot.model_io import read_model
from gexbot.settings import load_variant
from gexbot.shell.clock import SimClock
from gexbot.shell.loop import TradingLoop

PRESET = load_variant("es")
CALENDAR = TradingCalendar(PRESET.calendar, PRESET.strategy.flatten_minutes_before_close)
SESSION = CALENDAR.session(date(2026, 10, 6))
PARAMS = EngineParams.from_preset(PRESET, read_model(PRESET.model_file()))


def minute(n: int) -> datetime:
    return SESSION.open + timedelta(minutes=n)


class Failing:
    """The simulated market, with the chain answering 503 in chosen minutes."""

    def __init__(self, inner: Transport, broken: set[datetime]) -> None:
        self.inner = inner
        self.broken = broken

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        if endpoint == "chains" and at in self.broken:
            return Exchange(at=at, endpoint=endpoint, params=params, status=503, body=None,
                            error="HTTP 503")
        return self.inner.get(endpoint, params, at)


class MemoryStore:
    """Durable every `every` minutes, like a batching store; remembers what was durable when."""

    def __init__(self, every: int = 1) -> None:
        self.every = every
        self.minutes: list[datetime] = []
        self.durable = 0
        self.flushes = 0

    def commit(self, at: datetime, events: Sequence[Event], state: State) -> bool:
        self.minutes.append(at)
        if len(self.minutes) % self.every == 0:
            self.durable = len(self.minutes)
            return True
        return False

    def flush(self) -> bool:
        self.flushes += 1
        self.durable = len(self.minutes)
        return True


class Alerts(list[tuple[str, str]]):
    def alert(self, title: str, message: str) -> None:
        self.append((title, message))


def _loop(transport: Transport, store: MemoryStore, sinks: list, alerts: Alerts,
          **options: object) -> TradingLoop:
    stop = threading.Event()
    return TradingLoop(
        params=PARAMS, feed=MarketFeed(transport, PRESET, CALENDAR), clock=SimClock(
            SESSION.open, stop), store=store, sinks=sinks, alerter=alerts, stop=stop,
        state=initial_state(PARAMS), **options,  # type: ignore[arg-type]
    )


def test_consecutive_skips_raise_one_alert_per_streak(caplog: pytest.LogCaptureFixture) -> None:
    broken = {minute(n) for n in [*range(10, 17), *range(30, 35), 50]}
    seen: list[Event] = []
    alerts = Alerts()
    loop = _loop(Failing(SimMarket(PRESET, CALENDAR, 4), broken), MemoryStore(), [seen.extend],
                 alerts, max_minutes=60)
    loop.run([SESSION])
    rows = [e for e in seen if isinstance(e, Decided)]
    assert len(rows) == 60
    skipped = [row.at for row in rows if row.action is Action.SKIP]
    assert skipped == sorted(broken)
    assert all(row.reason == "server_error: chains: HTTP 503 (Service Unavailable)"
               for row in rows if row.action is Action.SKIP)
    assert [title for title, _ in alerts] == ["Market data failing", "Market data failing"]
    assert "5 consecutive minutes skipped up to 2026-10-06 09:44" in alerts[0][1]
    assert "up to 2026-10-06 10:04" in alerts[1][1]
    assert loop.stats.skipped == {"server_error": 13}
    assert sum("market data failing" in m for m in caplog.messages) == 2


def test_nothing_is_announced_before_the_store_says_it_is_durable() -> None:
    store = MemoryStore(every=7)
    announced: list[int] = []

    def sink(events: Sequence[Event]) -> None:
        assert store.durable == len(store.minutes)  # every committed minute is durable by now
        announced.append(sum(isinstance(e, Decided) for e in events))

    loop = _loop(SimMarket(PRESET, CALENDAR, 4), store, [sink], Alerts(), max_minutes=30)
    loop.run([SESSION])
    assert announced[:4] == [7, 7, 7, 7]
    assert sum(announced) == 30
    assert store.flushes >= 1


def test_a_session_ends_with_its_summary_after_the_last_minute() -> None:
    seen: list[Event] = []
    loop = _loop(SimMarket(PRESET, CALENDAR, 4), MemoryStore(every=50), [seen.extend], Alerts())
    state = loop.run([SESSION])
    assert isinstance(seen[0], SessionStarted)
    assert isinstance(seen[-1], SessionEnded)
    assert sum(isinstance(e, Decided) for e in seen) == 390
    assert state.last_minute == minute(389)


def test_a_rerun_continues_after_the_last_minute_decided() -> None:
    first = _loop(SimMarket(PRESET, CALENDAR, 4), MemoryStore(), [], Alerts(), max_minutes=20)
    state = first.run([SESSION])
    seen: list[Event] = []
    stop = threading.Event()
    again = TradingLoop(
        params=PARAMS, feed=MarketFeed(SimMarket(PRESET, CALENDAR, 4), PRESET, CALENDAR),
        clock=SimClock(minute(20), stop), store=MemoryStore(), sinks=[seen.extend],
        alerter=Alerts(), stop=stop, state=state, max_minutes=5,
    )
    again.run([SESSION])
    assert [e.at for e in seen if isinstance(e, Decided)] == [minute(n) for n in range(20, 25)]
    assert not any(isinstance(e, SessionStarted) for e in seen)
