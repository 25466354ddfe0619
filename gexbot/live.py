"""`python -m gexbot.live`: the daemon's CLI, and the one place where objects are wired together.

Everything else receives what it needs; this module reads the command line, the environment
and the preset, picks the market (live Schwab, simulated, replayed), the clock and the sinks,
and maps the exception tree to exit codes (errors.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from dotenv import load_dotenv

from gexbot import __version__
from gexbot.errors import EXIT_BUG, EXIT_OK, GexbotError

DEFAULT_DB = "quant_trading_data.db"
log = logging.getLogger("gexbot")


def parse_speed(text: str) -> float | None:
    """`max` (None: as fast as possible) or a positive multiple of real time."""
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
    return speed


def parse_date(text: str) -> date:
    """An ISO date (YYYY-MM-DD)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-10-01, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """Every option of the daemon (`--help` lists them)."""
    parser = argparse.ArgumentParser(
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
        type=parse_date,
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
    parser.add_argument("--version", action="version", version=f"gexbot {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the daemon; the return value is the process exit code."""
    load_dotenv(override=False)
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except GexbotError as problem:
        log.critical("%s", problem)
        return problem.exit_code
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception:
        log.exception("unexpected error: this is a bug; a restart resumes from the database")
        return EXIT_BUG


def run(args: argparse.Namespace) -> int:
    """Wire the daemon from parsed arguments and run it to the end of its sessions."""
    raise NotImplementedError


if __name__ == "__main__":
    sys.exit(main())
