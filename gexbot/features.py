"""`python -m gexbot.features build`: per-minute feature tables of simulated or recorded sessions.

    python -m gexbot.features build --variant es --source sim --seed 7 --start 2026-10-01 \\
        --days 250 --out features
    python -m gexbot.features build --variant es --replay recordings/es --out features

One Parquet file per session under OUT/<variant>/<key>/ (the key names the table settings);
tables already built for the same data, settings, model and gexbot version are reused.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from gexbot import __version__
from gexbot.cli import ArgumentParser
from gexbot.errors import EXIT_OK, ConfigError
from gexbot.research.cli import (
    add_data_arguments,
    check_output,
    check_workers,
    data_spec,
    run_command,
    setup_output,
    strategy_preset,
)
from gexbot.research.featureset import load_features
from gexbot.wording import counted

log = logging.getLogger("gexbot.features")


def build_parser() -> argparse.ArgumentParser:
    """The command and its `build` subcommand."""
    parser = ArgumentParser(prog="python -m gexbot.features",
                                     description="Build per-minute feature tables for research.")
    parser.add_argument("--version", action="version", version=f"gexbot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build (or reuse) the tables of some sessions")
    add_data_arguments(build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the return value is the exit code."""
    args = build_parser().parse_args(argv)
    setup_output()
    return run_command(lambda: _build(args), log,
                       "the tables built so far are kept; the same command builds the rest")


def _build(args: argparse.Namespace) -> int:
    check_workers(args)
    check_output(args)
    preset, _ = strategy_preset(args)
    spec = data_spec(args)
    if spec is None:
        raise ConfigError("name the data: --source sim --start DATE --days N, or --replay PATH")
    started = time.perf_counter()
    features = load_features(args.variant, spec, args.out, preset=preset, model_path=args.model,
                             workers=args.workers)
    skipped = sum(reason is not None for reason in features.skip_reason)
    print(f"{args.variant}: {counted(features.n_sessions, 'session')} {features.dates[0]} to"
          f" {features.dates[-1]}, {counted(features.n_minutes, 'minute')} ({skipped} skipped)"
          f" in {time.perf_counter() - started:.1f} s")
    print(f"tables: {features.directory}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
