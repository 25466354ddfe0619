"""Small gexbot databases for the report's tests, written with the store's own schema."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from gexbot.core.session import EASTERN
from gexbot.report.source import DECISION_FIELDS, TRADE_FIELDS, Ledger, normalized
from gexbot.shell.schema import (
    DECISION_COLUMNS,
    TRADE_COLUMNS,
    Row,
    ensure_schema,
    write_decisions,
    write_trades,
)
from gexbot.shell.store import TRADING

OPEN = time(9, 30)
HOSTILE = '<script>window.__pwned = 1</script>"><img src=x onerror="window.__pwned = 2">'
"""Markup planted in text columns: a page must show it as text and run none of it."""


def at(day: date, minute: int) -> datetime:
    """Minute `minute` of the session of `day` (0 is 09:30 New York)."""
    return datetime.combine(day, OPEN, EASTERN) + timedelta(minutes=minute)


def decision(variant: str, moment: datetime, **changes: Any) -> Row:
    """A WAIT row with every feature known, in the table's column order."""
    values: dict[str, Any] = {
        "variant": variant, "at": moment, "spot": 6800.0, "net_gex": 1e9,
        "gex_regime": "POSITIVE", "ofi": 1.0, "hurst": 0.4, "hmm_state": "LOW",
        "band_mid": 6800.0, "band_upper": 6810.0, "band_lower": 6790.0, "position": None,
        "target": None, "stop": None, "action": "WAIT", "reason": None, "blocked_by": "band",
        "balance": 100_000.0, "excluded_contracts": 0,
    }
    values.update(changes)
    return tuple(values[name] for name, _ in DECISION_COLUMNS)


def trade(variant: str, entry: datetime, exit_: datetime, **changes: Any) -> Row:
    """A LONG round trip closed at TARGET, in the table's column order."""
    values: dict[str, Any] = {
        "timestamp": exit_, "symbol": "$SPX", "action": "LONG", "price": 6805.0,
        "size": 5000.0, "regime": "POSITIVE", "pnl": 3.5, "entry_time": entry,
        "entry_price": 6795.0, "exit_reason": "TARGET", "bucket": "REVERSION",
        "variant": variant,
    }
    values.update(changes)
    return tuple(values[name] for name, _ in TRADE_COLUMNS)


def session(variant: str, day: date, minutes: int = 30, level: float = 6800.0,
            **changes: Any) -> list[Row]:
    """`minutes` WAIT rows of one day, the price wandering a little around `level`."""
    return [
        decision(variant, at(day, m), spot=level + (m % 7) - 3, band_mid=level,
                 band_upper=level + 5, band_lower=level - 5, **changes)
        for m in range(minutes)
    ]


def write_db(path: Path, decisions: Sequence[Row], trades: Sequence[Row] = ()) -> Path:
    """A database with gexbot's tables holding these rows."""
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        ensure_schema(con, path, TRADING)
        write_decisions(con, list(decisions))
        write_trades(con, list(trades))
    finally:
        con.close()
    return path


def ledger(decisions: Sequence[Row], trades: Sequence[Row] = ()) -> Ledger:
    """The frames a report draws, straight from rows (no database)."""
    d = pd.DataFrame.from_records(list(decisions), columns=[n for n, _ in DECISION_COLUMNS])
    t = pd.DataFrame.from_records(list(trades), columns=[n for n, _ in TRADE_COLUMNS])
    return Ledger(normalized(d, DECISION_FIELDS), normalized(t, TRADE_FIELDS), "test rows")
