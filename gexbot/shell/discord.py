"""Discord webhook notifications, sent from one background thread so the loop never waits.

Messages go on a bounded queue; one daemon thread posts them in order. A full queue drops the
new message (counted, one warning per burst) instead of blocking the minute. Discord's rate
limit (HTTP 429) is honoured by waiting `retry_after` and resending; other failures are retried
a few times, then logged and dropped. Nothing here raises to the caller.

The session summary can carry a PNG of the day (`chart`): the loop only takes a copy of the
day's rows; the drawing happens on the sending thread, and a drawing that fails, or one not
begun when the notifier is closing, sends the summary without the image.

The webhook URL is a credential (anyone holding it can post to the channel), so it is never
logged: log lines say "Discord webhook", and exception texts from requests, which may quote the
URL, are reduced to the exception's type.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import requests

from gexbot.core.types import Closed, Event, ExitReason, Opened, SessionEnded
from gexbot.documents import load_answer
from gexbot.shell.notify import compact_usd, number, price, signed_usd, usd

BLUE = 0x3498DB
GREEN = 0x2ECC71
RED = 0xE74C3C
ORANGE = 0xE67E22
BLUE_GREY = 0x607D8B
GREY = 0x95A5A6
EXIT_COLORS = {
    ExitReason.TARGET: GREEN,
    ExitReason.STOP_LOSS: RED,
    ExitReason.EOD_FLATTEN: BLUE_GREY,
    ExitReason.REGIME_FLIP: ORANGE,
}
AlertLevel = Literal["info", "warning", "error", "critical"]
ALERT_COLORS = {"info": BLUE, "warning": ORANGE, "error": RED, "critical": RED}
MAX_RETRY_AFTER_S = 60.0
DESCRIPTION_LIMIT = 4000  # Discord's embed description limit is 4096 characters
CHART_FILE = "session.png"
_STOP = object()

Payload = dict[str, Any]
Chart = Callable[[], bytes]
"""Draws a PNG when called (on the sending thread)."""


@dataclass(frozen=True)
class _Message:
    payload: Payload
    chart: Chart | None = None


def _field(name: str, value: str, inline: bool = True) -> dict[str, Any]:
    return {"name": name, "value": value, "inline": inline}


def _embed(
    title: str, description: str, color: int, fields: list[dict[str, Any]], at: datetime
) -> Payload:
    embed = {
        "title": title[:256],
        "description": description[:DESCRIPTION_LIMIT],
        "color": color,
        "fields": fields,
        "timestamp": at.isoformat(),
    }
    return {"embeds": [embed]}


def opened_payload(event: Opened) -> Payload:
    """The embed announcing an entry."""
    p, f = event.position, event.features
    label = event.variant.upper()
    hmm = f.hmm_state.value if f.hmm_state is not None else "n/a"
    return _embed(
        f"{label} {p.direction.value} opened @ {price(p.entry_price)}",
        event.why,
        BLUE,
        [
            _field("Entry", price(p.entry_price)),
            _field("Size", usd(p.size_usd)),
            _field("Kelly", f"{event.kelly_fraction:.1%}"),
            _field("Target", price(p.target)),
            _field("Stop", price(p.stop)),
            _field("Regime", f"GEX {compact_usd(f.net_gex)} | Hurst {number(f.hurst)}"
                   f" | OFI {number(f.ofi)} | HMM {hmm}", inline=False),
        ],
        p.entry_time,
    )


def closed_payload(event: Closed) -> Payload:
    """The embed announcing an exit, colored by its reason."""
    t = event.trade
    label = t.variant.upper()
    return _embed(
        f"{label} {t.direction.value} closed: {t.exit_reason.value} {signed_usd(t.pnl)}",
        f"{t.symbol} {t.direction.value} {price(t.entry_price)} -> {price(t.exit_price)}",
        EXIT_COLORS.get(t.exit_reason, GREY),
        [
            _field("Entry", price(t.entry_price)),
            _field("Exit", price(t.exit_price)),
            _field("Reason", t.exit_reason.value),
            _field("PnL", signed_usd(t.pnl)),
            _field("Balance", usd(event.balance)),
        ],
        t.exit_time,
    )


def session_payload(event: SessionEnded, at: datetime) -> Payload:
    """The daily summary embed."""
    color = GREY if event.trades == 0 else (GREEN if event.pnl >= 0 else RED)
    return _embed(
        f"{event.variant.upper()} session {event.session_date:%Y-%m-%d}",
        f"{event.trades} trades, day PnL {signed_usd(event.pnl)}",
        color,
        [
            _field("Trades", str(event.trades)),
            _field("Day PnL", signed_usd(event.pnl)),
            _field("Balance", usd(event.balance)),
        ],
        at,
    )


def with_image(payload: Payload, filename: str) -> Payload:
    """The payload with its first embed showing the attached `filename`."""
    embeds = [dict(embed) for embed in payload.get("embeds", [])]
    if embeds:
        embeds[0]["image"] = {"url": f"attachment://{filename}"}
    return {**payload, "embeds": embeds, "attachments": [{"id": 0, "filename": filename}]}


def alert_payload(title: str, message: str, level: str, at: datetime) -> Payload:
    """An operator alert embed (auth failure, data failing, model problem)."""
    return _embed(f"[{level.upper()}] {title}", message, ALERT_COLORS.get(level, RED), [], at)


class DiscordNotifier:
    """Posts events and alerts to a Discord webhook from a background thread; never raises.

    With no webhook URL every method does nothing, so the loop need not know whether Discord
    is configured. `redact` cleans alert texts before they leave the process. `chart`, given a
    session's end, returns the drawing of its PNG (or None): it is called in the caller's
    thread and must be quick; the drawing it returns runs on the sending thread.
    """

    def __init__(
        self,
        webhook_url: str | None,
        *,
        session: requests.Session | None = None,
        max_queue: int = 100,
        sleep: Callable[[float], None] = time.sleep,
        logger: logging.Logger | None = None,
        max_attempts: int = 3,
        timeout_s: float = 10.0,
        backoff_s: float = 1.0,
        redact: Callable[[str], str] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        chart: Callable[[SessionEnded], Chart | None] | None = None,
    ) -> None:
        self._url = webhook_url
        self._chart = chart
        self._session = session if session is not None else requests.Session()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._sleep = sleep
        self._log = logger if logger is not None else logging.getLogger("gexbot.discord")
        self._max_attempts = max_attempts
        self._timeout_s = timeout_s
        self._backoff_s = backoff_s
        self._redact = redact if redact is not None else (lambda text: text)
        self._now = now
        self._lock = threading.Lock()
        self._dropping = False
        self._closed = False
        self._abandon = threading.Event()
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._thread: threading.Thread | None = None
        if webhook_url:
            self._thread = threading.Thread(target=self._run, name="discord", daemon=True)
            self._thread.start()

    @property
    def enabled(self) -> bool:
        """True when a webhook is configured."""
        return self._thread is not None

    def handle(self, events: Sequence[Event]) -> None:
        """Queue the notifications of one committed minute (the loop's sink interface)."""
        for event in events:
            self.notify(event)

    def notify(self, event: Event) -> None:
        """Queue the embed of an entry, an exit or a session's end; other events are ignored."""
        if not self.enabled:
            return
        chart: Chart | None = None
        try:
            if isinstance(event, Opened):
                payload = opened_payload(event)
            elif isinstance(event, Closed):
                payload = closed_payload(event)
            elif isinstance(event, SessionEnded):
                payload = session_payload(event, self._now())
                chart = self._chart_of(event)
            else:
                return
        except Exception:
            self._log.exception("Discord webhook: could not format a %s", type(event).__name__)
            return
        self._put(payload, chart)

    def _chart_of(self, event: SessionEnded) -> Chart | None:
        if self._chart is None:
            return None
        try:
            return self._chart(event)
        except Exception:
            self._log.exception("Discord webhook: could not prepare the day's chart")
            return None

    def alert(self, title: str, message: str, level: AlertLevel = "critical") -> None:
        """Queue an operator alert."""
        if not self.enabled:
            return
        clean = self._redact(message)
        self._put(alert_payload(self._redact(title), clean, level, self._now()))

    def close(self, timeout: float) -> None:
        """Send what can be sent within `timeout` seconds, then stop the thread."""
        thread = self._thread
        if thread is None or self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=max(timeout, 0.0))
        thread.join(max(deadline - time.monotonic(), 0.0))
        if thread.is_alive():
            self._abandon.set()
            self._log.warning(
                "Discord webhook: %d messages not sent at shutdown", self._queue.qsize()
            )

    def _put(self, payload: Payload, chart: Chart | None = None) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait(_Message(payload, chart))
        except queue.Full:
            with self._lock:
                self.dropped += 1
                first = not self._dropping
                self._dropping = True
            if first:
                self._log.warning(
                    "Discord webhook: queue full (%d messages), dropping new messages",
                    self._queue.maxsize,
                )
            return
        with self._lock:
            self._dropping = False

    def _run(self) -> None:
        while not self._abandon.is_set():
            item = self._queue.get()
            if item is _STOP or self._abandon.is_set():
                return
            try:
                self._send(item)  # type: ignore[arg-type]
            except Exception:
                self.failed += 1
                self._log.exception("Discord webhook: unexpected error while sending")

    def _send(self, message: _Message) -> None:
        """Draw the message's chart if it has one (without it when drawing fails, or when the
        notifier is closing: the drawing must not eat the time left to send), then post."""
        image: bytes | None = None
        if message.chart is not None and self._closed:
            self._log.info("Discord webhook: closing, the session summary goes without its chart")
        elif message.chart is not None:
            try:
                image = message.chart()
            except Exception as problem:
                self._log.warning(
                    "Discord webhook: the day's chart could not be drawn (%s: %s); the summary"
                    " goes without it", type(problem).__name__, problem,
                )
        self._deliver(message.payload, image)

    def _deliver(self, payload: Payload, image: bytes | None = None) -> None:
        """Post one message; retry rate limits and transient failures, a bounded number of times.

        With an image, the message is multipart: the JSON as `payload_json` and the PNG as
        `files[0]`, which the embed shows.
        """
        problem = "no attempt"
        for attempt in range(1, self._max_attempts + 1):
            if self._abandon.is_set():
                return
            try:
                if image is None:
                    response = self._session.post(
                        self._url or "", json=payload, timeout=self._timeout_s
                    )
                else:
                    response = self._session.post(
                        self._url or "",
                        data={"payload_json": json.dumps(with_image(payload, CHART_FILE))},
                        files={"files[0]": (CHART_FILE, image, "image/png")},
                        timeout=self._timeout_s,
                    )
            except requests.RequestException as exc:
                problem = type(exc).__name__
                wait = self._backoff_s * attempt
            else:
                status = response.status_code
                if status < 300:
                    self.sent += 1
                    return
                problem = f"HTTP {status}"
                if status == 429:
                    wait = _retry_after(response, default=self._backoff_s * attempt)
                elif status >= 500:
                    wait = self._backoff_s * attempt
                else:
                    self.failed += 1
                    self._log.error(
                        "Discord webhook refused a message (HTTP %d); check the webhook", status
                    )
                    return
            if attempt < self._max_attempts:
                self._log.info("Discord webhook: %s, retrying in %.1f s", problem, wait)
                self._sleep(wait)
        self.failed += 1
        self._log.warning(
            "Discord webhook: message dropped after %d attempts (%s)", self._max_attempts, problem
        )


def _retry_after(response: requests.Response, default: float) -> float:
    """Seconds to wait from a 429: the JSON `retry_after`, else the Retry-After header."""
    candidates: list[Any] = []
    try:
        body = load_answer(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        candidates.append(body.get("retry_after"))
    candidates.append(response.headers.get("Retry-After"))
    for value in candidates:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if seconds >= 0:
            return min(seconds, MAX_RETRY_AFTER_S)
    return default
