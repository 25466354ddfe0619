"""No secret in any spelling, nor a piece of one, in anything a run, replay or reconcile leaves.

The daemon trades against the local fake Schwab with secrets made to be hard to mask (quotes, a
backslash, `%`, `+`, `/`, `=`, regex characters), while the fake misbehaves the way a careless
server does: it quotes the Authorization header (the Bearer token, the Basic value) and what it
was sent (the refresh token, URL-encoded) in its error texts, padded so that every cut the code
makes (error details, skip reasons, Schwab's token errors) would fall inside a secret, and echoes
a secret in a chain's status. The run records (`--record`), is replayed (`--replay`) and
reconciled (`reconcile --keep`), with a Discord webhook listening; then every line printed, every
database, every recording and every message posted is searched for each secret, each spelling of
it, and any 5 characters of it in a row.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cli_state import process_state_restored
from fake_schwab import FakeSchwab, Fault
from secret_search import (
    HOSTILE_KEY,
    HOSTILE_REFRESH,
    HOSTILE_SECRET,
    HOSTILE_WEBHOOK_PATH,
    basic,
    files_under,
    leaks,
)

from gexbot import live, reconcile
from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.market.sim import SimMarket
from gexbot.settings import load_variant

DAY = date(2026, 11, 12)
SEED = 6
PIECES = (HOSTILE_KEY, HOSTILE_SECRET, HOSTILE_REFRESH, basic(HOSTILE_KEY, HOSTILE_SECRET),
          HOSTILE_WEBHOOK_PATH.rsplit("/", 1)[1])  # fmt: skip


def at(hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(DAY.year, DAY.month, DAY.day, hour, minute, tzinfo=EASTERN)


def _padded(n: int) -> str:
    return "x" * n + " "


FAULTS = [
    # Error details are cut at 120 characters: put the Bearer token (and after it the query)
    # across the cut.
    *[Fault("quotes", at(f"09:{33 + i}"), "echo", 400, body=_padded(pad))
      for i, pad in enumerate((50, 55, 58, 100))],
    Fault("chains", at("09:38"), "echo", 500, body=_padded(60), times=3),
    # A body quoting the secrets in their escaped spellings.
    Fault("pricehistory", at("09:39"), "status", 400, body={"errors": [{
        "title": "Bad Request", "detail": _padded(90) + json.dumps(
            {"key": HOSTILE_KEY, "secret": HOSTILE_SECRET, "refresh": HOSTILE_REFRESH})}]}),
    # A chain whose status quotes the app secret, past the 40 characters a bad value is cut to.
    Fault("chains", at("09:41"), "body", body={"status": _padded(30) + HOSTILE_SECRET}),
    # The token endpoint quotes the Basic value and the refresh token it was sent (URL-encoded),
    # past the 100 characters its description is cut to, and refuses in a way that may pass.
    # (The first access token is due for refresh at 09:58 or 09:59, as its lifetime began a
    # fraction of a second into 09:30.)
    *[Fault("token", at(minute), "echo", 400, body=_padded(70)) for minute in ("09:58", "09:59")],
]  # fmt: skip


class _Webhook(BaseHTTPRequestHandler):
    received: queue.Queue[bytes]

    def do_POST(self) -> None:
        self.received.put(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue[bytes]]]:
    received: queue.Queue[bytes] = queue.Queue()
    handler = type("Hook", (_Webhook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}{HOSTILE_WEBHOOK_PATH}", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def restored() -> Iterator[None]:
    with process_state_restored():
        yield


def test_no_secret_in_any_spelling_reaches_anything_a_run_replay_or_reconcile_leaves(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    webhook: tuple[str, queue.Queue[bytes]],
    restored: None,
) -> None:
    url, posted = webhook
    preset = load_variant("es")
    calendar = TradingCalendar(preset.calendar, 15, start=DAY - timedelta(days=14))
    fake = FakeSchwab(SimMarket(preset, calendar, SEED), app_key=HOSTILE_KEY,
                      app_secret=HOSTILE_SECRET, refresh_token=HOSTILE_REFRESH)  # fmt: skip
    fake.faults = list(FAULTS)
    out = tmp_path / "out"
    out.mkdir()
    token_file = tmp_path / "secret-place" / "schwab-token.json"
    env = {"SCHWAB_APP_KEY": HOSTILE_KEY, "SCHWAB_APP_SECRET": HOSTILE_SECRET,
           "SCHWAB_REFRESH_TOKEN": HOSTILE_REFRESH,
           "SCHWAB_REFRESH_TOKEN_ISSUED_AT": (at("09:00") - timedelta(days=2)).isoformat(),
           "GEXBOT_SCHWAB_BASE_URL": fake.base_url, "GEXBOT_TOKEN_FILE": str(token_file),
           "GEXBOT_SCHWAB_TIMEOUT_S": "0.5", "GEXBOT_SCHWAB_BACKOFF_S": "0",
           "DISCORD_WEBHOOK_URL": url}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    recordings, database = out / "recordings", out / "live.db"
    with fake:
        code = live.main(["--variant", "es", "--source", "schwab", "--start", str(DAY),
                          "--days", "1", "--minutes", "45", "--record", str(recordings),
                          "--db", str(database), "--log-level", "DEBUG"])  # fmt: skip
        issued = list(fake.issued)
    assert code == 0
    assert len(issued) >= 2
    replayed = live.main(["--variant", "es", "--replay", str(recordings), "--db",
                          str(out / "replay.db"), "--log-format", "json"])  # fmt: skip
    assert replayed == 0
    verdict = reconcile.main(["--db", str(database), "--replay", str(recordings), "--keep",
                              str(out / "kept")])  # fmt: skip
    printed = capfd.readouterr()
    assert verdict == 0, printed.out

    written = files_under(out)
    assert {path.suffix for path in written} >= {".db", ".gz"}
    assert any("kept" in path.parts for path in written)
    messages = []
    while not posted.empty():
        messages.append(posted.get())
    assert messages  # alerts went out (the refusal, the failing data): masked
    everything = {"stdout": printed.out, "stderr": printed.err,
                  **{str(path): data for path, data in written.items()},
                  **{f"discord {n}": body for n, body in enumerate(messages)}}  # fmt: skip
    assert "Traceback" not in printed.out + printed.err
    # The fake's access tokens end in 16 random hex digits: 8 in a row would be no coincidence.
    hex_parts = [token.rsplit("-", 1)[1] for token in issued]
    for where, data in everything.items():
        assert leaks(data, PIECES) == [], where
        assert leaks(data, [url, *issued], pieces=False) == [], where
        assert leaks(data, hex_parts, run=8) == [], where
    # The faults did reach the run: masked texts where the secrets were.
    skipped = printed.out.count("SKIP")
    assert skipped >= 7
    assert "Authorization: Bearer ***" in printed.out
    assert "Schwab refused the refresh token" in printed.out
    assert "Basic ***" in printed.out
