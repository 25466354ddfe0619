"""Discord notifier: payloads, rate limits, failures, the queue bound, and a real local webhook."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import responses

from gexbot.core.session import EASTERN
from gexbot.core.types import (
    Closed,
    Direction,
    ExitReason,
    Features,
    GexRegime,
    HmmState,
    Opened,
    Position,
    SessionEnded,
    Trade,
)
from gexbot.shell.discord import DiscordNotifier, closed_payload
from gexbot.shell.logs import Redactor

TOKEN = "Fake-Webhook-Token_abc123"  # noqa: S105 (a fake)
URL = f"https://discord.com/api/webhooks/42/{TOKEN}"
NOW = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
ENTRY = datetime(2026, 11, 20, 10, 31, tzinfo=EASTERN)
EXIT = datetime(2026, 11, 20, 10, 47, tzinfo=EASTERN)
FEATURES = Features(1.5e9, GexRegime.POSITIVE, 0, 2.5, 0.41, HmmState.LOW, 6810.4, 6825.0,
                    6802.0, 4.6)


def opened() -> Opened:
    position = Position(Direction.LONG, "REVERSION", ENTRY, 6801.25, 4000.0, 6810.4, 6787.5,
                        GexRegime.POSITIVE, ENTRY.date())
    return Opened("es", "$SPX", position, 0.12, FEATURES, 6801.0, "spot below the lower band")


def closed(reason: ExitReason = ExitReason.TARGET, pnl: float = 5.44) -> Closed:
    trade = Trade("es", "$SPX", Direction.LONG, "REVERSION", ENTRY, 6801.25, EXIT, 6810.5,
                  4000.0, GexRegime.POSITIVE, reason, pnl)
    return Closed(trade, 100_000.0 + pnl)


class Recorder:
    """An injected sleep that records what it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def notifier(url: str | None = URL, **kwargs: Any) -> DiscordNotifier:
    kwargs.setdefault("sleep", Recorder())
    return DiscordNotifier(url, now=lambda: NOW, **kwargs)


def bodies(calls: Any) -> list[dict[str, Any]]:
    return [json.loads(call.request.body) for call in calls]


def test_without_a_url_nothing_happens() -> None:
    quiet = DiscordNotifier(None, session=object())  # type: ignore[arg-type]
    quiet.notify(closed())
    quiet.alert("Auth failed", "refresh token expired")
    quiet.close(timeout=1.0)
    assert not quiet.enabled
    assert (quiet.sent, quiet.dropped) == (0, 0)


@responses.activate
def test_events_and_alerts_become_embeds() -> None:
    responses.post(URL, status=204)
    sink = notifier()
    sink.handle([opened(), closed()])
    sink.notify(SessionEnded("es", date(2026, 11, 20), 2, -30.5, 99_969.5))
    sink.alert("Market data failing", "5 consecutive minutes skipped", "error")
    sink.close(timeout=5.0)
    sent = bodies(responses.calls)
    assert sink.sent == 4
    assert [set(b["embeds"][0]) for b in sent] == [
        {"title", "description", "color", "fields", "timestamp"}
    ] * 4
    entry, exit_, day, alert = (b["embeds"][0] for b in sent)
    assert entry["title"] == "ES LONG opened @ 6,801.25"
    assert entry["color"] == 0x3498DB
    assert entry["timestamp"] == "2026-11-20T10:31:00-05:00"
    assert exit_["title"] == "ES LONG closed: TARGET +$5.44"
    assert exit_["color"] == 0x2ECC71
    assert {f["name"]: f["value"] for f in exit_["fields"]} == {
        "Entry": "6,801.25",
        "Exit": "6,810.50",
        "Reason": "TARGET",
        "PnL": "+$5.44",
        "Balance": "$100,005.44",
    }
    assert day["title"] == "ES session 2026-11-20"
    assert day["description"] == "2 trades, day PnL -$30.50"
    assert day["color"] == 0xE74C3C
    assert day["timestamp"] == NOW.isoformat()
    assert alert["title"] == "[ERROR] Market data failing"
    assert alert["description"] == "5 consecutive minutes skipped"


@pytest.mark.parametrize(
    ("reason", "color"),
    [
        (ExitReason.TARGET, 0x2ECC71),
        (ExitReason.STOP_LOSS, 0xE74C3C),
        (ExitReason.EOD_FLATTEN, 0x607D8B),
        (ExitReason.REGIME_FLIP, 0xE67E22),
    ],
)
def test_exit_color_follows_the_reason(reason: ExitReason, color: int) -> None:
    assert closed_payload(closed(reason))["embeds"][0]["color"] == color


@responses.activate
def test_rate_limit_waits_retry_after_then_resends() -> None:
    responses.post(URL, status=429, json={"message": "rate limited", "retry_after": 1.5})
    responses.post(URL, status=204)
    waits = Recorder()
    sink = notifier(sleep=waits)
    sink.notify(closed())
    sink.close(timeout=5.0)
    assert waits.waits == [1.5]
    assert len(responses.calls) == 2
    first, second = bodies(responses.calls)
    assert first == second
    assert (sink.sent, sink.failed) == (1, 0)


@pytest.mark.parametrize("body", ["slow down", "[" * 100_000 + "]" * 100_000],
                         ids=["text", "nested beyond the stack"])
@responses.activate
def test_rate_limit_header_is_used_without_a_json_body(body: str) -> None:
    responses.post(URL, status=429, body=body, headers={"Retry-After": "2"})
    responses.post(URL, status=204)
    waits = Recorder()
    sink = notifier(sleep=waits)
    sink.notify(closed())
    sink.close(timeout=5.0)
    assert waits.waits == [2.0]
    assert sink.sent == 1


@responses.activate
def test_server_errors_are_retried_then_logged_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    responses.post(URL, status=500)
    waits = Recorder()
    sink = notifier(sleep=waits, max_attempts=3, backoff_s=1.0)
    sink.notify(closed())
    sink.close(timeout=5.0)
    assert len(responses.calls) == 3
    assert waits.waits == [1.0, 2.0]
    assert (sink.sent, sink.failed) == (0, 1)
    assert "message dropped after 3 attempts (HTTP 500)" in caplog.text
    assert TOKEN not in caplog.text


@responses.activate
def test_connection_errors_never_leak_the_webhook(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    responses.post(URL, body=requests.ConnectionError(f"Max retries exceeded with url: {URL}"))
    sink = notifier(max_attempts=2)
    sink.notify(closed())
    sink.close(timeout=5.0)
    assert len(responses.calls) == 2
    assert "(ConnectionError)" in caplog.text
    assert TOKEN not in caplog.text
    assert sink.failed == 1


@responses.activate
def test_a_refused_message_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    responses.post(URL, status=404, json={"message": "Unknown Webhook", "code": 10015})
    sink = notifier()
    sink.notify(closed())
    sink.close(timeout=5.0)
    assert len(responses.calls) == 1
    assert "refused a message (HTTP 404)" in caplog.text


@responses.activate
def test_alert_texts_are_redacted_before_they_leave() -> None:
    responses.post(URL, status=204)
    sink = notifier(redact=Redactor(["refresh-tok-999"]).redact)
    sink.alert("Schwab refused refresh-tok-999", "token refresh-tok-999 expired")
    sink.close(timeout=5.0)
    embed = bodies(responses.calls)[0]["embeds"][0]
    assert embed["title"] == "[CRITICAL] Schwab refused ***"
    assert embed["description"] == "token *** expired"


class BlockedSession:
    """A session whose first post blocks until the test releases it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.posted: list[dict[str, Any]] = []

    def post(self, url: str, json: dict[str, Any], timeout: float) -> Any:
        self.started.set()
        self.release.wait(timeout=10.0)
        self.posted.append(json)
        return type("Response", (), {"status_code": 204})()


def test_a_full_queue_drops_new_messages_without_blocking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = BlockedSession()
    sink = notifier(session=session, max_queue=3)
    sink.notify(closed(pnl=1.0))
    assert session.started.wait(timeout=5.0)

    def flood() -> None:
        for pnl in (2.0, 3.0, 4.0, 5.0, 6.0):
            sink.notify(closed(pnl=pnl))

    caller = threading.Thread(target=flood)
    caller.start()
    caller.join(timeout=5.0)
    assert not caller.is_alive()
    assert sink.dropped == 2
    assert caplog.text.count("queue full") == 1
    session.release.set()
    sink.close(timeout=5.0)
    titles = [p["embeds"][0]["title"] for p in session.posted]
    assert titles == [f"ES LONG closed: TARGET +${pnl:.2f}" for pnl in (1.0, 2.0, 3.0, 4.0)]


def test_close_gives_up_after_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    session = BlockedSession()
    sink = notifier(session=session, max_queue=2)
    for pnl in (1.0, 2.0, 3.0):
        sink.notify(closed(pnl=pnl))
    assert session.started.wait(timeout=5.0)
    sink.close(timeout=0.05)
    assert "2 messages not sent at shutdown" in caplog.text
    sink.notify(closed(pnl=9.0))
    session.release.set()
    sender = sink._thread
    assert sender is not None
    sender.join(timeout=5.0)
    assert not sender.is_alive()
    assert [p["embeds"][0]["title"] for p in session.posted] == ["ES LONG closed: TARGET +$1.00"]


class _Webhook(BaseHTTPRequestHandler):
    """A local Discord stand-in: the first post is rate limited, later ones accepted."""

    received: queue.Queue[tuple[str, str, dict[str, Any]]]
    limited: list[bool]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        self.received.put((self.path, self.headers["Content-Type"], body))
        if not self.limited:
            self.limited.append(True)
            payload = json.dumps({"message": "You are being rate limited.", "retry_after": 0.25})
            self.send_response(429)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload.encode())
            return
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue[tuple[str, str, dict[str, Any]]]]]:
    received: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()
    handler = type("Webhook", (_Webhook,), {"received": received, "limited": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/webhooks/42/{TOKEN}", received
    server.shutdown()
    server.server_close()
    thread.join(timeout=5.0)


def test_real_posts_reach_a_local_webhook(
    webhook: tuple[str, queue.Queue[tuple[str, str, dict[str, Any]]]],
) -> None:
    url, received = webhook
    session = requests.Session()
    session.trust_env = False
    waits = Recorder()
    sink = DiscordNotifier(url, session=session, sleep=waits)
    sink.notify(closed(ExitReason.STOP_LOSS, pnl=-80.0))
    sink.close(timeout=10.0)
    first = received.get(timeout=5.0)
    second = received.get(timeout=5.0)
    assert first == second
    path, content_type, body = second
    assert path == f"/api/webhooks/42/{TOKEN}"
    assert content_type == "application/json"
    assert body["embeds"][0]["title"] == "ES LONG closed: STOP_LOSS -$80.00"
    assert body["embeds"][0]["color"] == 0xE74C3C
    assert waits.waits == [0.25]
    assert sink.sent == 1
