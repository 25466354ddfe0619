"""`python -m gexbot.live`: the daemon's CLI, and the one place where objects are wired together.

Everything else receives what it needs; this module reads the command line, the environment
and the preset, picks the market (live Schwab, simulated, replayed), the clock and the sinks,
and maps the exception tree to exit codes (errors.py).
"""

from __future__ import annotations

from gexbot.shell import signals

if __name__ == "__main__":
    # Before the imports below (about a second): a stop signal at any instant of a start is
    # handled, never Python's default of dying without a word.
    signals.install_early()

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

from gexbot import __version__
from gexbot.cli import ArgumentParser, iso_date
from gexbot.core.engine import EngineParams, initial_state
from gexbot.core.hmm import HmmModel, model_to_dict
from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.core.types import SessionTimes, State
from gexbot.environment import Environment, add_env_file_argument, load_environment
from gexbot.errors import EXIT_OK, AuthError, ConfigError, ModelError, exit_code_of
from gexbot.market.feed import MarketFeed
from gexbot.market.replay import ReplayTransport
from gexbot.market.sim import check_simulated
from gexbot.model_io import read_model
from gexbot.report.today import DayBook, LivePage
from gexbot.settings import Preset, load_variant
from gexbot.shell.auth_gate import AuthGate, fingerprint
from gexbot.shell.clock import Clock, RealClock, SimClock
from gexbot.shell.discord import DiscordNotifier
from gexbot.shell.health import HealthServer, Metrics
from gexbot.shell.logs import Redactor, setup_logging
from gexbot.shell.loop import MINUTE, TradingLoop, live_sessions
from gexbot.shell.notify import ConsoleSink, Summary
from gexbot.shell.reader import decisions_frame, trades_frame
from gexbot.shell.store import REPLAY, TRADING, Store
from gexbot.sources import Market, SourceOptions, open_market, recorded_model

DEFAULT_DB = "quant_trading_data.db"
LIVE_FETCH_DELAY = timedelta(seconds=2)
"""Ask for minute t a moment after t, so the bar of t − 1 is complete at Schwab."""
HEALTH_MAX_AGE_S = 150.0
FAST_BATCH = 120
"""Minutes per database write when the clock runs as fast as it can (see `Store`)."""
CALENDAR_MARGIN = timedelta(days=14)
"""Sessions before `--start` the calendar must know (the previous close of the first one)."""
DISCORD_DRAIN_S = 3.0
SPEEDS = (0.01, 100_000.0)
"""Multiples of real time a simulated clock may run at: slower is a stopped clock, faster is
--speed max."""
log = logging.getLogger("gexbot")


def parse_speed(text: str) -> float | None:
    """`max` (None: as fast as possible) or a multiple of real time within `SPEEDS`."""
    if text.lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--speed must be 'max' or a number, got {text!r}"
        ) from None
    if not speed > 0:
        raise argparse.ArgumentTypeError(f"--speed must be positive, got {text!r}")
    if not SPEEDS[0] <= speed <= SPEEDS[1]:
        raise argparse.ArgumentTypeError(
            f"--speed must be 'max' or a number of times real time from {SPEEDS[0]:g} to"
            f" {SPEEDS[1]:g}, got {text!r}"
        )
    return speed


def build_parser() -> argparse.ArgumentParser:
    """Every option of the daemon (`--help` lists them)."""
    parser = ArgumentParser(
        prog="python -m gexbot.live",
        description="Paper-trade the GEX mean-reversion strategy on live, simulated or recorded"
        " market data.",
    )
    parser.add_argument("--variant", required=True, choices=["es", "nq"], help="which preset")
    parser.add_argument("--preset", type=Path, help="a preset YAML file instead of the shipped one")
    parser.add_argument("--model", type=Path, help="HMM model file (default: the preset's)")
    source = parser.add_argument_group("market")
    source.add_argument(
        "--source",
        choices=["schwab", "sim"],
        default="schwab",
        help="live Schwab data (needs credentials) or the simulated market (default: schwab)",
    )
    source.add_argument(
        "--replay",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="replay recorded sessions (files or directories) instead of a live or sim market",
    )
    source.add_argument("--record", type=Path, metavar="DIR", help="record every exchange in DIR")
    sim = parser.add_argument_group("simulated and replayed clock")
    sim.add_argument("--days", type=int, default=5, help="sessions to simulate (default 5)")
    sim.add_argument(
        "--start",
        type=iso_date,
        help="first simulated session (default: the --days sessions ending with the last"
        " completed one)",
    )
    sim.add_argument("--seed", type=int, default=1, help="which simulated market (default 1)")
    sim.add_argument(
        "--speed",
        type=parse_speed,
        default=None,
        metavar="{max,N}",
        help="simulated clock speed: max (default) or N times real time",
    )
    sim.add_argument("--minutes", type=int, help="stop after this many session minutes")
    out = parser.add_argument_group("output")
    out.add_argument("--db", type=Path, help=f"DuckDB file (default {DEFAULT_DB})")
    out.add_argument("--http-port", type=int, help="serve /healthz and /metrics on this port")
    out.add_argument("--http-host", default="127.0.0.1", help="health endpoint address")
    out.add_argument("--log-format", choices=["text", "json"], default="text")
    out.add_argument(
        "--log-level", help="DEBUG, INFO, WARNING... (default GEXBOT_LOG_LEVEL or INFO)"
    )
    add_env_file_argument(parser)
    parser.add_argument("--version", action="version", version=f"gexbot {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the daemon; the return value is the process exit code."""
    stop = signals.stop_request()
    args = build_parser().parse_args(argv)
    return exit_code_of(lambda: run(args, stop), log)


def run(args: argparse.Namespace, stop: signals.StopRequest) -> int:
    """Wire the daemon from parsed arguments and run it to the end of its sessions."""
    try:
        env = load_environment(args.env_file)
        secrets = env.secrets
        redactor = setup_logging(args.log_level, args.log_format, secrets.values(), env=env)
    except ConfigError:
        setup_logging("INFO", args.log_format, ())  # the refusal prints like any other line
        raise
    stop.install(lambda name: log.info("%s received: finishing the current minute", name))
    if env.ignored:
        log.info("%s: %s ignored (gexbot reads only SCHWAB_*, GEXBOT_* and DISCORD_* there)",
                 env.env_file, ", ".join(env.ignored))
    _check_args(args)
    preset = load_variant(args.variant, args.preset)
    label = preset.variant.upper()
    webhook = secrets.discord_webhook_url
    if webhook is not None and args.replay:
        log.info("Discord stays quiet during a replay: the recorded days are history")
        webhook = None
    book = DayBook(preset.variant, redact=redactor.redact)
    notifier = DiscordNotifier(
        webhook, redact=redactor.redact, logger=logging.getLogger("gexbot"), chart=book.chart_job
    )
    try:
        return _run_daemon(args, env, preset, notifier, redactor, book, stop.event)
    except ModelError as problem:
        notifier.alert(f"{label}: HMM model file problem", str(problem))
        raise
    finally:
        notifier.close(timeout=DISCORD_DRAIN_S)


def _run_daemon(
    args: argparse.Namespace,
    env: Environment,
    preset: Preset,
    notifier: DiscordNotifier,
    redactor: Redactor,
    book: DayBook,
    stop: threading.Event,
) -> int:
    label = preset.variant.upper()
    model_file = args.model if args.model is not None else preset.model_file()
    model = read_model(model_file, variant=preset.variant)
    calendar = TradingCalendar(
        preset.calendar,
        preset.strategy.flatten_minutes_before_close,
        start=_calendar_start(args.start),
    )
    options = SourceOptions(
        source=args.source, seed=args.seed, replay=args.replay, record=args.record, model=args.model
    )
    market = open_market(options, preset, calendar, env)
    if market.replay is not None and args.model is None:
        model = _replay_model(market.replay, model)
    _attach(market, redactor, notifier, label)
    sessions = _sessions(args, options, calendar, market)
    db, fresh = _database_path(args, preset)
    params = EngineParams.from_preset(preset, model)
    console = ConsoleSink(logging.getLogger("gexbot.events"), label=label)
    summary = Summary()
    metrics = Metrics()
    realtime = _realtime(args, options)
    fast = args.speed is None and not realtime
    feed = MarketFeed(market.transport, preset, calendar, concurrent=options.live, stop=stop)
    log.info(
        "gexbot %s %s (%s) on %s; database %s",
        __version__,
        label,
        preset.symbol,
        _describe_source(args, options),
        db,
    )
    health: HealthServer | None = None
    if stop.is_set():
        market.transport.close()
        log.info("stopped before the first minute: nothing traded, nothing written")
        return EXIT_OK
    with Store(
        db,
        preset.variant,
        logger=log,
        batch_minutes=FAST_BATCH if fast else 1,
        redact=redactor.redact,
        made_for=REPLAY if args.replay else TRADING,
        replace=fresh,
    ) as store:
        gate = _auth_gate(options, env, store, notifier, label)
        if gate is not None:
            _resume_wait(market, gate)
        state = store.restore() or initial_state(params)
        if state.last_minute is not None:
            log.info("resuming after %s with balance %.2f", state.last_minute, state.balance)
        _warn_nothing_to_do(realtime, sessions, state)
        _seed_book(book, store, state)
        health = _start_health(args, metrics, LivePage(book, label=label))
        clock = _clock(args, options, stop, sessions, state.last_minute, metrics)
        loop = TradingLoop(
            params=params,
            feed=feed,
            clock=clock,
            store=store,
            sinks=[console.handle, book.handle, notifier.handle, summary.add, metrics.handle]
            + ([gate.save_wait] if gate is not None else []),
            alerter=notifier,
            stop=stop,
            state=state,
            fetch_delay=LIVE_FETCH_DELAY if realtime else timedelta(0),
            max_minutes=args.minutes,
            metrics=metrics,
        )
        try:
            loop.run(live_sessions(calendar, clock) if realtime else sessions)
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
            market.transport.close()
    for line in summary.lines():
        log.info("%s", line)
    return EXIT_OK


def _warn_nothing_to_do(
    realtime: bool, sessions: Sequence[SessionTimes], state: State
) -> None:
    """Say so when a simulated or replayed run has no minute left to decide."""
    if realtime:
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


def _replay_model(replay: ReplayTransport, preset_model: HmmModel) -> HmmModel:
    """The model the recordings were traded with, else the preset's (`--model` overrides)."""
    recorded = recorded_model(replay)
    if recorded is None:
        return preset_model
    if model_to_dict(recorded) != model_to_dict(preset_model):
        log.info("replaying with the HMM model the recordings name (pass --model to try another)")
    return recorded


def _attach(market: Market, redactor: Redactor, notifier: DiscordNotifier, label: str) -> None:
    """Give the transport the log redactor (fresh tokens) and an alert line (token expiry)."""
    market.transport.register_redactor(redactor.add)
    market.transport.set_alerter(
        lambda title, message: notifier.alert(f"{label}: {title}", message, "warning")
    )


def _resume_wait(market: Market, gate: AuthGate) -> None:
    """Go on with a wait after a passing refusal that a previous run remembered."""
    market.transport.watch_refusals(gate.waiting(), gate.note_wait)


def _auth_gate(
    options: SourceOptions, env: Environment, store: Store, notifier: DiscordNotifier, label: str
) -> AuthGate | None:
    """For Schwab data: refuse to start while the credentials Schwab refused are still in place."""
    if not options.live:
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


def _check_args(args: argparse.Namespace) -> None:
    if args.days < 1:
        raise ConfigError("--days must be at least 1")
    if args.minutes is not None and args.minutes < 1:
        raise ConfigError("--minutes must be at least 1")
    if args.replay and args.source == "sim" and args.seed != 1:
        raise ConfigError("--seed applies to --source sim, not to --replay")
    if args.http_port is not None and not 0 <= args.http_port <= 65535:
        raise ConfigError(f"--http-port: {args.http_port} is not a TCP port (0-65535)")
    if args.record is not None and args.record.exists() and not args.record.is_dir():
        raise ConfigError(f"--record: {args.record} is not a folder")


def _calendar_start(start: date | None) -> date | None:
    """Where the calendar must begin for sessions from `start` (None: its default window)."""
    if start is None:
        return None
    try:
        return start - CALENDAR_MARGIN
    except OverflowError:
        return start  # before year 1: the calendar refuses it in words


def _realtime(args: argparse.Namespace, options: SourceOptions) -> bool:
    """True for the wall clock: live Schwab data without `--start`.

    With `--start`, Schwab (or a local fake standing in for it) is read on a simulated clock,
    which is how a fake server is driven through whole sessions in minutes.
    """
    return options.live and args.start is None


def _sessions(
    args: argparse.Namespace,
    options: SourceOptions,
    calendar: TradingCalendar,
    market: Market,
) -> list[SessionTimes]:
    """The sessions a simulated or replayed run trades (a live run asks as it goes)."""
    if market.replay is not None:
        return market.replay_sessions(calendar)
    if _realtime(args, options):
        return []
    if args.start is not None:
        sessions = calendar.sessions_from(args.start, args.days)
    else:
        last = calendar.last_completed(datetime.now(EASTERN))
        sessions = calendar.sessions_ending(last.date, args.days)
    if options.source == "sim":
        check_simulated(sessions, calendar, "pass a later --start or fewer --days")
    return sessions


def _clock(
    args: argparse.Namespace,
    options: SourceOptions,
    stop: threading.Event,
    sessions: Sequence[SessionTimes],
    resume_after: datetime | None,
    metrics: Metrics,
) -> Clock:
    if _realtime(args, options):
        return RealClock(stop, on_wait=metrics.heartbeat)
    if not sessions:
        return SimClock(resume_after or datetime.now(EASTERN), stop, speed=args.speed)
    start = sessions[0].open if resume_after is None else max(resume_after, sessions[0].open)
    return SimClock(start, stop, speed=args.speed)


def _database_path(args: argparse.Namespace, preset: Preset) -> tuple[Path, bool]:
    """`--db`, else the default file, and whether the run starts from an empty file.

    A replay never writes the live database by default: it writes `replay-<variant>.db` beside
    the recordings, starting afresh each time; the store replaces that file only once it holds
    its lock and has checked that a replay of this variant made it.
    """
    if args.db is not None:
        return Path(args.db), False
    if not args.replay:
        return Path(DEFAULT_DB), False
    first = Path(args.replay[0])
    folder = first if first.is_dir() else first.parent
    return folder / f"replay-{preset.variant}.db", True


def _describe_source(args: argparse.Namespace, options: SourceOptions) -> str:
    if options.replay:
        return f"replay of {len(options.replay)} path(s)"
    if options.live:
        clock = "wall clock" if _realtime(args, options) else "simulated clock"
        return f"live Schwab data on the {clock}"
    speed = "max speed" if args.speed is None else f"{args.speed:g}x speed"
    return f"simulated market seed {args.seed} at {speed}"


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


def _start_health(
    args: argparse.Namespace, metrics: Metrics, page: LivePage
) -> HealthServer | None:
    if args.http_port is None:
        return None
    server = HealthServer(
        args.http_port, args.http_host, max_age_s=HEALTH_MAX_AGE_S, metrics=metrics,
        page=page.html,
    )
    server.start()
    log.info("health on http://%s:%d/healthz, live page on http://%s:%d/", args.http_host,
             server.port, args.http_host, server.port)
    return server




if __name__ == "__main__":
    sys.exit(main())
