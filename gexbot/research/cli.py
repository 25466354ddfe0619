"""Command-line pieces shared by `gexbot.features` and `gexbot.backtest`: which data, which preset.

Both commands name their data the way the daemon does (`--source sim --seed --start --days` or
`--replay PATH ...`) and adjust the preset with `--preset FILE` and `--set KEY=VALUE`, validated
by the preset schema; every refusal is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from gexbot.cli import iso_date
from gexbot.errors import ConfigError, Interrupted, exit_code_of
from gexbot.research.markets import DataSpec
from gexbot.research.params import apply_overrides, parse_assignment
from gexbot.settings import Preset, load_variant
from gexbot.shell.logs import setup_logging
from gexbot.shell.signals import interrupt_on_stop_signals

DEFAULT_FEATURES = Path("features")
WORKERS_PER_CORE = 4


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--variant, the data, --preset/--set/--model, where tables go and how many processes."""
    parser.add_argument("--variant", required=True, choices=["es", "nq"], help="which preset")
    data = parser.add_argument_group("data (as for python -m gexbot.live)")
    data.add_argument("--source", choices=["sim"], help="the simulated market")
    data.add_argument("--seed", type=int, default=1, help="simulated market seed (default 1)")
    data.add_argument("--start", type=iso_date, help="first simulated session (YYYY-MM-DD)")
    data.add_argument("--days", type=int, help="simulated sessions")
    data.add_argument("--replay", nargs="+", type=Path, metavar="PATH",
                      help="recorded sessions (files or folders)")
    strategy = parser.add_argument_group("strategy")
    strategy.add_argument("--preset", type=Path, help="a preset YAML file instead of the shipped")
    strategy.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          dest="assignments",
                          help="override one preset setting, e.g. strategy.ofi.long_above=2.5"
                          " (repeatable)")
    strategy.add_argument("--model", type=Path, help="HMM model file (default: the preset's)")
    tables = parser.add_argument_group("feature tables")
    tables.add_argument("--out", type=Path, default=DEFAULT_FEATURES,
                        help=f"where feature tables are kept (default {DEFAULT_FEATURES})")
    tables.add_argument("--workers", type=int, help="processes building days (default: cores)")


def data_spec(args: argparse.Namespace) -> DataSpec | None:
    """The data the arguments name; None when they name none."""
    if args.replay:
        if args.source or args.start or args.days is not None or args.seed != 1:
            raise ConfigError("--replay takes no --source, --seed, --start or --days")
        return DataSpec.recordings(args.replay)
    if args.source == "sim":
        return DataSpec(source="sim", seed=args.seed, start=args.start,
                        days=args.days if args.days is not None else 0)
    if args.start or args.days is not None:
        raise ConfigError("--start and --days describe the simulated market: add --source sim")
    return None


def strategy_preset(args: argparse.Namespace) -> tuple[Preset, dict[str, object]]:
    """The preset (`--preset` or the shipped one) with every `--set` applied and validated."""
    preset = load_variant(args.variant, args.preset)
    if preset.variant != args.variant:
        raise ConfigError(f"{args.preset}: a preset for variant {preset.variant!r}, not"
                          f" {args.variant!r}")
    overrides = dict(parse_assignment(text) for text in args.assignments)
    return apply_overrides(preset, overrides), overrides


def max_workers() -> int:
    """The most worker processes a command starts here: more than a few per core only adds
    processes (each a Python with numba and the feature arrays), and a mistyped count must not
    start thousands."""
    return WORKERS_PER_CORE * (os.cpu_count() or 1)


def check_workers(args: argparse.Namespace) -> None:
    """ConfigError for a worker count below 1 or above `max_workers()`."""
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if args.workers is not None and args.workers > max_workers():
        raise ConfigError(
            f"--workers {args.workers}: at most {max_workers()} on this machine"
            f" ({WORKERS_PER_CORE} per core)"
        )


def check_output(args: argparse.Namespace) -> None:
    """ConfigError for an --out that exists and is no folder (tables are written under it)."""
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out: {args.out} is not a folder")


def run_command(body: Callable[[], int], log: logging.Logger, interrupted: str) -> int:
    """A research command's exit code: SIGTERM and SIGHUP stop it as Ctrl-C does, and a stop
    before its work is done is one line saying `interrupted` and exit 2, never exit 0 (which
    would let `features build && backtest` go on)."""
    interrupt_on_stop_signals()

    def guarded() -> int:
        try:
            return body()
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted: {interrupted}") from None

    return exit_code_of(guarded, log)


def setup_output() -> None:
    """Log lines (progress, refusals) on stderr as the daemon writes them; results on stdout."""
    setup_logging(None, "text", (), stream=sys.stderr)
