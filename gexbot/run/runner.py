"""`run(plan)`: one run, put together from its plan and traded to its end, in this process.

This is the one place where a run's objects are wired: the market (`open_run_market`), the
store, the clock, the loop and its sinks (console, Discord, summary, metrics and whatever the
caller adds), the health server and, for live Schwab data, the gate that remembers refused
credentials. Nothing here reads the command line or the process environment: the caller passes
the `Environment` it read, the stop event its signal handlers set, and the log redactor its
handlers use, so a library call runs exactly the daemon's run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from gexbot import __version__
from gexbot.core.engine import EngineParams, initial_state
from gexbot.core.session import EASTERN
from gexbot.core.types import SessionTimes, State
from gexbot.environment import Environment
from gexbot.errors import AuthError, ConfigError, ModelError
from gexbot.report.today import DayBook, LivePage
from gexbot.run.market import RunMarket, open_run_market
from gexbot.run.plan import RunPlan
from gexbot.settings import Preset, load_variant
from gexbot.shell.auth_gate import AuthGate, fingerprint
from gexbot.shell.clock import Clock, RealClock, SimClock
from gexbot.shell.discord import DiscordNotifier
from gexbot.shell.health import HealthServer, Metrics
from gexbot.shell.logs import Redactor
from gexbot.shell.loop import MINUTE, LoopStats, Sink, TradingLoop, live_sessions
from gexbot.shell.notify import ConsoleSink, Summary
from gexbot.shell.reader import decisions_frame, trades_frame
from gexbot.shell.store import REPLAY, TRADING, Store

DEFAULT_DB = "quant_trading_data.db"
LIVE_FETCH_DELAY = timedelta(seconds=2)
"""Ask for minute t a moment after t, so the bar of t − 1 is complete at Schwab."""
HEALTH_MAX_AGE_S = 150.0
FAST_BATCH = 120
"""Minutes per database write when the clock runs as fast as it can (see `Store`)."""
DISCORD_DRAIN_S = 3.0
log = logging.getLogger("gexbot")


@dataclass(frozen=True, slots=True, eq=False)
class RunResult:
    """How a run ended: its last state, the loop's counts, the summary's totals, its file.

    A run stopped before its first minute opens no database: its state is the initial one.
    """

    state: State
    stats: LoopStats
    summary: Summary
    database: Path


def run(
    plan: RunPlan,
    *,
    env: Environment | None = None,
    stop: threading.Event | None = None,
    sinks: Sequence[Sink] = (),
    redactor: Redactor | None = None,
) -> RunResult:
    """Trade `plan` to its end (or until `stop` is set) and say how it ended.

    `env` is the command's environment (none: no credentials, no webhook); `sinks` see every
    committed minute's events after the run's own; `redactor` masks secrets in what the store
    and Discord write and learns the transport's (none: one for `env`'s secrets). Raises the
    `GexbotError` a user can act on; the caller maps it to an exit code.
    """
    env = env if env is not None else Environment(MappingProxyType({}))
    redactor = redactor if redactor is not None else Redactor(env.secrets.values())
    stop = stop if stop is not None else threading.Event()
    preset = load_variant(plan.variant, plan.preset)
    label = preset.variant.upper()
    webhook = env.secrets.discord_webhook_url if plan.discord else None
    if webhook is not None and plan.replay:
        log.info("Discord stays quiet during a replay: the recorded days are history")
        webhook = None
    book = DayBook(preset.variant, redact=redactor.redact)
    notifier = DiscordNotifier(
        webhook, redact=redactor.redact, logger=logging.getLogger("gexbot"), chart=book.chart_job
    )
    try:
        return _run(plan, env, preset, notifier, book, redactor, stop, sinks)
    except ModelError as problem:
        notifier.alert(f"{label}: HMM model file problem", str(problem))
        raise
    finally:
        notifier.close(timeout=DISCORD_DRAIN_S)


def _run(
    plan: RunPlan,
    env: Environment,
    preset: Preset,
    notifier: DiscordNotifier,
    book: DayBook,
    redactor: Redactor,
    stop: threading.Event,
    extra_sinks: Sequence[Sink],
) -> RunResult:
    label = preset.variant.upper()
    opened = open_run_market(plan, preset, env, stop)
    transport = opened.market.transport
    try:
        transport.register_redactor(redactor.add)
        transport.set_alerter(
            lambda title, message: notifier.alert(f"{label}: {title}", message, "warning")
        )
        db, fresh = database_path(plan, preset)
        params = EngineParams.from_preset(preset, opened.model)
        console = ConsoleSink(logging.getLogger("gexbot.events"), label=label)
        summary = Summary()
        metrics = Metrics()
        log.info("gexbot %s %s (%s) on %s; database %s", __version__, label, preset.symbol,
                 plan.describe_source(), db)
        if stop.is_set():
            log.info("stopped before the first minute: nothing traded, nothing written")
            return RunResult(state=initial_state(params), stats=LoopStats(), summary=summary,
                             database=db)
        health: HealthServer | None = None
        with Store(
            db,
            preset.variant,
            logger=log,
            batch_minutes=FAST_BATCH if plan.fast else 1,
            redact=redactor.redact,
            made_for=REPLAY if plan.replay else TRADING,
            replace=fresh,
        ) as store:
            gate = _auth_gate(plan, env, store, notifier, label)
            if gate is not None:
                transport.watch_refusals(gate.waiting(), gate.note_wait)
            state = store.restore() or initial_state(params)
            if state.last_minute is not None:
                log.info("resuming after %s with balance %.2f", state.last_minute, state.balance)
            _warn_nothing_to_do(plan, opened.sessions, state)
            _seed_book(book, store, state)
            health = _start_health(plan, metrics, LivePage(book, label=label))
            clock = _clock(plan, stop, opened.sessions, state.last_minute, metrics)
            loop = TradingLoop(
                params=params,
                feed=opened.feed,
                clock=clock,
                store=store,
                sinks=[console.handle, book.handle, notifier.handle, summary.add, metrics.handle]
                + ([gate.save_wait] if gate is not None else [])
                + list(extra_sinks),
                alerter=notifier,
                stop=stop,
                state=state,
                fetch_delay=LIVE_FETCH_DELAY if plan.realtime else timedelta(0),
                max_minutes=plan.minutes,
                metrics=metrics,
                source=plan.source_name,
            )
            try:
                loop.run(_session_list(plan, opened, clock))
            except AuthError as problem:
                if gate is not None:
                    gate.record_refusal(str(problem), datetime.now(EASTERN))
                raise
            finally:
                console.close()
                if gate is not None:
                    gate.save_wait()
                if health is not None:
                    health.stop()
    finally:
        transport.close()
    for line in summary.lines():
        log.info("%s", line)
    return RunResult(state=loop.state, stats=loop.stats, summary=summary, database=db)


def database_path(plan: RunPlan, preset: Preset) -> tuple[Path, bool]:
    """`plan.db`, else the default file, and whether the run starts from an empty file.

    A replay never writes the live database by default: it writes `replay-<variant>.db` beside
    the recordings, starting afresh each time; the store replaces that file only once it holds
    its lock and has checked that a replay of this variant made it.
    """
    if plan.db is not None:
        return Path(plan.db), False
    if not plan.replay:
        return Path(DEFAULT_DB), False
    first = plan.replay[0]
    folder = first if first.is_dir() else first.parent
    return folder / f"replay-{preset.variant}.db", True


def _session_list(plan: RunPlan, opened: RunMarket, clock: Clock) -> Iterable[SessionTimes]:
    """The planned sessions, or on the wall clock the session in progress or next, forever."""
    return live_sessions(opened.calendar, clock) if plan.realtime else opened.sessions


def _warn_nothing_to_do(plan: RunPlan, sessions: Sequence[SessionTimes], state: State) -> None:
    """Say so when a simulated or replayed run has no minute left to decide."""
    if plan.realtime:
        return
    if not sessions:
        log.warning("no trading session to run: the database keeps its tables, nothing is traded")
        return
    if state.last_minute is None:
        return
    done = [s for s in sessions if s.close - MINUTE <= state.last_minute]
    if len(done) == len(sessions):
        log.warning(
            "the database already holds decisions up to %s, past the last session asked for"
            " (%s): nothing to do; pass a fresh --db to run those sessions again",
            f"{state.last_minute:%Y-%m-%d %H:%M}",
            sessions[-1].date,
        )
    elif done:
        log.info("%d of the %d sessions asked for were decided before; going on from the next",
                 len(done), len(sessions))


def _auth_gate(
    plan: RunPlan, env: Environment, store: Store, notifier: DiscordNotifier, label: str
) -> AuthGate | None:
    """For Schwab data: refuse to start while the credentials Schwab refused are still in place."""
    if not plan.live:
        return None
    from gexbot.market.schwab_config import SchwabConfig

    config = SchwabConfig.from_env(env)
    gate = AuthGate(
        store,
        fingerprint(config.app_key, config.tokens.refresh_token),
        lambda title, message: notifier.alert(f"{label}: {title}", message),
    )
    blocked = gate.check_start(datetime.now(EASTERN))
    if blocked is not None:
        raise AuthError(blocked)
    return gate


def _clock(
    plan: RunPlan,
    stop: threading.Event,
    sessions: Sequence[SessionTimes],
    resume_after: datetime | None,
    metrics: Metrics,
) -> Clock:
    if plan.realtime:
        return RealClock(stop, on_wait=metrics.heartbeat)
    if not sessions:
        return SimClock(resume_after or datetime.now(EASTERN), stop, speed=plan.speed)
    start = sessions[0].open if resume_after is None else max(resume_after, sessions[0].open)
    return SimClock(start, stop, speed=plan.speed)


def _seed_book(book: DayBook, store: Store, state: State) -> None:
    """Give the live page the committed minutes of the session a restarted daemon is in."""
    if state.last_minute is None:
        return
    day = state.last_minute.astimezone(EASTERN).date()
    since = datetime.combine(day, datetime.min.time(), EASTERN)
    try:
        book.seed(decisions_frame(store.path, store.variant, since),
                  trades_frame(store.path, store.variant))
    except ConfigError as problem:
        log.warning("the live page starts without the minutes already committed: %s", problem)


def _start_health(plan: RunPlan, metrics: Metrics, page: LivePage) -> HealthServer | None:
    if plan.http_port is None:
        return None
    server = HealthServer(
        plan.http_port, plan.http_host, max_age_s=HEALTH_MAX_AGE_S, metrics=metrics,
        page=page.html,
    )
    server.start()
    log.info("health on http://%s:%d/healthz, live page on http://%s:%d/", plan.http_host,
             server.port, plan.http_host, server.port)
    return server
