"""A dead refresh token under Docker's restart policy: one alert, then no calls to anyone.

The daemon runs in-process against the local fake Schwab (see `test_schwab_e2e`) with a local
Discord webhook. Schwab refuses the refresh token; the run exits 3 and alerts. Restarted with
the same credentials it exits 3 at once, sending nothing to Schwab or Discord. A new refresh
token (a re-authorization) lets the next start trade again.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fake_schwab import Fault, schwab_error
from test_schwab_e2e import KEY, REFRESH, SECRET, _fake, at, daemon

from gexbot.market.tokens import TokenFile, Tokens

__all__ = ["daemon"]  # the in-process daemon fixture, shared with the fault run

REFUSED = {"error": "invalid_client", "error_description": "refresh token invalid"}


class _Webhook(BaseHTTPRequestHandler):
    received: queue.Queue[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.put(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def discord(monkeypatch: pytest.MonkeyPatch) -> Iterator[queue.Queue[dict[str, Any]]]:
    """A local webhook; DISCORD_WEBHOOK_URL points at it. Yields the posted bodies."""
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    hook = type("Hook", (_Webhook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    monkeypatch.setenv("DISCORD_WEBHOOK_URL", f"http://127.0.0.1:{port}/api/webhooks/1/e2e-hook")
    yield received
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _titles(received: queue.Queue[dict[str, Any]]) -> list[str]:
    titles = []
    while not received.empty():
        titles.extend(embed["title"] for embed in received.get()["embeds"])
    return titles


def test_a_refused_token_is_remembered_across_restarts_until_it_changes(
    daemon: Any, discord: queue.Queue[dict[str, Any]], tmp_path: Path
) -> None:
    faults = [Fault("quotes", at("09:40"), "revoke"),
              Fault("token", at("09:40"), "status", 400, body=REFUSED, times=-1)]  # fmt: skip
    with _fake(faults) as fake:
        first = daemon("gate", "schwab", fake)
        assert first.code == 3
        assert [t for t in _titles(discord) if "authentication" in t] == [
            "[CRITICAL] ES: Schwab authentication failed"
        ]
        asked = len(fake.seen)

        again = daemon("gate", "schwab", fake)
        assert again.code == 3
        assert len(fake.seen) == asked  # not one request to Schwab
        assert _titles(discord) == []  # and no second alert the same day
        critical = [line for line in again.output.splitlines() if " CRITICAL " in line]
        assert len(critical) == 1
        assert "Not contacting Schwab until they change" in critical[0]
        assert REFRESH not in again.output

        fake.faults = []
        fake.refresh_token = REFRESH + "-renewed"
        # What `python -m gexbot.auth` leaves in the shared token file after a new login.
        TokenFile(tmp_path / "gate-token.json").write(
            Tokens(refresh_token=fake.refresh_token, refresh_issued_at=at("09:50"))
        )
        renewed = daemon("gate", "schwab", fake, "--minutes", "5")
        assert renewed.code == 0, renewed.output
        assert len(fake.seen) > asked
        assert "trading again" in renewed.output
    for run in (first, again, renewed):
        for secret in (REFRESH, "e2e-hook"):
            assert secret not in run.output
            assert secret.encode() not in run.db_bytes


def test_an_error_text_quoting_secrets_reaches_no_row(daemon: Any) -> None:
    quoting = schwab_error(400, "Bad Request", f"bad token {REFRESH} for client {KEY}")
    faults = [Fault("quotes", at("09:35"), "status", 400, body=quoting),
              Fault("token", at("09:36"), "status", 400, times=-1,
                    body={"error": "invalid_client", "error_description": f"{REFRESH} {KEY}"}),
              Fault("quotes", at("09:36"), "revoke")]  # fmt: skip
    with _fake(faults) as fake:
        run = daemon("quoting", "schwab", fake)
    assert run.code == 3
    reasons = [row["reason"] for row in run.decisions if row["action"] == "SKIP"]
    assert reasons == ["http_400: quotes: HTTP 400 (Bad Request: bad token *** for client ***)"]
    for secret in (REFRESH, KEY, SECRET):
        assert secret not in run.output
        assert secret.encode() not in run.db_bytes
