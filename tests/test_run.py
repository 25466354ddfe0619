"""A run as a library call: `run(RunPlan(...))` is the daemon's run, with everything injected.

The command line only parses its arguments into a plan, so the library call and the CLI must
leave identical rows; the caller's sinks see every committed minute, the caller's stop event
ends the run after the current minute, and the environment is the caller's alone.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from cli_state import process_state_restored

from gexbot import live
from gexbot.core.hmm import model_to_dict
from gexbot.core.types import Decided, Event
from gexbot.environment import load_environment
from gexbot.errors import ConfigError
from gexbot.model_io import read_model
from gexbot.run import RunPlan, open_run_market, run
from gexbot.settings import load_variant

PACKAGE = Path(__file__).resolve().parents[1] / "gexbot"
DAY = date(2026, 10, 5)
PLAN = RunPlan(variant="es", source="sim", seed=3, start=DAY, days=1, minutes=40)


def _rows(db: Path, table: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()  # noqa: S608


@pytest.fixture(autouse=True)
def _restored() -> Iterator[None]:
    with process_state_restored():
        yield


def test_the_library_call_leaves_what_the_command_line_leaves(tmp_path: Path) -> None:
    seen: list[Event] = []
    result = run(replace(PLAN, db=tmp_path / "library.db"), sinks=[seen.extend])
    assert live.main(["--variant", "es", "--source", "sim", "--seed", "3", "--start", str(DAY),
                      "--days", "1", "--minutes", "40", "--db", str(tmp_path / "cli.db"),
                      "--env-file", "/dev/null"]) == 0  # fmt: skip
    for table in ("decisions", "trades"):
        assert _rows(tmp_path / "library.db", table) == _rows(tmp_path / "cli.db", table)
    decided = [event for event in seen if isinstance(event, Decided)]
    assert len(decided) == result.stats.minutes == 40
    assert result.database == tmp_path / "library.db"
    assert result.state.balance == decided[-1].balance
    assert result.state.last_minute == decided[-1].at


def test_the_callers_stop_ends_the_run_after_the_current_minute(tmp_path: Path) -> None:
    stop, decided = threading.Event(), []

    def stop_after_seven(events: Sequence[Event]) -> None:
        decided.extend(event for event in events if isinstance(event, Decided))
        if len(decided) >= 7:
            stop.set()

    result = run(replace(PLAN, minutes=None, db=tmp_path / "stopped.db"), stop=stop,
                 sinks=[stop_after_seven])
    assert result.stats.minutes == 7
    assert len(_rows(tmp_path / "stopped.db", "decisions")) == 7


def test_the_environment_is_the_callers_not_the_processs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("SCHWAB_APP_KEY", "process-app-key-123456"),
                        ("SCHWAB_APP_SECRET", "process-app-secret-123456"),
                        ("SCHWAB_REFRESH_TOKEN", "process-refresh-token-123456")):
        monkeypatch.setenv(name, value)
    plan = RunPlan(variant="es", source="schwab", start=DAY, days=1, db=tmp_path / "x.db")
    with pytest.raises(ConfigError, match="SCHWAB_APP_KEY is not set"):
        run(plan)  # no environment given: none is read behind the caller's back
    empty = load_environment(process={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="SCHWAB_APP_KEY is not set"):
        run(plan, env=empty)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"days": 0}, "--days must be at least 1"),
        ({"minutes": 0}, "--minutes must be at least 1"),
        ({"speed": 0.0}, "--speed must be positive"),
        ({"speed": float("nan")}, "--speed must be positive"),
        ({"source": "yahoo"}, "--source must be one of schwab, sim"),
        ({"replay": (Path("rec"),), "seed": 2}, "--seed applies to --source sim"),
    ],
)
def test_a_plan_that_cannot_run_is_refused_when_made(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        replace(PLAN, **changes)


def test_the_market_of_a_plan_is_the_one_the_run_trades(tmp_path: Path) -> None:
    preset = load_variant("es")
    recordings = tmp_path / "recordings"
    run(replace(PLAN, minutes=5, record=recordings, db=tmp_path / "recorded.db"))
    opened = open_run_market(RunPlan(variant="es", replay=(recordings,)), preset, {})
    try:
        assert [s.date for s in opened.sessions] == [DAY]
        assert model_to_dict(opened.model) == model_to_dict(read_model(preset.model_file()))
        first = opened.sessions[0].open
        snapshot = opened.feed.snapshot(opened.sessions[0], first, first)
        assert snapshot.at == first
    finally:
        opened.market.transport.close()
    simulated = open_run_market(replace(PLAN, days=3), preset, {})
    assert [s.date.isoformat() for s in simulated.sessions] == [
        "2026-10-05", "2026-10-06", "2026-10-07"]


def test_only_the_environment_module_reads_the_process_environment() -> None:
    readers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            named = (
                (isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"})
                or (isinstance(node, ast.ImportFrom) and node.module in {"dotenv", "os"}
                    and any(a.name in {"environ", "getenv", "load_dotenv", "dotenv_values"}
                            for a in node.names))
            )
            if named:
                readers.append(path.relative_to(PACKAGE.parent).as_posix())
    assert sorted(set(readers)) == ["gexbot/environment.py"]


@pytest.mark.parametrize(("plan", "name"), [
    (PLAN, "sim"),
    (replace(PLAN, source="schwab", start=None), "schwab"),
    (replace(PLAN, replay=(Path("recordings"),), start=None, seed=1), "replay"),
])
def test_healthz_names_where_the_minutes_come_from(plan: RunPlan, name: str) -> None:
    assert plan.source_name == name


def test_a_running_daemon_reports_its_source_on_healthz(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[dict[str, Any]] = []
    decided: list[Decided] = []

    def ask_healthz(events: Sequence[Event]) -> None:
        # The health summary is updated when a minute's iteration ends: ask in the second.
        decided.extend(event for event in events if isinstance(event, Decided))
        if seen or len(decided) < 2:
            return
        port = int(re.findall(r"127\.0\.0\.1:(\d+)/healthz", caplog.text)[-1])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=5.0) as answer:
            seen.append(json.loads(answer.read()))

    with caplog.at_level(logging.INFO, logger="gexbot"):
        run(replace(PLAN, minutes=3, http_port=0, db=tmp_path / "health.db"),
            sinks=[ask_healthz])
    assert seen
    assert seen[0]["source"] == "sim"

