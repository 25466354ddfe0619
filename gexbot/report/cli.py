"""`python -m gexbot.report`: one self-contained HTML page of what a run did and why.

    python -m gexbot.report --db quant_trading_data.db [--variant es|nq|all]
                            [--from DATE] [--to DATE] [--out report.html]
                            [--sweep results.db [--sweep-id KEY] [--x KEY] [--y KEY]
                             [--metric sharpe|sortino|pnl|max_drawdown]]

Each database is read once, read-only, and closed before anything is drawn, so a daemon (or a
sweep) writing it waits at most for that read. With `--sweep` and no `--db` the page is of the
sweep alone; without `--sweep` the daemon's database is `--db` or its default. Exit codes as
everywhere: 0 written, 2 a problem with the input (one line says which), 1 a bug.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from gexbot import __version__
from gexbot.cli import ArgumentParser, iso_date
from gexbot.core.session import EASTERN
from gexbot.errors import EXIT_OK, ConfigError, exit_code_of
from gexbot.report.page import build_page, html_page
from gexbot.report.source import printable, read_ledger
from gexbot.report.sweepsource import METRIC_NAMES, Sweep
from gexbot.run.runner import DEFAULT_DB
from gexbot.shell.logs import setup_logging

log = logging.getLogger("gexbot.report")
REPORT_HEAD_BYTES = 4096
"""A report names itself in its `<title>`, within its first bytes (the scripts come after)."""


def build_parser() -> argparse.ArgumentParser:
    """The report's options (`--help` lists them)."""
    parser = ArgumentParser(
        prog="python -m gexbot.report",
        description="Write one self-contained HTML page (opens offline, can be mailed) of the"
        " trades, decisions and regimes in a gexbot database.",
    )
    parser.add_argument("--db", type=Path,
                        help=f"the daemon's DuckDB file (default {DEFAULT_DB}, none with --sweep)")
    parser.add_argument("--variant",
                        help="es, nq or all (default all: side by side when both are there)")
    parser.add_argument("--from", dest="start", type=iso_date, metavar="DATE",
                        help="first session day (YYYY-MM-DD, default the first recorded)")
    parser.add_argument("--to", dest="end", type=iso_date, metavar="DATE",
                        help="last session day (YYYY-MM-DD, default the last recorded)")
    parser.add_argument("--out", type=Path, default=Path("report.html"),
                        help="the HTML file to write (default report.html)")
    sweep = parser.add_argument_group("a sweep's results (python -m gexbot.sweep)")
    sweep.add_argument("--sweep", type=Path, metavar="RESULTS_DB",
                       help="add the sweep's grid, in and out of sample, walk-forward and"
                       " overfitting figures (alone when --db is not given)")
    sweep.add_argument("--sweep-id", metavar="KEY",
                       help="which sweep of the file (its key or the start of it; default the"
                       " latest)")
    sweep.add_argument("--x", metavar="KEY", help="the parameter across the maps (default: the"
                       " one with the most values)")
    sweep.add_argument("--y", metavar="KEY", help="the parameter up the maps (default: the one"
                       " with the next most values)")
    sweep.add_argument("--metric", choices=METRIC_NAMES,
                       help="what the maps show (default: what the sweep ranked by)")
    parser.add_argument("--version", action="version", version=f"gexbot {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write the report; the return value is the process exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(None, "text", ())
    return exit_code_of(lambda: run(args), log)


def run(args: argparse.Namespace) -> int:
    """Read, draw, write; the page goes to a temporary file first, so a failure leaves no
    half-written report behind."""
    started = time.perf_counter()
    db = _check_options(args)
    chosen = (args.variant or "all").lower()
    variant = None if chosen == "all" else chosen
    out = Path(args.out)
    check_out(out)
    sweep = _read_sweep(args) if args.sweep is not None else None
    ledger = read_ledger(db, variant, args.start, args.end) if db is not None else None
    generated = datetime.now(EASTERN)
    sections = [] if sweep is None else _sweep_sections(sweep, args)
    if ledger is not None:
        names = ", ".join(v.upper() for v in ledger.variants)
        page = build_page(ledger, title=f"gexbot report: {names}", generated=generated,
                          extra_sections=sections)
        what = f"{len(ledger.decisions)} minutes, {len(ledger.trades)} trades"
    elif sweep is not None:  # no --db: the sweep alone
        from gexbot.report.sweeppage import sweep_title

        page = html_page(sweep_title(sweep),
                         f"{sweep.path} · generated {generated:%Y-%m-%d %H:%M:%S %Z}", sections)
        what = "sweep only"
    if sweep is not None:
        what += f", sweep {sweep.key} of {len(sweep.results)} combinations"
    _write(out, page)
    size_mb = out.stat().st_size / 1e6
    log.info("wrote %s (%.1f MB, %s) in %.1f s", out, size_mb, printable(what),
             time.perf_counter() - started)
    return EXIT_OK


def _check_options(args: argparse.Namespace) -> Path | None:
    """The daemon's database to read, if any; options that have nothing to act on refused."""
    if args.sweep is None:
        for option, value in (("--sweep-id", args.sweep_id), ("--x", args.x), ("--y", args.y),
                              ("--metric", args.metric)):
            if value is not None:
                raise ConfigError(f"{option} chooses what the sweep section shows; add --sweep"
                                  " RESULTS_DB (the file python -m gexbot.sweep --db wrote)")
        return Path(args.db) if args.db is not None else Path(DEFAULT_DB)
    if args.db is None:
        for option, value in (("--variant", args.variant), ("--from", args.start),
                              ("--to", args.end)):
            if value is not None:
                raise ConfigError(f"{option} chooses rows of the daemon's database; add --db"
                                  " DB for a page of both, or leave it out for the sweep alone")
    return Path(args.db) if args.db is not None else None


def _read_sweep(args: argparse.Namespace) -> Sweep:
    from gexbot.report.sweepsource import read_sweep

    return read_sweep(args.sweep, args.sweep_id)


def _sweep_sections(sweep: Sweep, args: argparse.Namespace) -> list[str]:
    """The sweep's sections; they need the research extra (scipy, numba) for its figures."""
    try:
        from gexbot.report.sweeppage import sweep_sections
    except ImportError as missing:
        raise ConfigError(f"--sweep needs the research extra ({missing.name} is not installed):"
                          " pip install 'gexbot[research]'") from None
    return sweep_sections(sweep, args.x, args.y, args.metric)


def check_out(out: Path) -> None:
    """Refuse an `--out` that is not free or an earlier report: the page replaces the file at
    `--out`, and a database, a document or a link a user keeps there is not gexbot's to
    replace (checked before anything is read)."""
    if out.is_symlink():
        raise ConfigError(f"--out {out} is a symbolic link; name the file it points to")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; name the HTML file to write")
    try:
        with out.open("rb") as handle:
            head = handle.read(REPORT_HEAD_BYTES)
    except FileNotFoundError:
        return
    except OSError as problem:
        raise ConfigError(f"--out {out}: cannot read what is there ({problem.strerror})") from None
    if not (head.startswith(b"<!DOCTYPE html>") and b"<title>gexbot " in head):
        raise ConfigError(
            f"--out {out} exists and is not a report gexbot wrote; gexbot replaces only its own"
            " reports: move it away or name another --out"
        )


def _write(out: Path, page: str) -> None:
    folder = out.parent if str(out.parent) else Path(".")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{out.name}.", dir=folder)
    except OSError as problem:
        raise ConfigError(f"--out {out}: cannot write there ({problem.strerror})") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(page)
        os.chmod(name, 0o644)
        os.replace(name, out)
    except OSError as problem:
        Path(name).unlink(missing_ok=True)
        raise ConfigError(f"--out {out}: cannot write it ({problem.strerror})") from None


if __name__ == "__main__":
    sys.exit(main())
