"""`python -m gexbot.live`: the daemon's command line.

It reads the arguments, the environment (once, `gexbot.environment`) and the log settings,
turns the arguments into a `RunPlan`, installs the signal handlers that stop the run after the
current minute, and hands the plan to `gexbot.run.run`, where the run is put together. The
exception tree maps to exit codes (errors.py).
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
from collections.abc import Sequence
from pathlib import Path

from gexbot import __version__
from gexbot.cli import ArgumentParser, iso_date
from gexbot.environment import add_env_file_argument, load_environment
from gexbot.errors import EXIT_OK, ConfigError, exit_code_of
from gexbot.run import RunPlan, run
from gexbot.run.plan import SPEEDS
from gexbot.run.runner import DEFAULT_DB
from gexbot.shell.logs import setup_logging

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
    return exit_code_of(lambda: _main(args, stop), log)


def _main(args: argparse.Namespace, stop: signals.StopRequest) -> int:
    """Read the environment, set up the logs, make the plan, run it."""
    try:
        env = load_environment(args.env_file)
        redactor = setup_logging(args.log_level, args.log_format, env.secrets.values(), env=env)
    except ConfigError:
        setup_logging("INFO", args.log_format, ())  # the refusal prints like any other line
        raise
    stop.install(lambda name: log.info("%s received: finishing the current minute", name))
    if env.ignored:
        log.info("%s: %s ignored (gexbot reads only SCHWAB_*, GEXBOT_* and DISCORD_* there)",
                 env.env_file, ", ".join(env.ignored))
    run(plan_of(args), env=env, stop=stop.event, redactor=redactor)
    return EXIT_OK


def plan_of(args: argparse.Namespace) -> RunPlan:
    """The run the parsed command line asks for."""
    return RunPlan(
        variant=args.variant,
        source=args.source,
        seed=args.seed,
        replay=tuple(args.replay or ()),
        record=args.record,
        start=args.start,
        days=args.days,
        speed=args.speed,
        minutes=args.minutes,
        db=args.db,
        preset=args.preset,
        model=args.model,
        http_port=args.http_port,
        http_host=args.http_host,
    )


if __name__ == "__main__":
    sys.exit(main())
