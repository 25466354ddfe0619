"""The daemon on a simulated clock against a local fake Schwab, with faults: what survives.

`python -m gexbot.live --source schwab --start DAY` runs the live transport, OAuth included, on a
simulated clock; the fake serves the simulated market over HTTP on 127.0.0.1. One simulated hour
is run four ways: the simulated market directly, the fake without faults, the fake with planned
faults, and the fake with plain 400s at exactly the minutes the faults must cost. Faults that
the transport absorbs (a retry, a wait, a refresh) must leave no trace; the others must skip
exactly their minute and otherwise change nothing, so the faulty run equals the plain one row for
row, and the plain one shows what the skipped minutes changed.
"""

from __future__ import annotations

import gzip
import logging
import signal
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fake_schwab import FakeSchwab, Fault, schwab_error
from schwab_helpers import load

import gexbot.live as live
import gexbot.train_hmm as train_hmm
from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.market.sim import SimMarket
from gexbot.settings import load_variant

DAY = date(2026, 11, 12)
SEED = 6
KEY = "e2e-app-key-Mx31"
SECRET = "e2e-app-secret-Vb72"  # noqa: S105 (a fake, searched for in output)
REFRESH = "e2e-refresh-Qw+9/Lk@"
ISSUED = datetime(2026, 11, 5, 12, 0, tzinfo=EASTERN)
"""Seven days before noon of DAY: the run starts inside the 24-hour warning."""


def at(hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(DAY.year, DAY.month, DAY.day, hour, minute, tzinfo=EASTERN)


def _zero_interest() -> dict[str, Any]:
    body = load("chains_zero_open_interest")
    body["symbol"] = "$SPX"
    return body


ALL = ("quotes", "pricehistory", "chains")
FAULTS = [
    # absorbed inside the minute
    Fault("chains", at("09:33"), "status", 500, body=schwab_error(500, "Internal Server Error")),
    Fault("pricehistory", at("09:38"), "slow"),
    Fault("quotes", at("09:42"), "drop"),
    Fault("quotes", at("09:44"), "revoke"),  # the access token dies early: 401, refresh, retry
    Fault("quotes", at("09:46"), "status", 429, retry_after="0"),
    Fault("token", at("10:13"), "status", 503),  # refresh due, endpoint down: old token serves
    # costing their minute
    Fault("quotes", at("09:35"), "status", 502, body=load("error_gateway_fault"), times=3),
    Fault("chains", at("09:40"), "slow", times=3),
    *[Fault(ep, at("09:48"), "status", 429, retry_after="90", times=-1) for ep in ALL],
    Fault("chains", at("09:52"), "status", 429, body=load("error_429")),
    Fault("pricehistory", at("09:55"), "truncated"),
    Fault("quotes", at("10:02"), "body", body=load("quotes_spx_zero_price")),
    Fault("chains", at("10:05"), "body", body=load("chains_failed")),
    Fault("chains", at("10:11"), "body", body=_zero_interest()),  # the minute a TARGET exit was due
    Fault("quotes", at("10:19"), "status", 503, times=3),  # the minute an entry was due
]
SKIPPED = {
    at("09:35"): "server_error", at("09:40"): "timeout", at("09:48"): "rate_limited",
    at("09:49"): "rate_limited", at("09:52"): "rate_limited", at("09:55"): "bad_json",
    at("10:02"): "quote_price", at("10:05"): "chain_status", at("10:11"): "chain_no_interest",
    at("10:19"): "server_error",
}  # fmt: skip


@dataclass
class Run:
    code: int
    output: str
    decisions: list[dict[str, Any]]
    trades: list[tuple[Any, ...]]
    db_bytes: bytes


@pytest.fixture
def daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Any]:
    """Runs `python -m gexbot.live` in-process; restores logging and signal handlers after."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    for name in ("SCHWAB_REFRESH_TOKEN", "DISCORD_WEBHOOK_URL", "GEXBOT_TOKEN_FILE"):
        monkeypatch.setenv(name, "")

    def run(name: str, source: str, fake: FakeSchwab | None, *extra: str) -> Run:
        db = tmp_path / f"{name}.db"
        if fake is not None:
            monkeypatch.setenv("SCHWAB_APP_KEY", KEY)
            monkeypatch.setenv("SCHWAB_APP_SECRET", SECRET)
            monkeypatch.setenv("SCHWAB_REFRESH_TOKEN", REFRESH)
            monkeypatch.setenv("SCHWAB_REFRESH_TOKEN_ISSUED_AT", ISSUED.isoformat())
            monkeypatch.setenv("GEXBOT_SCHWAB_BASE_URL", fake.base_url)
            monkeypatch.setenv("GEXBOT_TOKEN_FILE", str(tmp_path / f"{name}-token.json"))
            monkeypatch.setenv("GEXBOT_SCHWAB_TIMEOUT_S", "0.2")
            monkeypatch.setenv("GEXBOT_SCHWAB_BACKOFF_S", "0")
        code = live.main([
            "--variant", "es", "--source", source, "--seed", str(SEED), "--start", str(DAY),
            "--days", "1", "--minutes", "60", "--db", str(db), *extra])  # fmt: skip
        captured = capsys.readouterr()
        return Run(code, captured.out + captured.err, *_read(db))

    yield run
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)
    root.setLevel(level)


def _read(db: Path) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]], bytes]:
    if not db.exists():
        return [], [], b""
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute('SELECT * FROM decisions ORDER BY "at"')
        names = [column[0] for column in cursor.description]
        decisions = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        trades = con.execute('SELECT * FROM trades ORDER BY "timestamp"').fetchall()
    raw = b"".join(path.read_bytes() for path in db.parent.glob(db.name + "*") if path.is_file())
    return decisions, trades, raw


def _fake(faults: list[Fault]) -> FakeSchwab:
    preset = load_variant("es")
    calendar = TradingCalendar(preset.calendar, preset.strategy.flatten_minutes_before_close,
                               start=DAY - timedelta(days=14))  # fmt: skip
    market = SimMarket(preset, calendar, SEED)
    market.get("quotes", {"symbols": "$SPX,SPY"}, at("09:30"))  # builds the day ahead of time
    # 30.5 minutes: a token from hh:mm:00 is due for refresh at a whole minute, 28 minutes on.
    fake = FakeSchwab(market, app_key=KEY, app_secret=SECRET, refresh_token=REFRESH,
                      access_lifetime_s=1830)  # fmt: skip
    fake.faults = [Fault(**vars(fault)) for fault in faults]
    return fake


def _without_skip_reasons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row | {"reason": None} if row["action"] == "SKIP" else row for row in rows]


def test_an_hour_of_faults_skips_exactly_the_minutes_they_cost(daemon: Any, tmp_path: Path) -> None:
    simulated = daemon("sim", "sim", None)
    with _fake([]) as fake:
        clean = daemon("clean", "schwab", fake)
    plain_faults = [Fault("quotes", minute, "status", 400, body=schwab_error(400, "Bad Request"))
                    for minute in SKIPPED]  # fmt: skip
    with _fake(plain_faults) as fake:
        plain = daemon("plain", "schwab", fake)
    rec = tmp_path / "recordings"
    with _fake(FAULTS) as fake:
        faulty = daemon("faulty", "schwab", fake, "--log-level", "DEBUG", "--record", str(rec))
        requests_seen, tokens_seen = fake.data_requests(), fake.token_requests()
        issued = fake.issued

    assert (simulated.code, clean.code, plain.code, faulty.code) == (0, 0, 0, 0)
    # Over HTTP, without faults, the daemon decides exactly as on the simulated market.
    assert clean.decisions == simulated.decisions
    assert len(clean.decisions) == 60
    assert clean.trades == simulated.trades
    assert len(clean.trades) == 2

    skips = {row["at"]: row["reason"] for row in faulty.decisions if row["action"] == "SKIP"}
    assert set(skips) == set(SKIPPED)
    for minute, kind in SKIPPED.items():
        assert skips[minute].startswith(f"{kind}: "), (minute, skips[minute])
    # Absorbed faults leave no trace; costly ones cost their minute and nothing else.
    assert _without_skip_reasons(faulty.decisions) == _without_skip_reasons(plain.decisions)
    assert faulty.trades == plain.trades
    # ... and the skipped minutes did change the hour: no exit at 10:11, no entry at 10:19.
    assert plain.trades != clean.trades
    assert [row["action"] for row in clean.decisions if row["at"] in (at("10:11"), at("10:19"))] \
        == ["CLOSE", "LONG"]  # fmt: skip

    _check_requests(requests_seen, tokens_seen)
    assert faulty.output.count("WARNING the Schwab refresh token expires in 2 h ") == 1
    assert "Traceback" not in faulty.output
    assert stat.S_IMODE((tmp_path / "faulty-token.json").stat().st_mode) == 0o600
    recorded = b"".join(gzip.decompress(path.read_bytes()) for path in rec.rglob("*.jsonl.gz"))
    assert recorded.count(b"\n") >= 3 * 60  # every exchange, failed ones included
    for secret in (KEY, SECRET, REFRESH, *issued):
        for text in (faulty.output, clean.output):
            assert secret not in text
        assert secret.encode() not in faulty.db_bytes
        assert secret.encode() not in recorded


def _check_requests(data: list[Any], tokens: list[Any]) -> None:
    minutes = [seen.clock.replace(second=0, microsecond=0) for seen in data]
    # During Schwab's 90 s pause nothing was asked; the minute after it asked as usual.
    paused = [seen for seen in data if at("09:48") + timedelta(seconds=1) <= seen.clock < at(
        "09:49") + timedelta(seconds=30)]  # fmt: skip
    assert paused == []
    assert minutes.count(at("09:49")) == 0
    assert minutes.count(at("09:50")) == 3
    # 401s only when the token died early (for each request of that minute), one refresh for all.
    assert {m for m, seen in zip(minutes, data, strict=True) if seen.answered == 401} == {
        at("09:44")}  # fmt: skip
    assert [(seen.clock.strftime("%H:%M"), seen.answered) for seen in tokens] == [
        ("09:30", 200), ("09:44", 200), ("10:13", 503), ("10:14", 200)]  # fmt: skip
    assert all(seen.params["grant_type"] == "refresh_token" for seen in tokens)
    correl = [seen.headers["Schwab-Client-CorrelId"] for seen in data]
    assert len({uuid.UUID(value) for value in correl}) == len(data)
    assert len(data) <= 3 * 60 + 12  # retries are bounded: no tight loop anywhere


def test_a_refused_refresh_stops_the_daemon_with_exit_3(daemon: Any) -> None:
    refused = {"error": "invalid_client", "error_description": "refresh token invalid"}
    with _fake([Fault("quotes", at("09:40"), "revoke"),
                Fault("token", at("09:40"), "status", 400, body=refused)]) as fake:  # fmt: skip
        run = daemon("refused", "schwab", fake)
    assert run.code == 3
    assert [row["at"] for row in run.decisions][-1] == at("09:39")
    critical = [line for line in run.output.splitlines() if " CRITICAL " in line]
    assert len(critical) == 1
    message = critical[0].split(" CRITICAL ")[1]
    assert message.startswith(
        "Schwab refused the refresh token (HTTP 400 invalid_client: refresh token invalid);"
        " it was issued 6 d 21 h ago: re-authorize with `python -m gexbot.auth` (token file"
    )
    assert "Traceback" not in run.output
    assert REFRESH not in run.output


@pytest.mark.parametrize("missing", ["SCHWAB_APP_KEY", "SCHWAB_APP_SECRET", "SCHWAB_REFRESH_TOKEN"])
def test_without_credentials_both_commands_say_what_is_missing(
    missing: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    daemon: Any,
) -> None:
    for name in ("SCHWAB_APP_KEY", "SCHWAB_APP_SECRET", "SCHWAB_REFRESH_TOKEN"):
        monkeypatch.setenv(name, "" if name == missing else f"set-{name}")
    expected = f"{missing} is not set"
    assert live.main(["--variant", "es", "--db", str(tmp_path / "x.db")]) == 2
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 1
    assert expected in lines[0]
    assert lines[0].endswith("--source sim runs without credentials")
    assert not (tmp_path / "x.db").exists()
    caplog.clear()
    assert train_hmm.main(["--variant", "es", "--out", str(tmp_path / "m.json")]) == 2
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1
    assert messages[0].startswith(expected)
    assert messages[0].endswith("--source sim runs without credentials")
