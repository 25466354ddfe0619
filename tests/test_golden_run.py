"""Twenty simulated sessions through the CLI: deterministic, every exit reason, every row lawful.

Two runs of `python -m gexbot.live --variant es --source sim --days 20 --speed max --seed 7
--start 2026-10-01` go side by side in subprocesses; their `trades` must be identical, every
exit reason must occur, every `decisions` row must agree with an independent reading of the
rules (`audit.py`), and every trade must match the minute that closed it.
"""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from audit import SessionFacts, audit

from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.market.feed import history_params
from gexbot.market.parse import parse_history
from gexbot.market.sim import SimMarket
from gexbot.settings import load_variant

ARGS = ["--variant", "es", "--source", "sim", "--days", "20", "--speed", "max", "--seed", "7",
        "--start", "2026-10-01"]
PRESET = load_variant("es")


def _rows(db: Path, sql: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("SET TimeZone = 'America/New_York'")
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("golden")
    dbs = (folder / "first.db", folder / "second.db")
    processes = [
        subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "gexbot.live", *ARGS, "--db", str(db)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for db in dbs
    ]
    for process in processes:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output
    return dbs


def test_same_seed_same_trades(runs: tuple[Path, Path]) -> None:
    first, second = (_rows(db, 'SELECT * FROM trades ORDER BY "timestamp"') for db in runs)
    assert first
    assert first == second


def test_every_exit_reason_occurs(runs: tuple[Path, Path]) -> None:
    reasons = {row["exit_reason"] for row in _rows(runs[0], "SELECT exit_reason FROM trades")}
    assert reasons == {"TARGET", "STOP_LOSS", "REGIME_FLIP", "EOD_FLATTEN"}


def test_every_decision_agrees_with_the_rules(runs: tuple[Path, Path]) -> None:
    rows = _rows(runs[0], 'SELECT * FROM decisions ORDER BY "at"')
    calendar = TradingCalendar(PRESET.calendar, PRESET.strategy.flatten_minutes_before_close)
    market = SimMarket(PRESET, calendar, 7)

    def facts(day: date) -> SessionFacts:
        session = calendar.session(day)
        asked = session.open + timedelta(minutes=1)
        answer = market.get("pricehistory", history_params(PRESET, session, asked), asked)
        _, previous_close = parse_history(answer, asked, session.open)
        return SessionFacts(flatten=session.flatten, previous_close=previous_close)

    def session_of(at: datetime) -> date:
        return at.astimezone(EASTERN).date()

    assert len(rows) == 20 * 390  # October 2026: no holiday, no early close
    assert audit(rows, PRESET.strategy, facts, session_of) == []
    actions = {row["action"] for row in rows}
    assert {"WAIT", "LONG", "SHORT", "HOLD", "CLOSE"} <= actions


def test_every_trade_is_the_minute_that_closed_it(runs: tuple[Path, Path]) -> None:
    trades = _rows(runs[0], 'SELECT * FROM trades ORDER BY "timestamp"')
    closes = _rows(runs[0], "SELECT * FROM decisions WHERE action = 'CLOSE' ORDER BY \"at\"")
    entries = {
        row["at"]: row
        for row in _rows(runs[0], "SELECT * FROM decisions WHERE action IN ('LONG', 'SHORT')")
    }
    assert len(trades) == len(closes)
    balance = PRESET.strategy.starting_balance
    for trade, close in zip(trades, closes, strict=True):
        entry = entries[trade["entry_time"]]
        sign = 1.0 if trade["action"] == "LONG" else -1.0
        assert (trade["timestamp"], trade["price"], trade["exit_reason"]) == (
            close["at"], close["spot"], close["reason"]
        )
        assert trade["symbol"] == "$SPX"
        assert trade["action"] == entry["action"]
        assert trade["regime"] == close["gex_regime"]
        assert trade["entry_price"] == pytest.approx(entry["spot"] + sign * 0.25, abs=1e-9)
        assert trade["size"] <= 0.05 * balance + 1e-6
        expected = trade["size"] * sign * (trade["price"] - trade["entry_price"])
        assert trade["pnl"] == pytest.approx(expected / trade["entry_price"], rel=1e-12)
        balance += trade["pnl"]
        assert math.isclose(close["balance"], balance, rel_tol=1e-12)
