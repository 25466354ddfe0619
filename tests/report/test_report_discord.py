"""The session summary on Discord carries the day's PNG; drawing never holds the loop, and a
drawing that fails sends the summary without it."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.parser import BytesParser
from email.policy import HTTP

import pytest
import requests
import responses

from gexbot.core.types import SessionEnded
from gexbot.shell.discord import DiscordNotifier

URL = "https://discord.com/api/webhooks/42/Fake-Token"
ENDED = SessionEnded("es", date(2026, 10, 5), 3, 12.5, 100_012.5)
PNG = b"\x89PNG\r\n\x1a\n" + b"fake image bytes"


def notifier(chart: Callable[[SessionEnded], Callable[[], bytes] | None]) -> DiscordNotifier:
    return DiscordNotifier(URL, now=lambda: datetime(2026, 10, 5, 21, 0, tzinfo=UTC),
                           sleep=lambda _: None, chart=chart)


def sent(sender: DiscordNotifier, count: int = 1) -> None:
    """Wait until `count` messages went out (the sending thread is the notifier's own)."""
    deadline = threading.Event()
    for _ in range(1000):
        if sender.sent + sender.failed >= count:
            return
        deadline.wait(0.01)
    raise AssertionError("the message was not sent within 10 s")


def parts(request: requests.PreparedRequest) -> dict[str, tuple[str | None, bytes]]:
    """The multipart form of a request: name -> (filename, content)."""
    body = request.body
    assert isinstance(body, bytes)
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + body
    )
    found = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        found[str(name)] = (part.get_filename(), part.get_payload(decode=True))
    return found


@responses.activate
def test_the_summary_carries_the_days_png_as_an_attachment() -> None:
    responses.post(URL, status=200)
    sender = notifier(lambda ended: (lambda: PNG) if ended is ENDED else None)
    sender.notify(ENDED)
    sent(sender)
    sender.close(timeout=5)
    (call,) = responses.calls
    form = parts(call.request)
    assert form["files[0]"] == ("session.png", PNG)
    payload = json.loads(form["payload_json"][1])
    (embed,) = payload["embeds"]
    assert embed["title"] == "ES session 2026-10-05"
    assert embed["image"] == {"url": "attachment://session.png"}
    assert payload["attachments"] == [{"id": 0, "filename": "session.png"}]


@responses.activate
def test_a_failed_drawing_sends_the_summary_without_an_image(
    caplog: pytest.LogCaptureFixture,
) -> None:
    responses.post(URL, status=204)

    def broken() -> bytes:
        raise ValueError("no price recorded on 2026-10-05: nothing to draw")

    sender = notifier(lambda _: broken)
    with caplog.at_level(logging.WARNING):
        sender.notify(ENDED)
        sent(sender)
        sender.close(timeout=5)
    (call,) = responses.calls
    assert call.request.headers["Content-Type"] == "application/json"
    payload = json.loads(call.request.body)
    assert payload["embeds"][0]["title"] == "ES session 2026-10-05"
    assert "image" not in payload["embeds"][0]
    assert "the day's chart could not be drawn (ValueError: no price recorded" in caplog.text
    assert sender.sent == 1


@responses.activate
def test_a_failure_to_prepare_the_drawing_still_sends_the_summary() -> None:
    responses.post(URL, status=204)

    def refuse(_: SessionEnded) -> Callable[[], bytes] | None:
        raise RuntimeError("book unavailable")

    sender = notifier(refuse)
    sender.notify(ENDED)
    sender.close(timeout=5)
    (call,) = responses.calls
    assert "image" not in json.loads(call.request.body)["embeds"][0]


@responses.activate
def test_the_drawing_runs_on_the_senders_thread_never_the_callers() -> None:
    responses.post(URL, status=204)
    started, release = threading.Event(), threading.Event()
    caller = threading.get_ident()
    drawn_on: list[int] = []

    def slow() -> bytes:
        drawn_on.append(threading.get_ident())
        started.set()
        release.wait(10)
        return PNG

    sender = notifier(lambda _: slow)
    sender.notify(ENDED)  # returns at once: the drawing waits on the other thread
    assert started.wait(10)
    assert not release.is_set()
    release.set()
    sent(sender)
    sender.close(timeout=5)
    assert drawn_on
    assert drawn_on[0] != caller
    assert len(responses.calls) == 1


@responses.activate
def test_a_summary_still_queued_at_shutdown_goes_without_its_chart() -> None:
    busy, closing = threading.Event(), threading.Event()

    def first_answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        busy.set()
        closing.wait(10)
        return 204, {}, ""

    responses.add_callback(responses.POST, URL, callback=first_answer)
    drawn: list[bool] = []
    sender = notifier(lambda _: lambda: drawn.append(True) or PNG)
    sender.alert("first", "holds the sending thread")
    assert busy.wait(10)
    sender.notify(ENDED)  # queued behind the first message
    closer = threading.Thread(target=sender.close, kwargs={"timeout": 10})
    closer.start()
    for _ in range(1000):  # until close() has begun
        if sender._closed:
            break
        threading.Event().wait(0.01)
    closing.set()
    closer.join(10)
    assert drawn == []
    summary = responses.calls[1].request
    assert summary.headers["Content-Type"] == "application/json"
    assert json.loads(summary.body)["embeds"][0]["title"] == "ES session 2026-10-05"
