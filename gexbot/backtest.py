"""`python -m gexbot.backtest`: the strategy over simulated or recorded sessions, in a second.

    python -m gexbot.backtest --variant es --source sim --seed 7 --start 2026-10-01 --days 20
    python -m gexbot.backtest --variant es --replay recordings/es --set strategy.ofi.long_above=2.5
    python -m gexbot.backtest --variant es --features features/es/sim-seed7/<key> --db results.db

The feature tables are built (or reused) first, then the compiled rules run over them; the
trades are those the daemon makes over the same data. Prints a summary and writes the run, its
trades and its daily equity to the results database (`--db`, default results.db).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

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
from gexbot.research.enums import EXIT_COUNT_FIELDS, EXIT_REASONS
from gexbot.research.evaluate import Backtest, backtest
from gexbot.research.featureset import FeatureSet, load_features, open_features
from gexbot.research.records import to_trades
from gexbot.research.resultsdb import check_results_database, results_database, write_run
from gexbot.research.stats import max_drawdown, sharpe, sortino
from gexbot.shell.notify import signed_usd, usd
from gexbot.shell.schema import trade_row
from gexbot.wording import counted

DEFAULT_RESULTS = Path("results.db")
log = logging.getLogger("gexbot.backtest")


def build_parser() -> argparse.ArgumentParser:
    """Every option of the backtest (`--help` lists them)."""
    parser = ArgumentParser(prog="python -m gexbot.backtest",
                                     description="Backtest the strategy on feature tables.")
    add_data_arguments(parser)
    parser.add_argument("--features", type=Path, metavar="DIR",
                        help="a folder of feature tables (instead of naming the data)")
    parser.add_argument("--db", type=Path, default=DEFAULT_RESULTS,
                        help=f"results database (default {DEFAULT_RESULTS})")
    parser.add_argument("--version", action="version", version=f"gexbot {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the backtest; the return value is the exit code."""
    args = build_parser().parse_args(argv)
    setup_output()
    return run_command(lambda: run(args), log, f"nothing stored in {args.db}; the same command"
                       " reuses the feature tables built so far")


def run(args: argparse.Namespace) -> int:
    """Load or build the features, trade them, print the summary and store the run."""
    check_workers(args)
    check_output(args)
    check_results_database(args.db)
    preset, overrides = strategy_preset(args)
    spec = data_spec(args)
    if spec is not None and args.features is not None:
        raise ConfigError("name the data or --features DIR, not both")
    if spec is not None:
        features = load_features(args.variant, spec, args.out, preset=preset,
                                 model_path=args.model, workers=args.workers)
    elif args.features is not None:
        features = open_features(args.features, args.variant, preset, model_path=args.model,
                                 workers=args.workers)
    else:
        raise ConfigError("name the data: --source sim --start DATE --days N, --replay PATH,"
                          " or --features DIR")
    result = backtest(features, preset)
    record = _run_record(features, result, overrides, datetime.now(UTC))
    for line in summary_lines(features, result, record):
        print(line)
    with results_database(args.db) as con:
        write_run(con, record, [trade_row(t) for t in to_trades(result.trades, preset)],
                  equity_rows(features, result))
    print(f"{'stored':<16}run {record['run_id']} in {args.db}")
    return EXIT_OK


def equity_rows(features: FeatureSet, result: Backtest) -> list[tuple[Any, ...]]:
    """(session, PnL, balance after it, trades closed in it) per session."""
    balance = result.preset.strategy.starting_balance
    ends = result.trades["session"]
    rows = []
    for s, day in enumerate(features.dates):
        closed = np.flatnonzero(ends == s)
        if closed.size:
            balance = float(result.trades["balance"][closed[-1]])
        rows.append((day, float(result.evaluation.daily_pnl[0, s]), balance,
                     int(result.evaluation.session_trades[0, s])))
    return rows


def _run_record(features: FeatureSet, result: Backtest, overrides: dict[str, object],
                created_at: datetime) -> dict[str, Any]:
    """The run's row: what it ran on, with what, and its statistics."""
    evaluation = result.evaluation
    counts = evaluation.counts[0]
    daily = evaluation.daily_pnl[0]
    preset_json = result.preset.model_dump(mode="json")
    identity = {
        "variant": features.variant, "directory": str(features.directory.resolve()),
        "dates": [d.isoformat() for d in features.dates], "model": features.model_sha256,
        "preset": preset_json, "version": __version__,
    }
    run_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    start = result.preset.strategy.starting_balance
    drawdown, _ = max_drawdown(start, result.trades["balance"])
    skipped = sum(reason is not None for reason in features.skip_reason)
    return {
        "run_id": run_id, "created_at": created_at, "variant": features.variant,
        "gexbot_version": __version__, "data": json.dumps(features.data, sort_keys=True),
        "features": str(features.directory), "model_sha256": features.model_sha256,
        "preset": json.dumps(preset_json, sort_keys=True),
        "overrides": json.dumps(overrides, sort_keys=True),
        "sessions": features.n_sessions, "minutes": features.n_minutes,
        "skipped_minutes": skipped, "trades": int(counts["trades"]), "wins": int(counts["wins"]),
        "pnl": float(counts["end_balance"] - start), "max_drawdown": drawdown,
        "sharpe": sharpe(daily), "sortino": sortino(daily),
        "exposure": float(evaluation.exposure[0]), "end_balance": float(counts["end_balance"]),
    }


def summary_lines(features: FeatureSet, result: Backtest, record: dict[str, Any]) -> list[str]:
    """The printed summary, aligned like the daemon's closing lines."""
    counts = result.evaluation.counts[0]
    trades = int(counts["trades"])
    rate = f"{int(counts['wins']) / trades:.1%}" if trades else "n/a"
    start = result.preset.strategy.starting_balance
    drawdown, share = max_drawdown(start, result.trades["balance"])
    exits = ", ".join(f"{reason} {int(counts[name])}"
                      for reason, name in zip(EXIT_REASONS, EXIT_COUNT_FIELDS, strict=True))
    skipped = ", ".join(f"{kind} {n}" for kind, n in features.skipped_by_kind().items())
    rows = [
        ("sessions", f"{features.n_sessions} ({features.dates[0]} to {features.dates[-1]}),"
                     f" {counted(features.n_minutes, 'minute')}"),
        ("skipped minutes", f"{record['skipped_minutes']}" + (f" ({skipped})" if skipped else "")),
        ("trades", f"{trades} ({int(counts['wins'])} won, win rate {rate})"),
        ("total PnL", signed_usd(record["pnl"])),
        ("max drawdown", f"{usd(drawdown)} ({share:.2%}) on closed trades"),
        ("Sharpe", _ratio(record["sharpe"])),
        ("Sortino", _ratio(record["sortino"])),
        ("exposure", f"{record['exposure']:.1%} of decided minutes holding a position"),
        ("exits", exits),
        ("final balance", usd(record["end_balance"])),
    ]
    return [f"{name:<16}{value}" for name, value in rows]


def _ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f} (daily PnL, annualised by sqrt(252))"


if __name__ == "__main__":
    sys.exit(main())
