"""Reconciling against a recording with lines no replay can read: no verdict, exit 2.

A line left out of the replay (not JSON, nested beyond the stack, a `symbol` that is a list)
takes from the replay what the live run had, so a difference at or after its minute says
something about the recording, not the live run. Exit 1 ("differs") stays for a difference
before any damage, which the damage cannot explain.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from cli_state import process_state_restored

from gexbot import live, reconcile
from gexbot.core.session import EASTERN
from gexbot.market import recfile

DAY = date(2026, 10, 5)
MINUTES = 90


@dataclass(frozen=True)
class Recorded:
    day_file: Path
    database: Path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """The first minutes of a simulated session, traded and recorded by the daemon."""
    root = tmp_path_factory.mktemp("recorded")
    database, folder = root / "live.db", root / "recordings"
    with process_state_restored():
        assert live.main(["--variant", "es", "--source", "sim", "--start", DAY.isoformat(),
                          "--days", "1", "--minutes", str(MINUTES), "--db", str(database),
                          "--record", str(folder), "--log-level", "WARNING"]) == 0
    return Recorded(next(folder.rglob("*.jsonl.gz")), database)


def _minute(offset: int) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, 9, 30, tzinfo=EASTERN) + timedelta(
        minutes=offset)


def _damaged_copy(recorded: Recorded, folder: Path, at: datetime,
                  damage: Callable[[dict[str, Any]], str]) -> Path:
    """The day's recording with its quotes line of minute `at` replaced by `damage` of it."""
    stamp = f"{at:%Y-%m-%dT%H:%M:}"
    lines = []
    hit = 0
    for raw in recfile.read(recorded.day_file).lines:
        item = json.loads(raw)
        if item.get("endpoint") == "quotes" and item["at"].startswith(stamp):
            lines.append(damage(item).encode())
            hit += 1
        else:
            lines.append(raw)
    assert hit == 1
    path = folder / "es" / recorded.day_file.name
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def _deep_body(item: dict[str, Any]) -> str:
    """Laid out as the recorder writes, so the line is indexed and fails only when parsed."""
    text = json.dumps(item | {"body": "@"}, separators=(",", ":"))
    return text.replace('"@"', "[" * 100_000 + "]" * 100_000)


DAMAGE: dict[str, Callable[[dict[str, Any]], str]] = {
    "not JSON": lambda item: "{" + json.dumps(item)[:60],
    "deep body": _deep_body,
    "symbols a list": lambda item: json.dumps(
        item | {"params": item["params"] | {"symbols": ["$SPX", "SPY"]}}),
}


def _reconcile(database: Path, folder: Path) -> int:
    with process_state_restored():
        return reconcile.main(["--db", str(database), "--replay", str(folder)])


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_difference_where_a_line_was_left_out_is_no_verdict(
    recorded: Recorded, tmp_path: Path, capfd: pytest.CaptureFixture[str], kind: str
) -> None:
    at = _minute(40)
    path = _damaged_copy(recorded, tmp_path, at, DAMAGE[kind])
    capfd.readouterr()
    assert _reconcile(recorded.database, tmp_path) == 2
    out = capfd.readouterr().out
    last = out.strip().splitlines()[-1]
    assert "Traceback" not in out
    assert "first difference at" not in out
    assert f"{path}: line " in last
    assert f"its first difference (at {at:%Y-%m-%d %H:%M} ET) is no verdict" in last


def test_a_difference_before_the_damage_is_still_a_difference(
    recorded: Recorded, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "live.db"
    shutil.copy(recorded.database, database)
    tampered = _minute(20)
    with duckdb.connect(str(database)) as con:
        con.execute('UPDATE decisions SET hurst = hurst + 1e-9 WHERE "at" = ?', [tampered])
    _damaged_copy(recorded, tmp_path / "recordings", _minute(60), _deep_body)
    capfd.readouterr()
    assert _reconcile(database, tmp_path / "recordings") == 1
    out = capfd.readouterr().out
    assert f"first difference at {tampered:%Y-%m-%d %H:%M} ET (decisions.hurst)" in out


def test_an_undamaged_recording_still_reconciles(
    recorded: Recorded, capfd: pytest.CaptureFixture[str]
) -> None:
    assert _reconcile(recorded.database, recorded.day_file) == 0
    assert f"identical: 1 session(s) {DAY}, {MINUTES} decisions" in capfd.readouterr().out
