"""`python -m gexbot.live` in-process: options, defaults, and one-line refusals with exit codes."""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

import gexbot.live as live
from gexbot.settings import preset_path
from gexbot.shell.lock import InstanceLock

SIM = ["--variant", "es", "--source", "sim", "--start", "2026-10-05", "--days", "1"]


@pytest.fixture(autouse=True)
def _restore_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The daemon installs signal handlers and log handlers; put them back after each test."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    monkeypatch.setenv("DISCORD_WEBHOOK_URL", "")
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)
    root.setLevel(level)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    captured = capsys.readouterr()
    return [line for line in (captured.out + captured.err).splitlines() if line]


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        live.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for option in ("--variant", "--preset", "--model", "--source", "--replay", "--record",
                   "--days", "--start", "--seed", "--speed", "--minutes", "--db", "--http-port",
                   "--http-host", "--log-format", "--log-level"):
        assert option in text


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--speed", "0"], "--speed must be positive"),
        (["--speed", "fast"], "--speed must be 'max' or a number"),
        (["--start", "01/10/2026"], "expected a date like 2026-10-01"),
        (["--variant", "ym"], "invalid choice: 'ym'"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        live.main([*SIM, *argv])
    assert done.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--days", "0"], "--days must be at least 1"),
        (["--minutes", "0"], "--minutes must be at least 1"),
        (["--preset", "nowhere.yaml"], "nowhere.yaml: preset file not found"),
        (["--model", "nowhere/hmm_es.json"],
         "model file not found; train one with `python -m gexbot.train_hmm --variant es`"),
        (["--preset", str(preset_path("nq"))],
         "nq.yaml: variant is 'nq', not 'es'; pass --variant nq, or a preset of es"),
        (["--model", "models/hmm_nq.json"],
         "hmm_nq.json: a model trained for variant 'nq', not 'es'; pass the es model"),
    ],
)
def test_configuration_problems_are_one_critical_line_and_exit_2(
    extra: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "x.db"
    assert live.main([*SIM, "--db", str(db), *extra]) == 2
    lines = _lines(capsys)
    assert len(lines) == 1
    assert " CRITICAL " in lines[0]
    assert says in lines[0]
    assert not db.exists()


def test_a_corrupt_model_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "hmm_es.json"
    model.write_text('{"format": "gexbot-hmm", "version": 1, "start_prob": [0.5')
    assert live.main([*SIM, "--db", str(tmp_path / "x.db"), "--model", str(model)]) == 2
    (line,) = _lines(capsys)
    assert "not valid JSON" in line
    assert "the file may be truncated" in line


def test_a_model_that_is_code_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "hmm_es.json"
    model.write_bytes(b"\x80\x04\x95cos\nsystem\n")  # the opening of a pickle
    assert live.main([*SIM, "--db", str(tmp_path / "x.db"), "--model", str(model)]) == 2
    (line,) = _lines(capsys)
    assert "not a JSON model file" in line


def test_the_default_database_is_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert live.main([*SIM, "--minutes", "3"]) == 0
    assert _rows(tmp_path / "quant_trading_data.db", "SELECT count(*) FROM decisions") == [(3,)]


def test_nq_trades_ndx_with_its_own_model(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "nq.db"
    assert live.main(["--variant", "nq", "--source", "sim", "--start", "2026-10-01", "--days",
                      "3", "--db", str(db), "--log-format", "json"]) == 0
    symbols = _rows(db, "SELECT DISTINCT symbol, variant FROM trades")
    assert symbols == [("$NDX", "nq")]
    records = [json.loads(line) for line in _lines(capsys)]
    assert any("NQ  SESSION" in record["msg"] for record in records)
    assert any("($NDX)" in record["msg"] for record in records)
    assert {record["level"] for record in records} == {"INFO"}


def test_a_second_daemon_on_the_same_database_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "x.db"
    with InstanceLock(db, "es"):
        assert live.main([*SIM, "--db", str(db)]) == 2
    (line,) = [line for line in _lines(capsys) if " CRITICAL " in line]
    assert "is in use by another gexbot ES daemon" in line


def test_a_database_of_another_program_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "x.db"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE decisions (id INTEGER)")
    assert live.main([*SIM, "--db", str(db)]) == 2
    (line,) = [line for line in _lines(capsys) if " CRITICAL " in line]
    assert "table decisions has columns id, not the ones gexbot writes" in line


def test_a_database_already_past_the_sessions_says_nothing_is_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "x.db"
    assert live.main(["--variant", "es", "--source", "sim", "--start", "2026-10-06", "--days",
                      "1", "--db", str(db)]) == 0
    capsys.readouterr()
    assert live.main([*SIM, "--db", str(db)]) == 0
    said = "\n".join(_lines(capsys))
    assert "the database already holds decisions up to 2026-10-06 15:59" in said
    assert "pass a fresh --db" in said
    assert _rows(db, "SELECT count(*) FROM decisions") == [(390,)]
