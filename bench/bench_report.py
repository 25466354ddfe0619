"""Time and size of `python -m gexbot.report` for a year of minutes of two variants.

    python -m bench.bench_report                  # 250 sessions of ES and NQ, synthetic rows
    python -m bench.bench_report --sessions 60    # a shorter period
    python -m bench.bench_report --keep year.db   # keep the database (to open the page by hand)

The database has the store's schema (`ensure_schema`) and rows shaped like the daemon's: every
session minute of the XNYS calendar, a random-walk price with bands from its last 20 prices,
Hurst and OFI that wander, GEX and HMM regimes in runs, `blocked_by` lists from those, about
three trades a day with HOLD minutes between entry and exit, and the balance moving on exits.
Building it is not timed. The report is then written twice: in this process (read, draw,
write) and as the command a user types (a fresh interpreter, imports included); each is given
in wall-clock seconds and in CPU seconds (on a shared machine the CPU figure is the steadier).

The baseline, measured in the same run, is the obvious page: one complete plotly figure per
session day (what `fig.to_html` would give for each), built for the first 20 days and scaled to
the whole period. The ratio says what packing the days' columns saves.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import plotly.io as pio

from gexbot.core.session import TradingCalendar
from gexbot.report import days
from gexbot.report.cli import main as report_main
from gexbot.report.source import read_ledger
from gexbot.shell.schema import DECISION_COLUMNS, TRADE_COLUMNS, ensure_schema
from gexbot.shell.store import TRADING

LEVELS = {"es": ("$SPX", 6500.0), "nq": ("$NDX", 23000.0)}
BASELINE_DAYS = 20


def synthetic_day(
    variant: str, minutes: pd.DatetimeIndex, balance: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, list[tuple[object, ...]], float]:
    """One session of decision rows and trades; returns the closing balance too."""
    symbol, level = LEVELS[variant]
    n = len(minutes)
    spot = level * (1 + np.cumsum(rng.normal(0, 4e-4, n)))
    roll = pd.Series(spot).rolling(20, min_periods=10)
    mid, sigma = roll.mean().to_numpy(), roll.std().to_numpy()
    hurst = np.clip(0.45 + np.cumsum(rng.normal(0, 0.02, n)), 0.05, 0.95)
    hurst[:21] = np.nan
    ofi = np.exp(rng.normal(0, 0.8, n))
    gex = np.where((np.arange(n) // 90 + rng.integers(0, 2)) % 3 == 2, "NEGATIVE", "POSITIVE")
    hmm = np.where(np.sin(np.arange(n) / 25 + rng.uniform(0, 6)) > 0.3, "HIGH", "LOW")
    hmm[:20] = None
    action = np.full(n, "WAIT", dtype=object)
    reason = np.full(n, None, dtype=object)
    balances = np.full(n, balance)
    trades = []
    for entry in sorted(rng.choice(np.arange(40, n - 30), size=3, replace=False)):
        if action[entry] != "WAIT":
            continue
        exit_ = entry + int(rng.integers(5, 25))
        side = "LONG" if rng.random() < 0.5 else "SHORT"
        pnl = float(rng.normal(3.0, 8.0))
        action[entry], action[entry + 1 : exit_], action[exit_] = side, "HOLD", "CLOSE"
        reason[exit_] = str(rng.choice(["TARGET", "TARGET", "TARGET", "STOP_LOSS",
                                        "EOD_FLATTEN", "REGIME_FLIP"]))
        balance += pnl
        balances[exit_:] = balance
        trades.append((minutes[exit_], symbol, side, spot[exit_], 5000.0, str(gex[exit_]), pnl,
                       minutes[entry], spot[entry], reason[exit_], "REVERSION", variant))
    blocked = [_blockers(a, g, h, u, s, m) for a, g, h, u, s, m in
               zip(action, gex, hmm, hurst, spot, mid, strict=True)]
    if rng.random() < 0.02:
        action[100:110], reason[100:110] = "SKIP", "quote_missing: no quote for $SPX"
    frame = pd.DataFrame({
        "variant": variant, "at": minutes, "spot": spot, "net_gex": 1e9, "gex_regime": gex,
        "ofi": ofi, "hurst": hurst, "hmm_state": hmm, "band_mid": mid,
        "band_upper": mid + 2 * sigma, "band_lower": mid - 2 * sigma, "position": None,
        "target": None, "stop": None, "action": action, "reason": reason,
        "blocked_by": blocked, "balance": balances, "excluded_contracts": 0,
    })
    return frame, trades, balance


def _blockers(action: str, gex: str, hmm: object, hurst: float, spot: float,
              mid: float) -> str | None:
    if action in ("LONG", "SHORT"):
        return None
    found = ["position"] if action in ("HOLD", "CLOSE") else []
    found += ["warmup"] if hmm is None or np.isnan(hurst) else []
    found += ["hmm"] if hmm == "HIGH" else []
    found += ["gex"] if gex == "NEGATIVE" else []
    found += ["hurst"] if hurst >= 0.5 else []
    found += ["band"] if np.isnan(mid) or abs(spot - mid) < 8 else ["ofi"]
    return ",".join(found)


def build_database(path: Path, sessions: int, seed: int = 1) -> int:
    """A database of `sessions` sessions of es and nq; returns the number of decision rows."""
    calendar = TradingCalendar("XNYS", 15)
    chosen = calendar.sessions_ending(date(2026, 9, 30), sessions)
    rng = np.random.default_rng(seed)
    con = duckdb.connect(str(path))
    ensure_schema(con, path, TRADING)
    rows = 0
    for variant in LEVELS:
        balance = 100_000.0
        frames, trades = [], []
        for session in chosen:
            minutes = pd.date_range(session.open, session.close, freq="1min", inclusive="left")
            frame, closed, balance = synthetic_day(variant, minutes, balance, rng)
            frames.append(frame)
            trades.extend(closed)
        decisions = pd.concat(frames, ignore_index=True)[[n for n, _ in DECISION_COLUMNS]]
        trade_frame = pd.DataFrame(trades, columns=[n for n, _ in TRADE_COLUMNS])
        con.register("new_decisions", decisions)
        con.register("new_trades", trade_frame)
        con.execute("INSERT INTO decisions SELECT * FROM new_decisions")
        con.execute("INSERT INTO trades SELECT * FROM new_trades")
        rows += len(decisions)
    con.close()
    return rows


def baseline_bytes_per_day(database: Path) -> tuple[float, float]:
    """Size and seconds per day of a full plotly figure per day (the first BASELINE_DAYS)."""
    ledger = read_ledger(database, "es")
    decisions = ledger.decisions
    dates = decisions["at"].dt.date
    chosen = sorted(set(dates))[:BASELINE_DAYS]
    started = time.perf_counter()
    size = 0
    for day in chosen:
        rows = decisions[dates == day]
        fig = days.day_figure(None)
        for trace in fig.data:
            column = {"spot": "spot", "upper": "band_upper", "mid": "band_mid",
                      "lower": "band_lower", "hurst": "hurst", "ofi": "ofi"}.get(trace.meta)
            if column is not None:
                trace.x = rows["at"].dt.tz_localize(None).dt.strftime("%Y-%m-%d %H:%M").tolist()
                trace.y = rows[column].round(2).tolist()
        size += len(pio.to_html(fig, include_plotlyjs=False, full_html=False))
    seconds = time.perf_counter() - started
    return size / len(chosen), seconds / len(chosen)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--keep", type=Path, help="write the database here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = args.keep or Path(folder) / "year.db"
        database.unlink(missing_ok=True)
        started = time.perf_counter()
        rows = build_database(database, args.sessions)
        print(f"database: {args.sessions} sessions x 2 variants, {rows:,} decision rows,"
              f" {database.stat().st_size / 1e6:.1f} MB, built in"
              f" {time.perf_counter() - started:.1f} s (not timed below)")
        out = Path(folder) / "report.html"
        started, cpu = time.perf_counter(), time.process_time()
        code = report_main(["--db", str(database), "--out", str(out)])
        in_process = time.perf_counter() - started
        in_process_cpu = time.process_time() - cpu
        assert code == 0, "the report failed"
        command = [sys.executable, "-m", "gexbot.report", "--db", str(database),
                   "--out", str(out)]
        started, before = time.perf_counter(), _children_cpu()
        subprocess.run(command, check=True, capture_output=True)  # noqa: S603 (our module)
        whole = time.perf_counter() - started
        whole_cpu = _children_cpu() - before
        size = out.stat().st_size
        per_day, per_day_s = baseline_bytes_per_day(database)
        baseline = per_day * args.sessions * 2
        print(f"report: {size / 1e6:.1f} MB; in process (read, draw, write) {in_process:.2f} s"
              f" ({in_process_cpu:.2f} s CPU); as a command (imports included) {whole:.2f} s"
              f" ({whole_cpu:.2f} s CPU)")
        print(f"baseline, a full plotly figure per day: {baseline / 1e6:.0f} MB of day charts"
              f" ({per_day / 1e3:.0f} kB a day) and {per_day_s * args.sessions * 2:.1f} s to"
              f" build them; the packed page is {baseline / size:.1f}x smaller")


if __name__ == "__main__":
    main()
