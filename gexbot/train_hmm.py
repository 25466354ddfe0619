"""`python -m gexbot.train_hmm`: fit the 2-state volatility HMM, write `models/hmm_<variant>.json`.

The data are 1-minute closes of recent completed sessions, fetched through the same transports
and parser as the daemon (live Schwab, the simulated market, or recordings), so a model trained
on a recorded week saw exactly what the daemon saw. Returns never span two sessions.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from tqdm import tqdm

from gexbot import __version__
from gexbot.cli import ArgumentParser, iso_date
from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.core.types import FloatArray, SessionTimes
from gexbot.environment import Environment, add_env_file_argument, load_environment
from gexbot.errors import EXIT_CONFIG, EXIT_OK, ConfigError, DataError, ModelError, exit_code_of
from gexbot.market.feed import history_params
from gexbot.market.parse import parse_history
from gexbot.market.sim import check_simulated
from gexbot.model_io import check_destination, import_pickle, write_model
from gexbot.settings import Preset, load_variant, resolve_path
from gexbot.shell.logs import setup_logging
from gexbot.shell.signals import interrupt_on_stop_signals
from gexbot.sources import Market, SourceOptions, open_market
from gexbot.training import FitResult, fit_hmm, session_returns
from gexbot.wording import counted

log = logging.getLogger("gexbot.train_hmm")
_ONE_MINUTE = timedelta(minutes=1)
MAX_RESTARTS = 1000
SEED_LIMIT = 2**32 - 1
"""numpy's largest random_state."""


def build_parser() -> argparse.ArgumentParser:
    """Every option of the trainer (`--help` lists them)."""
    parser = ArgumentParser(
        prog="python -m gexbot.train_hmm",
        description="Fit the 2-state Gaussian HMM on 1-minute returns and write the model file.",
    )
    parser.add_argument("--variant", required=True, choices=["es", "nq"])
    parser.add_argument("--preset", type=Path, help="a preset YAML file instead of the shipped one")
    parser.add_argument("--source", choices=["schwab", "sim"], default="schwab")
    parser.add_argument(
        "--replay", nargs="+", type=Path, metavar="PATH", help="train on recordings"
    )
    parser.add_argument("--seed", type=int, default=1, help="simulated market seed (--source sim)")
    parser.add_argument(
        "--sessions", type=int, help="sessions of history (default: the preset's train_sessions)"
    )
    parser.add_argument(
        "--end", type=iso_date, help="last session to use (default: last completed)"
    )
    parser.add_argument("--restarts", type=int, default=8, help="random restarts (default 8)")
    parser.add_argument("--fit-seed", type=int, default=0, help="first random_state of the fits")
    parser.add_argument(
        "--out", type=Path, help="where to write (default: the preset's model path)"
    )
    parser.add_argument(
        "--force", action="store_true", help="write even if the states' variances are too close"
    )
    parser.add_argument(
        "--import-pickle", type=Path, metavar="FILE", help="convert an old pickled GaussianHMM"
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="confirm FILE is yours: unpickling runs code from the file",
    )
    add_env_file_argument(parser)
    parser.add_argument("--version", action="version", version=f"gexbot {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Train (or import) and write the model; the return value is the exit code."""
    interrupt_on_stop_signals()
    args = build_parser().parse_args(argv)

    def command() -> int:
        setup_logging("INFO", "text", ())
        env = load_environment(args.env_file)
        redactor = setup_logging(None, "text", env.secrets.values(), env=env)
        try:
            return run(args, env, redactor.add)
        except KeyboardInterrupt:
            # 0 would say "trained": scripts chain the daemon after this command.
            log.critical("stopped before a model was written: nothing written")
            return EXIT_CONFIG

    return exit_code_of(command, log)


def _check_args(args: argparse.Namespace) -> None:
    if args.sessions is not None and args.sessions < 1:
        raise ConfigError("--sessions must be at least 1")
    if not 1 <= args.restarts <= MAX_RESTARTS:
        raise ConfigError(f"--restarts must be between 1 and {MAX_RESTARTS}, got {args.restarts}")
    last_seed = SEED_LIMIT - args.restarts
    if not 0 <= args.fit_seed <= last_seed:
        raise ConfigError(
            f"--fit-seed must be between 0 and {last_seed} (each restart adds 1), got"
            f" {args.fit_seed}"
        )


def run(
    args: argparse.Namespace,
    env: Environment,
    secret: Callable[[str], None] = lambda _: None,
) -> int:
    """Gather the data, fit, check and write; `secret` registers tokens learnt with the logs."""
    _check_args(args)
    preset = load_variant(args.variant, args.preset)
    out = args.out if args.out is not None else resolve_path(preset.model_path)
    check_destination(out)
    if args.import_pickle is not None:
        model = import_pickle(args.import_pickle, trust=args.trust_pickle)
        write_model(out, model)
        log.info("converted %s into %s", args.import_pickle, out)
        return EXIT_OK

    calendar = TradingCalendar(preset.calendar, preset.strategy.flatten_minutes_before_close)
    options = SourceOptions(source=args.source, seed=args.seed, replay=args.replay, record=None)
    market = open_market(options, preset, calendar, env)
    market.transport.register_redactor(secret)
    asked = _training_sessions(args, options, preset, calendar, market)
    gathered = gather_closes(market, options, preset, asked)
    sessions = [session for session, _ in gathered]
    sequences = session_returns([closes for _, closes in gathered])
    observations = sum(len(s) for s in sequences)
    log.info(
        "training on %d sessions %s..%s (%d one-minute returns), %d restarts",
        len(sessions),
        sessions[0].date,
        sessions[-1].date,
        observations,
        args.restarts,
    )
    with tqdm(total=args.restarts, desc="fitting", unit="fit", file=sys.stderr) as bar:
        result = fit_hmm(
            sequences,
            restarts=args.restarts,
            seed=args.fit_seed,
            progress=lambda _: bar.update(1),
        )
    _report(result)
    minimum = preset.strategy.hmm.min_variance_ratio
    if result.variance_ratio < minimum and not args.force:
        raise ModelError(
            f"the two states' variances differ by {result.variance_ratio:.2f}x, below the"
            f" preset's {minimum}; the data may hold one regime only. Nothing written;"
            " use --force to write anyway"
        )
    model = dataclasses.replace(result.model, metadata=_metadata(args, preset, sessions, result))
    write_model(out, model)
    log.info("wrote %s", out)
    return EXIT_OK


def _training_sessions(
    args: argparse.Namespace,
    options: SourceOptions,
    preset: Preset,
    calendar: TradingCalendar,
    market: Market,
) -> list[SessionTimes]:
    count = args.sessions if args.sessions is not None else preset.strategy.hmm.train_sessions
    if market.replay is not None:
        recorded = market.replay_sessions(calendar)
        if not recorded:
            raise ConfigError("no trading session in the recordings given: nothing to train on")
        if len(recorded) < count:
            # A model fitted on a day or two would replace the preset's model without a word.
            asked = "--sessions asks for" if args.sessions is not None else "the preset trains on"
            raise ConfigError(
                f"the recordings hold {counted(len(recorded), 'trading session')}, {asked}"
                f" {count}: record more sessions, or pass --sessions {len(recorded)} to train on"
                " these"
            )
        return recorded[-count:]
    end = args.end
    if end is None:
        end = calendar.last_completed(datetime.now(EASTERN)).date
    sessions = calendar.sessions_ending(end, count)
    if options.source == "sim":
        check_simulated(sessions, calendar, "pass a later --end or fewer --sessions")
    return sessions


def gather_closes(
    market: Market,
    options: SourceOptions,
    preset: Preset,
    sessions: Sequence[SessionTimes],
) -> list[tuple[SessionTimes, FloatArray]]:
    """Each session's 1-minute closes, fetched and parsed like the daemon's history.

    A session without usable history is left out with a warning; the pairs name the sessions
    that are in, so the model's metadata describes what it was really trained on.
    """
    transport = market.transport
    closes: list[tuple[SessionTimes, FloatArray]] = []
    for session in tqdm(sessions, desc="history", unit="session", file=sys.stderr):
        # A recording answers by clock minute (the session's last); Schwab wants the wall clock.
        asked_at = datetime.now(EASTERN) if options.live else session.close - _ONE_MINUTE
        exchange = transport.get(
            "pricehistory", history_params(preset, session, session.close), asked_at
        )
        try:
            day, _ = parse_history(exchange, at=session.close, session_open=session.open)
        except DataError as problem:
            log.warning("%s: %s; left out", session.date, problem)
            continue
        if len(day) < 2:
            log.warning("%s: no 1-minute history, left out", session.date)
            continue
        closes.append((session, day))
    if not closes:
        raise ModelError("no session had 1-minute history to train on")
    return closes


def _report(result: FitResult) -> None:
    model = result.model
    low, high = model.low_state, 1 - model.low_state
    log.info(
        "best of %d fits: log-likelihood %.1f, converged %s, LOW variance %.4g, HIGH variance"
        " %.4g (ratio %.2f, returns scaled by %g)",
        result.restarts,
        result.log_likelihood,
        result.converged,
        model.variances[low],
        model.variances[high],
        result.variance_ratio,
        model.return_scale,
    )


def _metadata(
    args: argparse.Namespace,
    preset: Preset,
    sessions: Sequence[SessionTimes],
    result: FitResult,
) -> dict[str, object]:
    return {
        **result.model.metadata,
        "variant": preset.variant,
        "symbol": preset.symbol,
        "source": "replay" if args.replay else args.source,
        "seed": args.seed if args.source == "sim" and not args.replay else None,
        "first_session": sessions[0].date.isoformat(),
        "last_session": sessions[-1].date.isoformat(),
        "sessions": len(sessions),
        "n_observations": result.n_observations,
        "log_likelihood": result.log_likelihood,
        "variance_ratio": result.variance_ratio,
        "converged": result.converged,
        "restarts": result.restarts,
        "best_seed": result.best_seed,
        "versions": {
            name: importlib.metadata.version(name) for name in ("gexbot", "hmmlearn", "numpy")
        },
        "trained_at": datetime.now(EASTERN).isoformat(timespec="seconds"),
    }


if __name__ == "__main__":
    sys.exit(main())
