"""`python -m gexbot.sweep`: a grid of parameter sets over recorded or simulated sessions.

Runs on Dask (a LocalCluster here, or the cluster `--scheduler` names), stores one row per
combination in DuckDB as results arrive, and measures how much of the best result is luck
(PBO, deflated Sharpe ratio) and what choosing by walking forward would have given.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

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
from gexbot.research.cluster import CONNECT_TIMEOUT_S
from gexbot.research.metrics import METRICS
from gexbot.research.sweeper import SweepPlan, run_sweep
from gexbot.research.walkforward import parse_windows

log = logging.getLogger("gexbot.sweep")
DEFAULT_RESULTS = Path("results.db")
MAX_CONNECT_TIMEOUT_S = 3600.0


def build_parser() -> argparse.ArgumentParser:
    """Every option of the sweep (`--help` lists them)."""
    parser = ArgumentParser(
        prog="python -m gexbot.sweep",
        description="Evaluate a grid of parameter sets on Dask; results, PBO, deflated Sharpe"
        " ratio and walk-forward into a DuckDB file.",
    )
    add_data_arguments(parser)
    sweep = parser.add_argument_group("sweep")
    sweep.add_argument("--grid", type=Path, required=True, help="the grid YAML file")
    sweep.add_argument("--db", type=Path, default=DEFAULT_RESULTS,
                       help=f"results database (default {DEFAULT_RESULTS})")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a local"
                       " cluster of --workers processes)")
    sweep.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT_S,
                       metavar="SECONDS",
                       help=f"how long to try --scheduler (default {CONNECT_TIMEOUT_S:g})")
    sweep.add_argument("--walk-forward", metavar="TRAIN:TEST",
                       help="choose on TRAIN sessions, trade the next TEST, move on")
    sweep.add_argument("--metric", choices=sorted(METRICS), default="sharpe",
                       help="what ranks combinations (default sharpe of daily PnL)")
    sweep.add_argument("--yes", action="store_true",
                       help="run a grid larger than the limit without asking")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--version", action="version", version=f"gexbot {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a sweep; the return value is the process exit code."""
    args = build_parser().parse_args(argv)
    setup_output()
    return run_command(lambda: _run(args), log,
                       f"the same command goes on from what is stored in {args.db}")


def _run(args: argparse.Namespace) -> int:
    check_workers(args)
    check_output(args)
    if not 0 < args.connect_timeout <= MAX_CONNECT_TIMEOUT_S:  # also NaN
        raise ConfigError(
            f"--connect-timeout {args.connect_timeout:g}: expected seconds above 0, at most"
            f" {MAX_CONNECT_TIMEOUT_S:g}"
        )
    spec = data_spec(args)
    if spec is None:
        raise ConfigError("name the data: --source sim --start DATE --days N, or --replay PATH")
    preset, _ = strategy_preset(args)
    plan = SweepPlan(
        variant=args.variant,
        data=spec,
        grid=args.grid,
        db=args.db,
        features=args.out,
        preset=preset,
        model=args.model,
        scheduler=args.scheduler,
        workers=args.workers or os.cpu_count() or 2,
        walk_forward=None if args.walk_forward is None else parse_windows(args.walk_forward),
        metric=args.metric,
        yes=args.yes,
        connect_timeout_s=args.connect_timeout,
    )
    run_sweep(plan, echo=lambda line: print(line, flush=True), progress=not args.no_progress)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
