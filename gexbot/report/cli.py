"""`python -m gexbot.report`: one self-contained HTML page of what a run did and why.

    python -m gexbot.report --db quant_trading_data.db [--variant es|nq|all]
                            [--from DATE] [--to DATE] [--out report.html]

The database is read once, read-only, and closed before anything is drawn, so a daemon writing
it waits at most for that read. Exit codes as everywhere: 0 written, 2 a problem with the input
(one line says which), 1 a bug.
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
from gexbot.live import DEFAULT_DB
from gexbot.report.page import build_page
from gexbot.report.source import read_ledger
from gexbot.shell.logs import setup_logging

log = logging.getLogger("gexbot.report")


def build_parser() -> argparse.ArgumentParser:
    """The report's options (`--help` lists them)."""
    parser = ArgumentParser(
        prog="python -m gexbot.report",
        description="Write one self-contained HTML page (opens offline, can be mailed) of the"
        " trades, decisions and regimes in a gexbot database.",
    )
    parser.add_argument("--db", type=Path, default=Path(DEFAULT_DB),
                        help=f"the daemon's DuckDB file (default {DEFAULT_DB})")
    parser.add_argument("--variant", default="all",
                        help="es, nq or all (default all: side by side when both are there)")
    parser.add_argument("--from", dest="start", type=iso_date, metavar="DATE",
                        help="first session day (YYYY-MM-DD, default the first recorded)")
    parser.add_argument("--to", dest="end", type=iso_date, metavar="DATE",
                        help="last session day (YYYY-MM-DD, default the last recorded)")
    parser.add_argument("--out", type=Path, default=Path("report.html"),
                        help="the HTML file to write (default report.html)")
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
    variant = None if args.variant.lower() == "all" else args.variant.lower()
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; name the HTML file to write")
    ledger = read_ledger(args.db, variant, args.start, args.end)
    names = ", ".join(v.upper() for v in ledger.variants)
    page = build_page(ledger, title=f"gexbot report: {names}",
                      generated=datetime.now(EASTERN))
    _write(out, page)
    size_mb = out.stat().st_size / 1e6
    log.info("wrote %s (%.1f MB, %d minutes, %d trades) in %.1f s", out, size_mb,
             len(ledger.decisions), len(ledger.trades), time.perf_counter() - started)
    return EXIT_OK


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
