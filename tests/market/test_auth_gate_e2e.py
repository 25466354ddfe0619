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
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fake_schwab import Fault, schwab_error
from schwab_helpers import load
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


PASSING = load("oauth_refresh_superseded")


def test_a_refusal_that_passes_is_traded_through_without_a_new_login(
    daemon: Any, discord: queue.Queue[dict[str, Any]]
) -> None:
    faults = [Fault("quotes", at("09:40"), "revoke"),
              Fault("token", at("09:40"), "status", 400, body=PASSING),
              Fault("token", at("09:55"), "status", 403, body=b"<html>Access Denied</html>")]
    with _fake(faults) as fake:
        run = daemon("passing", "schwab", fake, "--minutes", "90")
        tokens = [(seen.clock.strftime("%H:%M"), seen.answered) for seen in fake.token_requests()]
    assert run.code == 0, run.output
    assert tokens == [("09:30", 200), ("09:40", 400), ("09:55", 403), ("10:25", 200),
                      ("10:54", 200)]  # fmt: skip
    actions = {row["at"]: row["action"] for row in run.decisions}
    assert len(actions) == 90
    skipped = sorted(minute for minute, action in actions.items() if action == "SKIP")
    assert skipped == [at("09:40") + timedelta(minutes=n) for n in range(45)]
    assert all(action != "SKIP" for minute, action in actions.items() if minute >= at("10:25"))
    titles = [t for t in _titles(discord) if "Schwab refused" in t or "accepts" in t]
    assert titles == ["[WARNING] ES: Schwab refused the refresh token, asking again",
                      "[WARNING] ES: Schwab accepts the refresh token again"]  # fmt: skip
    assert " CRITICAL " not in run.output
    assert "Traceback" not in run.output
    assert REFRESH not in run.output


def test_a_refusal_that_lasts_costs_a_few_requests_survives_a_restart_and_ends_when_sure(
    daemon: Any, discord: queue.Queue[dict[str, Any]]
) -> None:
    day = [at("09:30") + timedelta(minutes=n) for n in range(390)]
    faults = [Fault("quotes", at("09:31"), "revoke"),
              *[Fault("token", minute, "status", 400, body=PASSING, times=-1)
                for minute in day[1:]]]  # fmt: skip
    with _fake(faults) as fake:
        first = daemon("lasting", "schwab", fake, "--minutes", "120")
        asked = [seen.clock.strftime("%H:%M") for seen in fake.token_requests()]
        sent = [seen.clock.strftime("%H:%M") for seen in fake.data_requests()]
        data = len(sent)
        assert first.code == 0, first.output
        assert asked == ["09:30", "09:31", "09:46", "10:16", "11:16"]
        # Nothing sent with the refused access token while waiting. The 09:31 requests go out
        # together on threads of their own: one that starts after the refusal is known is not
        # sent at all, so 1 to 3 of them reach Schwab, as the threads happen to be scheduled.
        assert sent[:3] == ["09:30"] * 3
        assert set(sent[3:]) == {"09:31"}
        assert 1 <= len(sent[3:]) <= 3
        assert [t for t in _titles(discord) if "Schwab refused" in t] == [
            "[WARNING] ES: Schwab refused the refresh token, asking again"]  # fmt: skip
        assert [row["action"] for row in first.decisions].count("SKIP") == 119
        # Restarted: it goes on with the wait (nothing asked early, no second alert), and the
        # next refusal, at 13:16, finds the token 7 days old (issued at noon): final, exit 3.
        again = daemon("lasting", "schwab", fake, "--minutes", "390")
        asked = [seen.clock.strftime("%H:%M") for seen in fake.token_requests()]
        assert len(fake.data_requests()) == data
        assert again.code == 3, again.output
        assert asked[5:] == ["13:16"]
        assert [t for t in _titles(discord) if "Schwab" in t and "expires" not in t] == [
            "[CRITICAL] ES: Schwab authentication failed"]  # fmt: skip
        critical = [line for line in again.output.splitlines() if " CRITICAL " in line]
        assert len(critical) == 1
        assert "issued 7 d 1 h ago: re-authorize" in critical[0]
        # And from then on, starts wait for a new login without asking Schwab.
        third = daemon("lasting", "schwab", fake, "--minutes", "390")
        assert third.code == 3
        assert len(fake.token_requests()) == 6
    for run in (first, again, third):
        assert "Traceback" not in run.output
        assert REFRESH not in run.output
