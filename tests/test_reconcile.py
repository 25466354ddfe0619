"""Record a faulty simulated market through the daemon, replay it, reconcile it, tamper with it.

The market is the simulated one behind a flaky network: on chosen minutes a request answers
429, times out, answers 500, or returns a malformed or truncated payload. The daemon records
everything on the way (`--record`), so the replay must meet the same faults at the same minutes
and decide every minute as the live run did.
"""

from __future__ import annotations

import copy
import gzip
import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from itertools import cycle
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from cli_state import process_state_restored

import gexbot.sources
from gexbot import live, reconcile
from gexbot.core.engine import EngineParams, skip
from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.market import recfile
from gexbot.market.recording import RecordingTransport
from gexbot.market.replay import minute_key
from gexbot.market.sim import SimMarket
from gexbot.market.transport import ENDPOINTS, Endpoint, Exchange, ManagedTransport, Transport
from gexbot.model_io import read_model
from gexbot.settings import Preset, load_variant
from gexbot.shell.reader import trades_frame
from gexbot.shell.store import Store

DAYS = (date(2026, 10, 12), date(2026, 10, 13))
OUTAGE_DAY = date(2026, 10, 14)
FAULTS = ("429", "timeout", "500", "malformed", "truncated")


class FaultyMarket(ManagedTransport):
    """The simulated market behind a flaky network: (minute, endpoint) -> a way to fail."""

    def __init__(self, inner: Transport, faults: dict[tuple[datetime, str], str]) -> None:
        self.inner = inner
        self.faults = faults

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        fault = self.faults.get((at.replace(second=0, microsecond=0), endpoint))
        if fault is None:
            return self.inner.get(endpoint, params, at)
        if fault == "429":
            body = {"errors": [{"status": "429", "title": "Too Many Requests"}]}
            return Exchange(at, endpoint, dict(params), 429, body, "HTTP 429")
        if fault == "500":
            body = {"errors": [{"status": "500", "title": "Internal Server Error"}]}
            return Exchange(at, endpoint, dict(params), 500, body, "HTTP 500")
        if fault == "timeout":
            return Exchange(at, endpoint, dict(params), None, None, "timeout: read timed out")
        if fault == "truncated":
            return Exchange(at, endpoint, dict(params), 200, None,
                            "bad JSON: Unterminated string starting at: line 1 column 8193")
        body = copy.deepcopy(self.inner.get(endpoint, params, at).body)
        if endpoint == "quotes":
            body["$SPX"]["quote"]["lastPrice"] = "NaN"
        elif endpoint == "pricehistory":
            body["candles"] = [*body["candles"][:3], {"open": 1.0}]
        else:
            body["callExpDateMap"] = []
        return Exchange(at, endpoint, dict(params), 200, body)


def fault_plan(calendar: TradingCalendar, days: Sequence[date]) -> dict[tuple[datetime, str], str]:
    """Every kind of fault on every endpoint, spread over the sessions."""
    kinds, endpoints = cycle(FAULTS), cycle(ENDPOINTS)
    plan = {}
    for day in days:
        session = calendar.session(day)
        for offset in range(7, 380, 13):
            plan[(session.open + timedelta(minutes=offset), next(endpoints))] = next(kinds)
    return plan


@pytest.fixture(scope="module")
def preset() -> Preset:
    return load_variant("es")


@pytest.fixture(scope="module")
def calendar(preset: Preset) -> TradingCalendar:
    return TradingCalendar("XNYS", preset.strategy.flatten_minutes_before_close)


def run_live(argv: Sequence[str]) -> int:
    with process_state_restored():
        return live.main(["--variant", "es", "--log-level", "WARNING", *argv])


def run_reconcile(argv: Sequence[str]) -> int:
    with process_state_restored():
        return reconcile.main(list(argv))


def rows(database: Path, table: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()  # noqa: S608


def record_faulty(monkeypatch: pytest.MonkeyPatch, calendar: TradingCalendar,
                  days: Sequence[date]) -> None:
    plan = fault_plan(calendar, days)
    monkeypatch.setattr(
        gexbot.sources, "SimMarket",
        lambda preset, cal, seed: FaultyMarket(SimMarket(preset, cal, seed), plan),
    )


@dataclass(frozen=True)
class Recorded:
    folder: Path
    database: Path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, calendar: TradingCalendar) -> Recorded:
    """Two faulty sessions traded by the daemon and recorded along the way."""
    root = tmp_path_factory.mktemp("faulty")
    done = Recorded(root / "recordings", root / "live.db")
    with pytest.MonkeyPatch.context() as monkeypatch:
        record_faulty(monkeypatch, calendar, DAYS)
        assert run_live(["--source", "sim", "--start", DAYS[0].isoformat(), "--days", "2",
                         "--record", str(done.folder), "--db", str(done.database)]) == 0
    return done


def test_the_faults_reached_the_engine_and_the_recording(recorded: Recorded) -> None:
    reasons = " ".join(row[15] or "" for row in rows(recorded.database, "decisions")
                       if row[14] == "SKIP")
    for kind in ("rate_limited", "timeout", "server_error", "quote_price", "history_shape",
                 "chain_shape", "bad_json"):
        assert f"{kind}:" in reasons
    assert len(rows(recorded.database, "trades")) >= 5
    lines = [json.loads(raw) for raw in recfile.read(
        recorded.folder / "es" / "2026-10-12.jsonl.gz").lines]
    statuses = {line.get("status") for line in lines[1:]}
    assert {200, 429, 500, None} <= statuses
    assert len(lines) == 1 + 3 * 390


def test_the_replay_trades_and_decides_as_the_live_run(recorded: Recorded,
                                                       tmp_path: Path) -> None:
    replayed = tmp_path / "replay.db"
    assert run_live(["--replay", str(recorded.folder), "--db", str(replayed)]) == 0
    for table in ("trades", "decisions"):
        assert rows(replayed, table) == rows(recorded.database, table)


def test_reconcile_finds_the_run_identical(recorded: Recorded,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    assert run_reconcile(["--db", str(recorded.database), "--replay", str(recorded.folder)]) == 0
    out = capfd.readouterr().out
    assert "identical: 2 session(s) 2026-10-12..2026-10-13, 780 decisions" in out


def test_the_replay_runs_in_this_process_and_shows_only_its_warnings(
    recorded: Recorded, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_child(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("reconcile started a child process")

    monkeypatch.setattr(subprocess, "run", no_child)
    monkeypatch.setattr(subprocess, "Popen", no_child)
    assert run_reconcile(["--db", str(recorded.database), "--replay", str(recorded.folder)]) == 0
    out = capfd.readouterr().out
    assert "identical: 2 session(s)" in out
    assert "on replay of" not in out  # the replay's own INFO lines stay quiet
    assert "SKIP" not in out  # and so do its event lines


def test_one_day_is_replayed_from_the_live_balance(recorded: Recorded,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    second = recorded.folder / "es" / "2026-10-13.jsonl.gz"
    assert run_reconcile(["--db", str(recorded.database), "--replay", str(second)]) == 0
    out = capfd.readouterr().out
    assert "2026-10-13: replay starts from the live balance" in out
    assert "identical: 1 session(s) 2026-10-13, 390 decisions" in out


def first_decided(database: Path, day: date, action: str) -> datetime:
    with duckdb.connect(str(database), read_only=True) as con:
        found = con.execute(
            'SELECT min("at") FROM decisions WHERE action = ? AND CAST(timezone('
            "'America/New_York', \"at\") AS DATE) = ?", [action, day]).fetchone()
    assert found is not None
    assert found[0] is not None
    return found[0].astimezone(EASTERN)


def rewrite(path: Path, change: Any) -> None:
    """Rewrite a recording with the standard gzip module, `change` applied to each line."""
    lines = [json.loads(raw) for raw in recfile.read(path).lines]
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as handle:
        for line in lines:
            changed = change(line)
            if changed is not None:
                handle.write(json.dumps(changed) + "\n")


def test_a_position_carried_into_the_first_day_needs_its_opening_day(
    recorded: Recorded, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "live.db"
    shutil.copy(recorded.database, database)
    with duckdb.connect(str(database)) as con:
        con.execute("UPDATE decisions SET position = 'LONG' WHERE \"at\" = (SELECT max(\"at\")"
                    " FROM decisions WHERE \"at\" < TIMESTAMPTZ '2026-10-13 09:30:00-04:00')")
    second = recorded.folder / "es" / "2026-10-13.jsonl.gz"
    assert run_reconcile(["--db", str(database), "--replay", str(second)]) == 2
    assert "held a LONG position into 2026-10-13" in capfd.readouterr().out


def test_a_tampered_recording_is_caught_at_its_minute(
    recorded: Recorded, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    entry = first_decided(recorded.database, DAYS[0], "LONG")
    folder = tmp_path / "recordings"
    shutil.copytree(recorded.folder, folder)

    def nudge(line: dict[str, Any]) -> dict[str, Any]:
        if line.get("endpoint") == "quotes" and line["at"].startswith(entry.isoformat()[:16]):
            line["body"]["$SPX"]["quote"]["lastPrice"] += 0.5
        return line

    rewrite(folder / "es" / "2026-10-12.jsonl.gz", nudge)
    assert run_reconcile(["--db", str(recorded.database), "--replay", str(folder)]) == 1
    out = capfd.readouterr().out
    assert f"first difference at {entry:%Y-%m-%d %H:%M} ET (decisions.spot)" in out


def test_a_tampered_database_is_caught_with_both_values(
    recorded: Recorded, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "live.db"
    shutil.copy(recorded.database, database)
    minute = first_decided(database, DAYS[1], "WAIT") + timedelta(minutes=40)
    with duckdb.connect(str(database)) as con:
        (hurst,) = con.execute('SELECT hurst FROM decisions WHERE "at" = ?', [minute]).fetchone()
        con.execute('UPDATE decisions SET hurst = hurst + 1e-9 WHERE "at" = ?', [minute])
    assert run_reconcile(["--db", str(database), "--replay", str(recorded.folder)]) == 1
    out = capfd.readouterr().out
    assert (f"first difference at {minute:%Y-%m-%d %H:%M} ET (decisions.hurst):"
            f" live {hurst + 1e-9!r}, replay {hurst!r}") in out


def test_a_tampered_trade_is_caught(recorded: Recorded, calendar: TradingCalendar) -> None:
    trades = trades_frame(recorded.database, "es")
    tampered = trades.copy()
    tampered.loc[2, "pnl"] += 0.01
    sessions = [calendar.session(day) for day in DAYS]
    found = reconcile.compare_trades(tampered, trades, sessions, reconcile.Tally())
    assert found is not None
    assert (found.table, found.column, found.minute) == ("trades", "pnl",
                                                         trades.loc[2, "timestamp"])
    missing = reconcile.compare_trades(trades.drop(index=3), trades, sessions, reconcile.Tally())
    assert missing is not None
    assert "only the replay closed a trade" in missing.describe()


# --- minutes the live run never asked about -------------------------------------------------


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory, preset: Preset,
                calendar: TradingCalendar) -> Recorded:
    """A session traded in three processes: one killed mid-minute, one minute missed, a
    30-minute outage, as the daemon would have left them."""
    root = tmp_path_factory.mktemp("interrupted")
    done = Recorded(root / "recordings", root / "live.db")
    session = calendar.session(OUTAGE_DAY)
    common = ["--source", "sim", "--start", OUTAGE_DAY.isoformat(), "--days", "1",
              "--record", str(done.folder), "--db", str(done.database)]
    with pytest.MonkeyPatch.context() as monkeypatch:
        record_faulty(monkeypatch, calendar, [OUTAGE_DAY])
        assert run_live([*common, "--minutes", "90"]) == 0
    # The next process asked 11:00, got a 429 and died before committing the minute...
    dying = session.open + timedelta(minutes=90)
    sim = SimMarket(preset, calendar, 1)
    faults = {(dying, "quotes"): "429"}
    recorder = RecordingTransport(FaultyMarket(sim, faults), done.folder, "es")
    recorder.get("quotes", {"symbols": "$SPX,SPY", "fields": "quote,reference"},
                 dying + timedelta(milliseconds=500))
    recorder.close()
    # ...its successor, started within the minute, asked again and decided 11:00...
    assert run_live([*common, "--minutes", "1"]) == 0
    # ...then fell behind on 11:01 (a SKIP, nothing asked) and was down until 11:31.
    missed = dying + timedelta(minutes=1)
    with Store(done.database, "es") as store:
        state = store.restore()
        assert state is not None
        assert state.last_minute == dying
        params = EngineParams.from_preset(preset, read_model(preset.model_file()))
        state, events = skip(state, missed, "missed: the loop fell behind", params)
        store.commit(missed, events, state)
        back = missed + timedelta(minutes=30)
        store.commit(back, [], replace(state, last_minute=back))
    assert run_live(common) == 0
    return done


def test_minutes_never_asked_are_skipped_on_both_sides(
    interrupted: Recorded, capfd: pytest.CaptureFixture[str]
) -> None:
    decided = rows(interrupted.database, "decisions")
    assert len(decided) == 390 - 30
    assert any(row[15] == "missed: the loop fell behind" for row in decided)
    assert run_reconcile(["--db", str(interrupted.database),
                          "--replay", str(interrupted.folder)]) == 0
    out = capfd.readouterr().out
    assert "identical: 1 session(s) 2026-10-14, 359 decisions" in out
    assert "31 minute(s) never asked live" in out


def test_a_minute_decided_live_but_missing_from_the_recording_differs(
    interrupted: Recorded, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recordings"
    shutil.copytree(interrupted.folder, folder)
    rewrite(folder / "es" / "2026-10-14.jsonl.gz",
            lambda line: None if line.get("at", "").startswith("2026-10-14T12:00") else line)
    assert run_reconcile(["--db", str(interrupted.database), "--replay", str(folder)]) == 1
    out = capfd.readouterr().out
    assert "first difference at 2026-10-14 12:00 ET (decisions.action): live 'WAIT'" in out
    assert "the recording holds no exchange for this minute" in out


# --- the comparison rules, row by row -------------------------------------------------------

T0 = datetime(2026, 10, 15, 10, 0, tzinfo=EASTERN)


def decisions(*items: tuple[int, str, str | None]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [{"at": pd.Timestamp(T0 + timedelta(minutes=m)), "action": action, "reason": reason,
          "spot": 6800.0} for m, action, reason in items],
        columns=["at", "action", "reason", "spot"],
    )


@pytest.mark.parametrize(
    ("live_rows", "replay_rows", "asked", "expected", "counted"),
    [
        ([(0, "SKIP", "missed: behind")], [(0, "SKIP", "connection: x")], False, None,
         "not_asked"),
        ([], [(0, "SKIP", "connection: x")], False, None, "not_asked"),
        ([], [(0, "SKIP", "rate_limited: y")], True, None, "uncommitted"),
        ([(0, "SKIP", "rate_limited: y")], [(0, "SKIP", "timeout: z")], True, "reason", None),
        ([(0, "WAIT", None)], [(0, "SKIP", "connection: x")], False, "action", None),
        ([], [(0, "WAIT", None)], True, "action", None),
        ([(0, "WAIT", None)], [], True, "action", None),
        ([(0, "WAIT", None)], [(0, "WAIT", None)], True, None, "decisions"),
    ],
)
def test_the_rules_for_absent_and_skipped_minutes(
    calendar: TradingCalendar, live_rows: list[Any], replay_rows: list[Any], asked: bool,
    expected: str | None, counted: str | None,
) -> None:
    tally = reconcile.Tally()
    recorded = frozenset({minute_key(T0)}) if asked else frozenset()
    found = reconcile.compare_decisions(decisions(*live_rows), decisions(*replay_rows),
                                        [calendar.session(T0.date())], recorded, tally)
    assert (found.column if found is not None else None) == expected
    if counted is not None:
        assert getattr(tally, counted) == 1


def test_values_are_compared_bit_for_bit() -> None:
    assert reconcile.same(float("nan"), None)
    assert reconcile.same(pd.NaT, None)
    assert not reconcile.same(0.1 + 0.2, 0.3)
    assert not reconcile.same(1.0, None)
    assert reconcile.show(0.1 + 0.2) == "0.30000000000000004"


# --- the command line ------------------------------------------------------------------------


def test_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        reconcile.main(["--help"])
    assert raised.value.code == 0
    out = capsys.readouterr().out
    for option in ("--db", "--replay", "--variant", "--preset", "--model", "--keep",
                   "--log-level"):
        assert option in out


def test_bad_arguments_get_one_line_and_exit_2(
    recorded: Recorded, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert run_reconcile(["--db", str(tmp_path / "none.db"),
                          "--replay", str(recorded.folder)]) == 2
    assert "none.db: no such database file" in capfd.readouterr().out
    assert run_reconcile(["--db", str(recorded.database), "--replay", str(recorded.folder),
                          "--variant", "nq"]) == 2
    assert "recordings are of variant 'es', not 'nq'" in capfd.readouterr().out


def test_a_database_without_the_recorded_days_is_not_called_identical(
    recorded: Recorded, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.db"
    with Store(empty, "es"):
        pass
    assert run_reconcile(["--db", str(empty), "--replay", str(recorded.folder)]) == 2
    assert "holds no es decisions to compare with" in capfd.readouterr().out
    assert run_reconcile(["--db", str(recorded.database), "--replay", str(recorded.folder),
                          "--variant", "nq"]) == 2
    assert "the recordings are of variant 'es', not 'nq'" in capfd.readouterr().out


def test_a_foreign_model_key_in_the_header_falls_back_to_the_preset(
    recorded: Recorded, tmp_path: Path, capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = tmp_path / "recordings"
    shutil.copytree(recorded.folder, folder)

    def other_tool(line: dict[str, Any]) -> dict[str, Any]:
        if line.get("format") == "gexbot-recording":
            line["model"] = {"name": "hmm_es", "sha256": "abc"}
        return line

    for path in (folder / "es").iterdir():
        rewrite(path, other_tool)
    assert run_reconcile(["--db", str(recorded.database), "--replay", str(folder)]) == 0
    said = capfd.readouterr().out
    assert "identical: 2 session(s)" in said
    assert "the model in the 2026-10-12 recording's header: format must be 'gexbot-hmm'" in said
