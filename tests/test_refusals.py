"""Every command's refusals: a bad value of any kind is one line naming it, exit 2, no traceback.

The table is the commands' contract with a careless or a hostile user. A row names the command,
its arguments (``{kind}`` stands for a bad file of that kind, made by `bad_files` in a scratch
folder that is also the working directory) and what the one line of output must say. Nothing
may be written on a refusal: the scratch folder must hold the same files afterwards.

A command added later joins by putting its entry point in `COMMANDS` and its rows in `CASES`;
a new kind of bad file joins `bad_files`.
"""

from __future__ import annotations

import ast
import gzip
import importlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import yaml

import gexbot
from gexbot import auth, backtest, features, live, reconcile, sweep, train_hmm
from gexbot.report import cli as report
from gexbot.settings import preset_path, resolve_path
from gexbot.shell import health

COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "gexbot.live": live.main,
    "gexbot.reconcile": reconcile.main,
    "gexbot.train_hmm": train_hmm.main,
    "gexbot.auth": auth.main,
    "gexbot.shell.health": health.main,
    "gexbot.backtest": backtest.main,
    "gexbot.features": features.main,
    "gexbot.sweep": sweep.main,
    "gexbot.report": report.main,
}
SECRET_ENV = ("SCHWAB_APP_KEY", "SCHWAB_APP_SECRET", "SCHWAB_REFRESH_TOKEN",
              "SCHWAB_REFRESH_TOKEN_ISSUED_AT", "GEXBOT_TOKEN_FILE", "DISCORD_WEBHOOK_URL",
              "SCHWAB_CALLBACK_URL", "GEXBOT_LOG_LEVEL")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _shipped(variant: str) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(preset_path(variant).read_text())
    return loaded


def _recording(path: Path, header: dict[str, object] | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    first = header if isinstance(header, str) else json.dumps(header)
    path.write_bytes(gzip.compress(first.encode() + b"\n"))


def _header(**change: object) -> dict[str, object]:
    return {"format": "gexbot-recording", "version": 1, "variant": "es",
            "session": "2026-10-05"} | change


def bad_files(root: Path) -> dict[str, str]:
    """A file of every bad kind in `root`, by kind, as paths for the argument templates."""
    made: dict[str, Path] = {"dir": root, "missing": root / "missing.yaml",
                             "folder": root / "folder"}
    made["folder"].mkdir()

    def write(name: str, data: bytes | str) -> None:
        path = root / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        made[name.split(".")[0]] = path

    write("empty.yaml", b"")
    write("latin1.yaml", "variant: es\nsymbol: caf\xe9\n".encode("latin-1"))
    write("garbage.bin", bytes(range(256)) * 64)
    write("huge.json", b" " * (2 << 20))
    write("deep_json.json", _deep(100_000))
    write("deep_yaml.yaml", "a: " + _deep(100_000) + "\n")
    os.mkfifo(root / "fifo")
    made["fifo"] = root / "fifo"
    with duckdb.connect(str(root / "duckdb.db")) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    made["duckdb"] = root / "duckdb.db"
    with sqlite3.connect(root / "sqlite.db") as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    made["sqlite"] = root / "sqlite.db"
    write("gzip_garbage.gz", gzip.compress(bytes(range(256)) * 64))
    # Presets.
    write("preset_es.yaml", yaml.safe_dump(_shipped("es")))
    write("preset_nq.yaml", yaml.safe_dump(_shipped("nq")))
    inf = _shipped("es")
    inf["strategy"]["starting_balance"] = float("inf")  # type: ignore[index]
    write("preset_inf.yaml", yaml.safe_dump(inf))
    nan = _shipped("es")
    nan["sim"]["daily_vol"] = float("nan")  # type: ignore[index]
    write("preset_nan.yaml", yaml.safe_dump(nan))
    terabytes = _shipped("es")
    terabytes["sim"]["strike_interval"] = 1e-9  # type: ignore[index]
    write("preset_terabytes.yaml", yaml.safe_dump(terabytes))
    write("preset_twice.yaml", preset_path("es").read_text() + "\nvariant: nq\n")
    # Model files.
    shipped = json.loads(resolve_path("models/hmm_es.json").read_text())
    write("model_nq.json", json.dumps(shipped | {"metadata": {"variant": "nq"}}))
    write("model_low_float.json", json.dumps(shipped | {"low_state": 0.0}))
    write("model_digits.json", json.dumps(shipped | {"low_state": "@"}).replace(
        '"@"', "1" + "0" * 399))
    write("model_deep.json", json.dumps(shipped | {"metadata": "@"}).replace(
        '"@"', _deep(100_000)))
    write("model_tiny.json", json.dumps(shipped | {"variances": "@"}).replace(
        '"@"', "[1e-320, 121.0]"))
    write("model_huge_mean.json", json.dumps(shipped | {"means": [1e308, 0.0]}))
    # Recordings.
    _recording(root / "rec_deep" / "2026-10-05.jsonl.gz", json.dumps(_header(preset="@"))
               .replace('"@"', _deep(100_000)))
    made["rec_deep"] = root / "rec_deep"
    _recording(root / "rec_path" / "2026-10-05.jsonl.gz", _header(variant="../../x"))
    made["rec_path"] = root / "rec_path"
    _recording(root / "rec_nq" / "2026-10-05.jsonl.gz", _header(variant="nq"))
    made["rec_nq"] = root / "rec_nq"
    _recording(root / "rec_session" / "2026-10-05.jsonl.gz", _header(session=20261005))
    made["rec_session"] = root / "rec_session"
    _recording(root / "rec_fifo" / "2026-10-05.jsonl.gz", _header())
    os.mkfifo(root / "rec_fifo" / "2026-10-06.jsonl.gz")
    made["rec_fifo"] = root / "rec_fifo"
    return {name: str(path) for name, path in made.items()}


@dataclass(frozen=True)
class Case:
    """One refusal: `command` given `argv` says `says` in its one line and exits `code`."""

    command: str
    argv: tuple[str, ...]
    says: str
    code: int = 2

    @property
    def id(self) -> str:
        return f"{self.command.rsplit('.', 1)[-1]} {' '.join(self.argv)}"[:80]


def _cases(command: str, base: tuple[str, ...],
           rows: list[tuple[tuple[str, ...], str]], code: int = 2) -> list[Case]:
    return [Case(command, (*base, *argv), says, code) for argv, says in rows]


SIM = ("--variant", "es", "--source", "sim", "--start", "2026-10-05", "--days", "1")


def _not_integers(*options: str) -> list[tuple[tuple[str, ...], str]]:
    """Rows giving each integer option a value of every kind that is no integer."""
    return [((option, value), f"argument {option}: invalid int value: {value!r}")
            for option in options for value in ("", "x", "nan", "inf", "1.5", "1e3")]


CASES: list[Case] = [
    # --- the daemon ---------------------------------------------------------------------
    *_cases("gexbot.live", (), [
        ((), "the following arguments are required: --variant"),
        (("--variant",), "argument --variant: expected one argument"),
        (("--variant", "ym"), "argument --variant: invalid choice: 'ym'"),
        (("--variant", "es", "--colour", "red"), "unrecognized arguments: --colour red"),
        (("--variant", "es", "\x1b[2J\x1b[H\nCRITICAL forged", "\x9b31m"),
         "unrecognized arguments: \\x1b[2J\\x1b[H CRITICAL forged \\x9b31m"),
    ]),
    *_cases("gexbot.live", SIM, [
        *_not_integers("--days", "--minutes", "--seed", "--http-port"),
        (("--days", "0"), "--days must be at least 1"),
        (("--days", "-5"), "--days must be at least 1"),
        (("--days", "100000"), "100000 sessions from 2026-10-05 run past the exchange calendar"),
        (("--minutes", "-1"), "--minutes must be at least 1"),
        (("--seed", "-1"), "sim seed must be a non-negative integer"),
        (("--speed", "0"), "--speed must be positive"),
        (("--speed", "nan"), "--speed must be positive"),
        (("--speed=-inf",), "--speed must be positive"),
        (("--speed", "inf"), "--speed must be 'max' or a number of times real time"),
        (("--speed", "1e-300"), "--speed must be 'max' or a number of times real time"),
        (("--speed", "1e300"), "--speed must be 'max' or a number of times real time"),
        (("--speed", ""), "--speed must be 'max' or a number"),
        (("--start", "2026-13-01"), "expected a date like 2026-10-01, got '2026-13-01'"),
        (("--start", "0001-01-05"), "the XNYS calendar cannot reach back to 0001-01-05"),
        (("--start", "1900-01-01"), "the simulated market runs from 2020-01-02"),
        (("--start", "9999-12-31"), "9999-12-31 is outside the exchange calendar"),
        (("--http-port", "-1"), "--http-port: -1 is not a TCP port"),
        (("--http-port", "70000"), "--http-port: 70000 is not a TCP port"),
        (("--log-level", "LOUD"), "--log-level: unknown log level 'LOUD'"),
        (("--log-level", ""), "--log-level: unknown log level ''"),
        (("--preset", "{missing}"), "missing.yaml: preset file not found"),
        (("--preset", "{empty}"), "empty.yaml: a preset must be a mapping of keys to values"),
        (("--preset", "{folder}"), "folder: cannot read preset (is a folder, not a file)"),
        (("--preset", "{fifo}"), "fifo: cannot read preset (is not a regular file)"),
        (("--preset", "{huge}"), "huge.json: cannot read preset (is larger than 1024 KiB"),
        (("--preset", "{latin1}"), "latin1.yaml: not a preset: is not UTF-8 text"),
        (("--preset", "{garbage}"), "garbage.bin: not a preset: is not UTF-8 text"),
        (("--preset", "{duckdb}"), "duckdb.db: not a preset: is not UTF-8 text"),
        (("--preset", "{sqlite}"), "sqlite.db: not a preset: is not UTF-8 text"),
        (("--preset", "{deep_yaml}"), "deep_yaml.yaml: not a preset: nested more than 32"),
        (("--preset", "{deep_json}"), "deep_json.json: not a preset: nested more than 32"),
        (("--preset", "{preset_twice}"), "key 'variant' appears twice"),
        (("--preset", "{preset_nq}"), "variant is 'nq', not 'es'; pass --variant nq"),
        (("--preset", "{preset_inf}"), "strategy.starting_balance: Input should be a finite"),
        (("--preset", "{preset_nan}"), "sim.daily_vol: Input should be a finite number"),
        (("--preset", "{preset_terabytes}"), "sim.strike_interval: Input should be greater"),
        (("--model", "{missing}"), "missing.yaml: model file not found"),
        (("--model", "{empty}"), "empty.yaml: not valid JSON"),
        (("--model", "{folder}"), "folder: cannot read model file (is a folder, not a file)"),
        (("--model", "{fifo}"), "fifo: cannot read model file (is not a regular file)"),
        (("--model", "{huge}"), "huge.json: cannot read model file (is larger than 1024 KiB"),
        (("--model", "{latin1}"), "latin1.yaml: not a JSON model file (is not UTF-8 text"),
        (("--model", "{garbage}"), "garbage.bin: not a JSON model file (is not UTF-8 text"),
        (("--model", "{duckdb}"), "duckdb.db: not a JSON model file (is not UTF-8 text"),
        (("--model", "{deep_json}"), "deep_json.json: not a model file gexbot can use (nested"),
        (("--model", "{model_nq}"), "a model trained for variant 'nq', not 'es'"),
        (("--model", "{model_low_float}"), "low_state must be the integer 0 or 1, got 0.0"),
        (("--model", "{model_digits}"), "an integer of 400 digits"),
        (("--model", "{model_deep}"), "not a model file gexbot can use (nested more than 32"),
        (("--model", "{model_tiny}"), "the number 1e-320 is too small for a float"),
        (("--model", "{model_huge_mean}"), "means[0] 1e+308 is a mean one-minute return"),
        (("--record", "{garbage}"), "garbage.bin is not a folder"),
    ]),
    *_cases("gexbot.live", ("--variant", "es"), [
        (("--replay", "{missing}"), "missing.yaml: no such recording file or folder"),
        (("--replay", "{folder}"), "folder: no recordings (*.jsonl.gz) in this folder"),
        (("--replay", "{empty}"), "empty.yaml: not a gexbot recording (line 1 is not JSON)"),
        (("--replay", "{garbage}"), "garbage.bin: not a gzip file"),
        (("--replay", "{duckdb}"), "duckdb.db: not a gzip file"),
        (("--replay", "{gzip_garbage}"), "gzip_garbage.gz: not a gexbot recording"),
        (("--replay", "{rec_deep}"), "not a gexbot recording (line 1: nested more than 32"),
        (("--replay", "{rec_path}"), "variant '../../x' is not a variant name"),
        (("--replay", "{rec_session}"), "has no valid session date (got 20261005)"),
        (("--replay", "{rec_nq}"), "recorded for variant 'nq', not 'es'; pass --variant nq"),
        (("--replay", "{fifo}"), "fifo: not a regular file, so not a gexbot recording"),
        (("--replay", "{rec_fifo}"), "2026-10-06.jsonl.gz: not a regular file, so not a gexbot"),
    ]),
    # --- the reconciler -----------------------------------------------------------------
    *_cases("gexbot.reconcile", (), [
        ((), "the following arguments are required: --db, --replay"),
        (("--db", "{missing}", "--replay", "{rec_nq}"), "missing.yaml: no such database file"),
        (("--db", "{folder}", "--replay", "{rec_nq}"), "folder: no such database file"),
        (("--db", "{duckdb}", "--replay", "{rec_deep}"), "line 1: nested more than 32 levels"),
        (("--db", "{duckdb}", "--replay", "{rec_path}"), "'../../x' is not a variant name"),
        (("--db", "{duckdb}", "--replay", "{rec_session}"), "no valid session date"),
        (("--db", "{duckdb}", "--replay", "{rec_nq}", "--variant", "es"),
         "the recordings are of variant 'nq', not 'es'"),
        (("--db", "{duckdb}", "--replay", "{rec_nq}", "--preset", "{preset_es}"),
         "variant is 'es', not 'nq'"),
        (("--db", "{duckdb}", "--replay", "{rec_nq}", "--preset", "{garbage}"),
         "not a preset: is not UTF-8 text"),
        (("--db", "{duckdb}", "--replay", "{rec_nq}", "--keep", "{garbage}"),
         "garbage.bin is not a folder"),
        (("--db", "{duckdb}", "--replay", "{rec_nq}", "--log-level", "LOUD"),
         "unknown log level 'LOUD'"),
    ]),
    # --- the trainer --------------------------------------------------------------------
    *_cases("gexbot.train_hmm", ("--variant", "es", "--source", "sim", "--end", "2026-09-30"), [
        *_not_integers("--sessions", "--restarts", "--fit-seed", "--seed"),
        (("--sessions", "0"), "--sessions must be at least 1"),
        (("--sessions", "100000"), "100000 sessions ending 2026-09-30 begin before"),
        (("--sessions", "3000"), "the simulated market runs from 2020-01-02"),
        (("--restarts", "0"), "--restarts must be between 1 and 1000"),
        (("--restarts", "1000000000"), "--restarts must be between 1 and 1000"),
        (("--fit-seed", "-1"), "--fit-seed must be between 0 and"),
        (("--fit-seed", str(2**40)), "--fit-seed must be between 0 and"),
        (("--seed", "-1"), "sim seed must be a non-negative integer"),
        (("--end", "x"), "argument --end: expected a date like 2026-10-01, got 'x'"),
        (("--end", "1900-01-01"), "1900-01-01 is outside the exchange calendar"),
        (("--end", "2020-01-03"), "the simulated market runs from 2020-01-02"),
        (("--preset", "{preset_nq}"), "variant is 'nq', not 'es'"),
        (("--preset", "{deep_yaml}"), "not a preset: nested more than 32"),
        (("--preset", "{preset_terabytes}"), "sim.strike_interval"),
        (("--out", "{folder}", "--import-pickle", "{garbage}", "--trust-pickle"),
         "folder: is a folder; name the model file to write"),
        (("--out", "{duckdb}"), "exists and is not an HMM model file; gexbot replaces only"),
        (("--import-pickle", "{garbage}"), "unpickling runs code from the file"),
        (("--import-pickle", "{folder}", "--trust-pickle"), "folder: cannot unpickle"),
        (("--import-pickle", "{fifo}", "--trust-pickle"),
         "fifo: cannot unpickle (is not a regular file)"),
        (("--import-pickle", "{huge}", "--trust-pickle"), "huge.json: cannot unpickle"),
        (("--import-pickle", "{missing}", "--trust-pickle"), "missing.yaml: pickle file not found"),
    ]),
    # --- authorization ------------------------------------------------------------------
    *_cases("gexbot.auth", (), [
        (("--callback-url", "http://127.0.0.1"), "must be https://host[:port][/path]"),
        (("--callback-url", "https://localhost"), "Schwab rejects localhost"),
        ((), "SCHWAB_APP_KEY is not set"),
        (("--colour",), "unrecognized arguments: --colour"),
    ]),
    Case("gexbot.auth", ("--status",), "no Schwab refresh token", code=3),
    # --- research: backtests and feature tables ------------------------------------------
    *_cases("gexbot.backtest", SIM, [
        *_not_integers("--days", "--seed", "--workers"),
        (("--start", "1900-01-01"), "the simulated market runs from 2020-01-02"),
        (("--days", "100000"), "run past the exchange calendar's last session"),
        (("--workers", "-1"), "--workers must be at least 1"),
        (("--preset", "{preset_inf}"), "strategy.starting_balance: Input should be a finite"),
        (("--preset", "{preset_nq}"), "variant is 'nq', not 'es'"),
        (("--preset", "{latin1}"), "not a preset: is not UTF-8 text"),
        (("--set", "strategy.starting_balance=inf"), "--set strategy.starting_balance"),
        (("--set", "strategy.nope=1"), "--set strategy.nope: unknown key"),
        (("--model", "{model_low_float}"), "low_state must be the integer 0 or 1, got 0.0"),
        (("--model", "{model_nq}"), "a model trained for variant 'nq', not 'es'"),
        (("--model", "{model_deep}"), "not a model file gexbot can use (nested more than 32"),
        (("--out", "{garbage}"), "garbage.bin is not a folder"),
        (("--db", "{sqlite}"), "sqlite.db is not a DuckDB database (a SQLite database)"),
        (("--db", "{garbage}"), "garbage.bin is not a DuckDB database (it does not start as"),
        (("--db", ":memory:"), "in-memory database, which keeps nothing"),
        (("--db", ""), "--db names no file"),
        (("--db", "{folder}"), "folder is a folder; name a DuckDB file inside it"),
    ]),
    *_cases("gexbot.backtest", ("--variant", "es"), [
        (("--replay", "{rec_deep}"), "not a gexbot recording (line 1: nested more than 32"),
        (("--replay", "{rec_path}"), "variant '../../x' is not a variant name"),
        (("--features", "{garbage}"), "garbage.bin: no such feature table folder"),
        (("--features", "{folder}"), "folder: no feature tables (*.parquet) in this folder"),
    ]),
    *_cases("gexbot.features", ("build", *SIM), [
        (("--start", "1900-01-01"), "the simulated market runs from 2020-01-02"),
        (("--preset", "{deep_yaml}"), "not a preset: nested more than 32"),
        (("--model", "{model_tiny}"), "the number 1e-320 is too small for a float"),
        (("--out", "{garbage}"), "garbage.bin is not a folder"),
    ]),
    *_cases("gexbot.features", (), [
        ((), "the following arguments are required: command"),
        (("build",), "the following arguments are required: --variant"),
    ]),
    *_cases("gexbot.sweep", ("--variant", "es", "--source", "sim", "--start", "2026-10-05",
                             "--days", "2"), [
        ((), "the following arguments are required: --grid"),
        (("--grid", "{missing}"), "missing.yaml: grid file not found"),
        (("--grid", "{garbage}"), "garbage.bin: not a grid: is not UTF-8 text"),
        (("--grid", "{folder}"), "folder: not a grid: is a folder, not a file"),
        (("--grid", "{fifo}"), "fifo: not a grid: is not a regular file"),
        (("--grid", "{deep_yaml}"), "not a grid: nested more than 32 levels deep"),
        (("--grid", "{preset_twice}"), "key 'variant' appears twice"),
        (("--grid", "{empty}"), "a grid is a mapping of dotted preset keys to values"),
        (("--grid", "{empty}", "--preset", "{preset_nq}"), "variant is 'nq', not 'es'"),
        (("--grid", "{empty}", "--db", "{sqlite}"), "sqlite.db is not a DuckDB database (a SQLite"),
        (("--grid", "{empty}", "--db", ":memory:"), "in-memory database, which keeps nothing"),
    ]),
    # --- reports ------------------------------------------------------------------------
    *_cases("gexbot.report", (), [
        (("--db", "{missing}"), "missing.yaml: no such file; pass the daemon's --db file"),
        (("--db", "{folder}"), "folder is a directory; pass the daemon's --db file"),
        (("--db", "{garbage}"), "garbage.bin is not a DuckDB database (it does not start as one)"),
        (("--db", "{sqlite}"), "sqlite.db is not a DuckDB database (a SQLite database)"),
        (("--db", "{duckdb}"), "duckdb.db is not a gexbot database (it has no decisions"),
        (("--db", "{duckdb}", "--from", "x"), "argument --from: expected a date like 2026-10-01"),
        (("--db", "{duckdb}", "--out", "{folder}"), "is a directory; name the HTML file"),
        (("--db", "{duckdb}", "--out", "{garbage}"), "exists and is not a report gexbot wrote"),
        (("--db", "{duckdb}", "--out", "{duckdb}"), "exists and is not a report gexbot wrote"),
        (("--sweep", "{missing}"), "missing.yaml: no such file; pass the file python -m"
         " gexbot.sweep --db wrote"),
        (("--sweep", "{folder}"), "folder is a directory; pass the file python -m gexbot.sweep"),
        (("--sweep", "{garbage}"), "garbage.bin is not a DuckDB database (it does not start"),
        (("--sweep", "{sqlite}"), "sqlite.db is not a DuckDB database (a SQLite database)"),
        (("--sweep", "{duckdb}"), "duckdb.db is not a sweep results database (it has no sweeps"),
        (("--sweep", "{duckdb}", "--metric", "x"), "argument --metric: invalid choice: 'x'"),
        (("--sweep-id", "x"), "--sweep-id chooses what the sweep section shows; add --sweep"),
        (("--sweep", "{duckdb}", "--to", "2026-10-01"), "--to chooses rows of the daemon's"),
    ]),
    # --- the health probe ---------------------------------------------------------------
    *_cases("gexbot.shell.health", (), [
        ((), "the following arguments are required: --probe"),
        (("--probe", ""), "expected an http(s) URL, got ''"),
        (("--probe", "file:///etc/passwd"), "expected an http(s) URL"),
        (("--probe", "\x1b]0;title\x07http://x"), "got '\\x1b]0;title\\x07http://x'"),
        (("--probe", "http://127.0.0.1:1/", "--timeout", "nan"), "--timeout must be"),
        (("--probe", "http://127.0.0.1:1/", "--timeout", "-1"), "--timeout must be"),
        (("--probe", "http://127.0.0.1:1/", "--timeout", "inf"), "--timeout must be"),
        (("--probe", "http://127.0.0.1:1/", "--timeout", "x"), "invalid float value: 'x'"),
    ]),
]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Bad files in a scratch working directory; no secrets; process state put back after."""
    files = bad_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for handler in handlers:  # as in a fresh process: the command's own logging only
        root.removeHandler(handler)
    try:
        yield files
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _run(command: Callable[[list[str]], int], argv: list[str]) -> int:
    try:
        return command(argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 2


def _listing(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_value_is_one_line_and_exit_2(
    case: Case, scratch: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = _listing(Path(scratch["dir"]))
    code = _run(COMMANDS[case.command], [part.format(**scratch) for part in case.argv])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    lines = [line for line in text.splitlines() if line.strip()]
    assert "Traceback" not in text
    assert (code, len(lines)) == (case.code, 1), text
    assert case.says in lines[0]
    assert not any(char in text for char in "\x1b\x9b\r\x07"), "a control character got out"
    assert _listing(Path(scratch["dir"])) == before


def entry_points() -> dict[str, str]:
    """Every `python -m` name in the package -> the module whose `main` it runs."""
    root = Path(gexbot.__file__).parent
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        text = path.read_text(encoding="utf-8")
        if path.name == "__main__.py":
            found[name.removesuffix(".__main__")] = next(
                node.module for node in ast.walk(ast.parse(text))
                if isinstance(node, ast.ImportFrom) and node.module
                and any(alias.name == "main" for alias in node.names))
        elif 'if __name__ == "__main__":' in text:
            found[name] = name
    return found


def test_every_command_has_refusals_in_the_table() -> None:
    assert {case.command for case in CASES} == set(COMMANDS)


def test_the_table_walks_every_entry_point_of_the_package() -> None:
    """A command added to the package without rows in the table fails here."""
    found = entry_points()
    assert {"gexbot.live", "gexbot.report", "gexbot.shell.health"} <= set(found)
    walked = set(COMMANDS.values())
    missing = [name for name, module in found.items()
               if importlib.import_module(module).main not in walked]
    assert missing == []


@pytest.mark.parametrize(
    "case",
    [next(case for case in CASES if case.command == name and case.argv[-1:] != ())
     for name in COMMANDS],
    ids=list(COMMANDS),
)
def test_a_real_process_refuses_the_same_way(case: Case, tmp_path: Path) -> None:
    """The in-process table is faithful: one row of each command, run as the user runs it."""
    files = bad_files(tmp_path)
    env = {key: value for key, value in os.environ.items() if key not in SECRET_ENV}
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", case.command, *(part.format(**files) for part in case.argv)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert "Traceback" not in done.stdout + done.stderr
    assert (done.returncode, len(lines)) == (case.code, 1), done.stdout + done.stderr
    assert case.says in lines[0]
