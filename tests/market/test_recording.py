"""The recorder: the line format, a file per day, appending after restarts and kills, secrets.

Files are read back with Python's own gzip module wherever the result must be a valid gzip
stream (what `zcat` and other tools see), and with the tolerant reader where a kill left one
that is not.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import signal
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from gexbot.core.session import EASTERN
from gexbot.market import recfile
from gexbot.market.recording import RecordingTransport
from gexbot.market.transport import Endpoint, Exchange, ManagedTransport

DAY = date(2026, 11, 20)
AT = datetime(2026, 11, 20, 10, 31, 0, 412_000, tzinfo=EASTERN)
KEYS = ["at", "endpoint", "params", "status", "body", "error"]
QUOTES = {"symbols": "$SPX,SPY", "fields": "quote,reference"}
REPO = Path(__file__).resolve().parents[2]


class Canned(ManagedTransport):
    """A transport answering every request with a small body that names it."""

    def __init__(self) -> None:
        self.closed = False

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        body = {"asked": endpoint, "minute": at.strftime("%H:%M"), "price": 6801.25}
        return Exchange(at=at, endpoint=endpoint, params=dict(params), status=200, body=body)

    def close(self) -> None:
        self.closed = True


def lines_of(path: Path) -> list[dict[str, Any]]:
    """Every line of a valid gzip recording, decoded by the standard library."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def record(directory: Path, count: int, start: datetime = AT, **extra: Any) -> RecordingTransport:
    recorder = RecordingTransport(Canned(), directory, "es", header_extra=extra)
    for minute in range(count):
        recorder.get("quotes", QUOTES, start + timedelta(minutes=minute))
    return recorder


def test_header_then_one_line_per_exchange_in_the_format(tmp_path: Path) -> None:
    recorder = RecordingTransport(Canned(), tmp_path, "es", header_extra={"gexbot_version": "x"})
    history = {"symbol": "$SPX", "endDate": "1794926160412"}
    answer = recorder.get("quotes", QUOTES, AT)
    recorder.get("pricehistory", history, AT)
    recorder.close()

    lines = lines_of(tmp_path / "es" / "2026-11-20.jsonl.gz")
    assert lines[0] == {"format": "gexbot-recording", "version": 1, "variant": "es",
                        "session": "2026-11-20", "gexbot_version": "x"}
    assert [list(line) for line in lines[1:]] == [KEYS, KEYS]
    assert lines[1] == {"at": "2026-11-20T10:31:00.412-05:00", "endpoint": "quotes",
                        "params": QUOTES, "status": 200, "body": answer.body, "error": None}
    assert lines[2]["endpoint"] == "pricehistory"
    assert lines[2]["params"] == history
    assert recorder.transport.closed  # type: ignore[attr-defined]


def test_failures_are_recorded_as_they_came(tmp_path: Path) -> None:
    failing = Exchange(at=AT, endpoint="chains", params={"symbol": "$SPX"}, status=None,
                       body=None, error="timeout: read timed out")

    class Down:
        def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
            return failing

    recorder = RecordingTransport(Down(), tmp_path, "es")
    assert recorder.get("chains", {"symbol": "$SPX"}, AT) is failing
    recorder.close()
    line = lines_of(tmp_path / "es" / "2026-11-20.jsonl.gz")[1]
    assert (line["status"], line["body"], line["error"]) == (None, None, "timeout: read timed out")


def test_one_file_per_session_day_named_by_the_clock(tmp_path: Path) -> None:
    recorder = record(tmp_path, 1)
    recorder.get("quotes", QUOTES, datetime(2026, 11, 23, 9, 30, tzinfo=EASTERN))
    # 01:30 UTC on the 24th is still the evening of the 23rd in New York.
    recorder.get("quotes", QUOTES, datetime(2026, 11, 24, 1, 30, tzinfo=UTC))
    recorder.close()
    files = sorted(p.name for p in (tmp_path / "es").iterdir())
    assert files == ["2026-11-20.jsonl.gz", "2026-11-23.jsonl.gz"]
    second = lines_of(tmp_path / "es" / "2026-11-23.jsonl.gz")
    assert second[0]["session"] == "2026-11-23"
    assert [line["at"] for line in second[1:]] == ["2026-11-23T09:30:00.000-05:00",
                                                   "2026-11-23T20:30:00.000-05:00"]


def test_a_restart_appends_a_member_and_never_rewrites(tmp_path: Path) -> None:
    record(tmp_path, 2).close()
    path = tmp_path / "es" / "2026-11-20.jsonl.gz"
    before = path.read_bytes()
    record(tmp_path, 1, start=AT + timedelta(minutes=5)).close()

    after = path.read_bytes()
    assert after.startswith(before)
    lines = lines_of(path)
    assert [line.get("format") for line in lines].count("gexbot-recording") == 1
    assert [line["at"][11:16] for line in lines[1:]] == ["10:31", "10:32", "10:36"]


KILLED_WRITER = """
import os, signal, sys
from datetime import datetime, timedelta
from gexbot.core.session import EASTERN
from gexbot.market.recording import RecordingTransport
from gexbot.market.transport import Exchange

class Canned:
    def get(self, endpoint, params, at):
        return Exchange(at, endpoint, dict(params), 200, {"n": at.minute, "pad": "x" * 5000})

recorder = RecordingTransport(Canned(), sys.argv[1], "es")
start = datetime(2026, 11, 20, 10, 0, tzinfo=EASTERN)
for minute in range(int(sys.argv[2])):
    recorder.get("chains", {"symbol": "$SPX"}, start + timedelta(minutes=minute))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_recorder_loses_nothing_it_returned(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path), "25"],  # noqa: S603
                          cwd=REPO, check=False)
    assert done.returncode == -signal.SIGKILL
    path = tmp_path / "es" / "2026-11-20.jsonl.gz"
    with pytest.raises(EOFError), gzip.open(path) as handle:
        handle.read()
    decoded = recfile.read(path)
    assert len(decoded.lines) == 26
    assert any("did not finish" in problem for problem in decoded.problems)

    with caplog.at_level(logging.WARNING, logger="gexbot.recording"):
        record(tmp_path, 1, start=datetime(2026, 11, 20, 11, 0, tzinfo=EASTERN)).close()
    assert "did not finish; closed it" in caplog.text
    lines = lines_of(path)
    assert [line["body"]["n"] for line in lines[1:26]] == list(range(25))
    assert lines[26]["at"].startswith("2026-11-20T11:00")


@pytest.mark.parametrize("cut", [1, 4, 8, 9, 10, 11, 14, 40])
def test_a_file_cut_short_keeps_its_complete_lines_and_is_repaired(tmp_path: Path,
                                                                   cut: int) -> None:
    record(tmp_path, 4).close()
    path = tmp_path / "es" / "2026-11-20.jsonl.gz"
    path.write_bytes(path.read_bytes()[:-cut])
    decoded = recfile.read(path)
    kept = len(decoded.lines) - 1
    # The last 10 bytes are the final block and the trailer: every line went out before them
    # behind its own sync flush. Cutting deeper loses the lines after the cut only.
    assert kept == 4 if cut <= 10 else 1 <= kept <= 4
    assert decoded.problems

    record(tmp_path, 1, start=AT + timedelta(hours=1)).close()
    lines = lines_of(path)
    recorded = ["10:31", "10:32", "10:33", "10:34"]
    assert [line["at"][11:16] for line in lines[1:]] == [*recorded[:kept], "11:31"]


def test_a_member_broken_off_mid_file_is_skipped_past(tmp_path: Path) -> None:
    recorder = record(tmp_path, 3)
    path = tmp_path / "es" / "2026-11-20.jsonl.gz"
    unfinished = path.read_bytes()
    recorder.close()
    later = tmp_path / "later.gz"
    with gzip.open(later, "wb") as handle:
        handle.write(b'{"at":"2026-11-20T12:00:00.000-05:00"}\n')
    decoded = recfile.decode(unfinished + later.read_bytes())
    assert len(decoded.lines) == 1 + 3 + 1
    assert decoded.lines[-1].startswith(b'{"at":"2026-11-20T12:00')
    assert any("broken off" in problem for problem in decoded.problems)


def _plain_member(tag: str, count: int) -> tuple[bytes, list[bytes]]:
    """A member as the standard gzip module writes it: no sync points inside."""
    lines = [json.dumps({"tag": tag, "n": n, "pad": "x" * 40}).encode() for n in range(count)]
    return gzip.compress(b"\n".join(lines) + b"\n"), lines


@pytest.mark.parametrize("keep", [0.0, 0.02, 0.5, 0.97, -9, -8, -3])
def test_another_tools_member_cut_anywhere_then_appended_to_loses_only_the_cut(
    keep: float
) -> None:
    first, first_lines = _plain_member("first", 2000)
    second, second_lines = _plain_member("second", 300)
    cut = len(first) + int(keep) if keep < 0 else 10 + int((len(first) - 10) * keep)
    decoded = recfile.decode(first[:cut] + second)
    kept_first = [line for line in decoded.lines if b'"first"' in line]
    # Only real lines come back, a prefix of the first member's, never bytes decoded from the
    # member behind the cut; all of the second member's lines are there.
    assert kept_first == first_lines[: len(kept_first)]
    assert [line for line in decoded.lines if b'"second"' in line] == second_lines
    assert len(decoded.lines) == len(kept_first) + len(second_lines)
    if keep < 0:
        assert kept_first == first_lines
    assert decoded.problems


def test_an_empty_file_left_by_a_kill_gets_its_header(tmp_path: Path) -> None:
    path = tmp_path / "es" / "2026-11-20.jsonl.gz"
    path.parent.mkdir()
    path.write_bytes(b"")
    record(tmp_path, 1).close()
    assert lines_of(path)[0]["format"] == "gexbot-recording"


def test_a_foreign_file_is_left_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "es" / "2026-11-20.jsonl.gz"
    path.parent.mkdir()
    with gzip.open(path, "wt") as handle:
        handle.write(json.dumps({"format": "gexbot-recording", "version": 1, "variant": "nq",
                                 "session": "2026-11-20"}) + "\n")
    before = path.read_bytes()
    with caplog.at_level(logging.ERROR, logger="gexbot.recording"):
        recorder = record(tmp_path, 2)
        recorder.close()
    assert path.read_bytes() == before
    assert "not recording there" in caplog.text


def test_a_second_recorder_of_the_day_leaves_the_file_to_the_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = record(tmp_path, 2)  # still writing: its member is open
    path = tmp_path / "es" / "2026-11-20.jsonl.gz"
    before = path.read_bytes()
    with caplog.at_level(logging.ERROR, logger="gexbot.recording"):
        second = record(tmp_path, 2, start=AT + timedelta(minutes=10))
        answer = second.get("quotes", QUOTES, AT + timedelta(minutes=12))
    assert answer.ok
    assert path.read_bytes() == before
    assert caplog.text.count("is being recorded by another process") == 1
    first.get("quotes", QUOTES, AT + timedelta(minutes=2))
    first.close()
    second.close()
    assert [line["at"][11:16] for line in lines_of(path)[1:]] == ["10:31", "10:32", "10:33"]
    record(tmp_path, 1, start=AT + timedelta(minutes=20)).close()
    assert len(lines_of(path)) == 5


def test_a_symbolic_link_for_a_day_file_is_never_written_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("not a recording\n")
    folder = tmp_path / "recordings" / "es"
    folder.mkdir(parents=True)
    (folder / "2026-11-20.jsonl.gz").symlink_to(target)
    with caplog.at_level(logging.ERROR, logger="gexbot.recording"):
        recorder = record(tmp_path / "recordings", 2)
        recorder.close()
    assert target.read_text() == "not a recording\n"
    assert caplog.text.count("recording of 2026-11-20 stopped") == 1


def test_a_failing_disk_never_stops_trading(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "recordings"
    blocker.write_text("a file where the folder should be")
    recorder = RecordingTransport(Canned(), blocker, "es")
    with caplog.at_level(logging.ERROR, logger="gexbot.recording"):
        answers = [recorder.get("quotes", QUOTES, AT + timedelta(minutes=m)) for m in range(3)]
    recorder.close()
    assert all(answer.ok for answer in answers)
    assert caplog.text.count("recording of 2026-11-20 stopped") == 1


def test_concurrent_requests_write_whole_lines(tmp_path: Path) -> None:
    recorder = RecordingTransport(Canned(), tmp_path, "es")

    def ask(endpoint: Endpoint) -> None:
        for minute in range(60):
            recorder.get(endpoint, {"symbol": "$SPX"}, AT + timedelta(minutes=minute))

    endpoints = ("quotes", "chains", "pricehistory")
    threads = [threading.Thread(target=ask, args=(ep,)) for ep in endpoints]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.close()
    lines = lines_of(tmp_path / "es" / "2026-11-20.jsonl.gz")
    assert len(lines) == 1 + 180
    assert {line["endpoint"] for line in lines[1:]} == {"quotes", "chains", "pricehistory"}


def test_an_unknown_endpoint_passes_through_unrecorded(tmp_path: Path) -> None:
    recorder = RecordingTransport(Canned(), tmp_path, "es")
    recorder.get("oauth/token", {}, AT)  # type: ignore[arg-type]
    recorder.close()
    assert not (tmp_path / "es").exists()


def test_a_clock_time_without_zone_is_not_recorded(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    recorder = RecordingTransport(Canned(), tmp_path, "es")
    with caplog.at_level(logging.ERROR, logger="gexbot.recording"):
        answer = recorder.get("quotes", QUOTES, AT.replace(tzinfo=None))
    recorder.close()
    assert answer.ok
    assert "must be timezone-aware" in caplog.text
    assert not (tmp_path / "es").exists()


# --- secrets -------------------------------------------------------------------------------

APP_KEY, APP_SECRET = "app-key-1234567890", "app-secret-0987654321"
REFRESH, ACCESS = "refresh-token-abcdefghij", "access-token-zyxwvutsrq"
TOKEN_URL = "https://api.schwabapi.com/v1/oauth/token"  # noqa: S105 - a URL, not a secret
DATA_URL = "https://api.schwabapi.com/marketdata/v1/"


class TokenedTransport(ManagedTransport):
    """Schwab-shaped: an OAuth token exchange, then bearer-authorised market-data requests.

    The token request and the Authorization header live inside the transport, behind the
    seam; only what `get` returns reaches the recorder.
    """

    def __init__(self) -> None:
        self._access: str | None = None
        self._register: list[Any] = []

    def register_redactor(self, add: Any) -> None:
        self._register.append(add)

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        if self._access is None:
            basic = base64.b64encode(f"{APP_KEY}:{APP_SECRET}".encode()).decode()
            answer = requests.post(TOKEN_URL, data={"grant_type": "refresh_token",
                                                    "refresh_token": REFRESH},
                                   headers={"Authorization": f"Basic {basic}"}, timeout=5)
            self._access = answer.json()["access_token"]
            for add in self._register:
                add(self._access)
        reply = requests.get(DATA_URL + endpoint, params=params, timeout=5,
                             headers={"Authorization": f"Bearer {self._access}"})
        return Exchange(at=at, endpoint=endpoint, params=dict(params), status=reply.status_code,
                        body=reply.json())


@responses.activate
def test_no_secret_reaches_a_recording(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    responses.post(TOKEN_URL, json={"access_token": ACCESS, "refresh_token": REFRESH,
                                    "expires_in": 1800, "token_type": "Bearer"})
    responses.get(DATA_URL + "quotes", json={"$SPX": {"quote": {"lastPrice": 6800.5}}})
    # A misbehaving answer that echoes a token must not carry it into the file either.
    responses.get(DATA_URL + "chains", json={"status": "SUCCESS", "note": f"token {ACCESS}"})
    logged: list[str] = []
    recorder = RecordingTransport(TokenedTransport(), tmp_path, "es",
                                  header_extra={"source": "schwab"},
                                  secrets=(APP_KEY, APP_SECRET, REFRESH))
    recorder.register_redactor(logged.append)
    with caplog.at_level(logging.WARNING, logger="gexbot.recording"):
        recorder.get("quotes", QUOTES, AT)
        recorder.get("chains", {"symbol": "$SPX"}, AT)
    recorder.close()

    text = gzip.decompress((tmp_path / "es" / "2026-11-20.jsonl.gz").read_bytes()).decode()
    for secret in (APP_KEY, APP_SECRET, REFRESH, ACCESS, "Bearer", "Authorization", "oauth"):
        assert secret not in text
    assert logged == [ACCESS]
    assert "a secret appeared in a chains exchange" in caplog.text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["endpoint"] for line in lines[1:]] == ["quotes", "chains"]
    assert all(list(line) == KEYS for line in lines[1:])
    assert lines[2]["body"]["note"] == "token ***"
    assert len(responses.calls) == 3


def test_environment_secrets_are_masked(tmp_path: Path) -> None:
    from gexbot.core.session import TradingCalendar
    from gexbot.settings import load_variant
    from gexbot.sources import SourceOptions, open_market

    preset = load_variant("es")
    calendar = TradingCalendar("XNYS", 15)
    env = {"SCHWAB_APP_KEY": APP_KEY, "DISCORD_WEBHOOK_URL": "https://discord.test/api/hook/1"}
    options = SourceOptions(source="sim", seed=1, replay=None, record=tmp_path)
    market = open_market(options, preset, calendar, env)
    recorder = market.transport
    assert isinstance(recorder, RecordingTransport)

    class Echo:
        def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
            echoed = f"{APP_KEY} {env['DISCORD_WEBHOOK_URL']}"
            return Exchange(at, endpoint, dict(params), 200, {"echo": echoed})

    recorder.transport = Echo()
    recorder.get("quotes", QUOTES, AT)
    recorder.close()
    text = gzip.decompress((tmp_path / "es" / "2026-11-20.jsonl.gz").read_bytes()).decode()
    assert APP_KEY not in text
    assert "discord.test" not in text
    header = json.loads(text.splitlines()[0])
    assert header["source"] == "sim"
    assert header["preset"]["symbol"] == "$SPX"
    assert header["model"]["format"] == "gexbot-hmm"


# --- through the live Schwab transport ------------------------------------------------------

E2E_DAY = date(2026, 11, 12)
E2E_KEY, E2E_SECRET, E2E_REFRESH = "rec-app-key-Hq41", "rec-app-secret-Pz08", "rec-refresh-Tn+5/Yw@"


def e2e_minute(hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(2026, 11, 12, hour, minute, tzinfo=EASTERN)


def test_a_schwab_session_is_recorded_without_secrets_and_reconciles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from fake_schwab import FakeSchwab, Fault, schwab_error

    from gexbot import live, reconcile
    from gexbot.core.session import TradingCalendar
    from gexbot.market.sim import SimMarket
    from gexbot.settings import load_variant

    preset = load_variant("es")
    calendar = TradingCalendar(preset.calendar, 15, start=E2E_DAY - timedelta(days=14))
    fake = FakeSchwab(SimMarket(preset, calendar, 6), app_key=E2E_KEY, app_secret=E2E_SECRET,
                      refresh_token=E2E_REFRESH)
    fake.faults = [
        Fault("quotes", e2e_minute("09:34"), "revoke"),
        Fault("chains", e2e_minute("09:36"), "status", 500,
              body=schwab_error(500, "Internal Server Error"), times=3),
        Fault("quotes", e2e_minute("09:38"), "status", 429, retry_after="0"),
        Fault("pricehistory", e2e_minute("09:41"), "truncated"),
        *[Fault(ep, e2e_minute("09:44"), "status", 429, retry_after="90", times=-1)
          for ep in ("quotes", "pricehistory", "chains")],
    ]
    env = {"SCHWAB_APP_KEY": E2E_KEY, "SCHWAB_APP_SECRET": E2E_SECRET,
           "SCHWAB_REFRESH_TOKEN": E2E_REFRESH,
           "SCHWAB_REFRESH_TOKEN_ISSUED_AT": (e2e_minute("09:00") - timedelta(days=1)).isoformat(),
           "GEXBOT_SCHWAB_BASE_URL": fake.base_url, "GEXBOT_TOKEN_FILE": str(tmp_path / "t.json"),
           "GEXBOT_SCHWAB_TIMEOUT_S": "0.2", "GEXBOT_SCHWAB_BACKOFF_S": "0",
           "DISCORD_WEBHOOK_URL": ""}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    folder, database = tmp_path / "recordings", tmp_path / "live.db"
    try:
        with fake:
            code = live.main(["--variant", "es", "--source", "schwab", "--start", str(E2E_DAY),
                              "--days", "1", "--minutes", "20", "--record", str(folder),
                              "--db", str(database), "--log-level", "WARNING"])
        issued = list(fake.issued)
        assert code == 0
        path = folder / "es" / "2026-11-12.jsonl.gz"
        text = gzip.decompress(path.read_bytes()).decode()
        assert len(issued) >= 2
        for secret in (E2E_KEY, E2E_SECRET, E2E_REFRESH, *issued, "Bearer", "Authorization",
                       "Basic ", "oauth", "CorrelId"):
            assert secret not in text
        lines = [json.loads(line) for line in text.splitlines()]
        assert lines[0]["source"] == "schwab"
        assert {line["endpoint"] for line in lines[1:]} == {"quotes", "pricehistory", "chains"}
        assert all(list(line) == KEYS for line in lines[1:])
        assert {line["status"] for line in lines[1:]} >= {200, 500, None}
        capfd.readouterr()
        assert reconcile.main(["--db", str(database), "--replay", str(folder)]) == 0
        assert "identical: 1 session(s) 2026-11-12, 20 decisions" in capfd.readouterr().out
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        for handler in handlers:
            handler.filters.clear()
        root.setLevel(level)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
