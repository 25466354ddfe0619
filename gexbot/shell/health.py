"""Optional health and metrics endpoint: /healthz for Docker, /metrics for Prometheus, and the
live page at / when the daemon gives one (`gexbot.report.today.LivePage`).

The loop updates a `Metrics` object each minute; `HealthServer` serves it from a daemon thread,
so a slow scraper never delays a minute. Connections are bounded (a thread each, at most
`MAX_CONNECTIONS`, idle ones closed after `IDLE_TIMEOUT_S`), so idle sockets cannot pile up
threads; the endpoints are unauthenticated, so binding anything but loopback is warned about.
/healthz answers 200 while the loop has shown life within `max_age_s`, 503 otherwise, with a
JSON body a person can read. Metrics live in their own `CollectorRegistry`, so two servers in one
process (tests) do not collide.

`python -m gexbot.shell.health --probe URL` exits 0 when URL answers 200, 1 when it does not
(2 when the command line is wrong): a Docker HEALTHCHECK that needs no curl in the image.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from gexbot.cli import ArgumentParser, escape_controls
from gexbot.core.types import Action, Closed, Decided, Direction, Event, Opened
from gexbot.errors import EXIT_CONFIG, ConfigError
from gexbot.net import is_loopback

log = logging.getLogger("gexbot.health")
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
STOP_POLL_S = 0.1  # how often the server checks for a stop request
IDLE_TIMEOUT_S = 10.0
"""A connection that sends nothing for this long is closed (a probe answers in milliseconds)."""
MAX_CONNECTIONS = 16
"""Connections served at once, a thread each; more are closed at once, not queued."""
MAX_PROBE_TIMEOUT_S = 300.0
SUMMARY_KEYS = ("variant", "balance", "position", "source", "last_minute")


def _position_value(position: object) -> int:
    """+1 long, -1 short, 0 flat (None or anything that is not a direction)."""
    try:
        return Direction(str(position)).sign
    except ValueError:
        return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class Metrics:
    """What the loop reports each minute, as Prometheus metrics and as the /healthz summary.

    `now` returns epoch seconds (time.time in production, a fake in tests). The loop counts as
    alive from construction, so a starting daemon is healthy for `max_age_s` before its first
    minute.
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = Histogram(
            "gexbot_loop_latency_seconds", "Time to gather, decide and commit one minute",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.data_errors = Counter(
            "gexbot_data_errors", "Minutes whose market data was unusable, by kind",
            ["kind"], registry=r,
        )
        self.trades = Counter(
            "gexbot_trades", "Closed paper trades, by exit reason", ["exit_reason"], registry=r
        )
        self.balance = Gauge("gexbot_balance_usd", "Virtual account balance", registry=r)
        self.position = Gauge(
            "gexbot_position", "Open position: +1 long, -1 short, 0 flat", registry=r
        )
        self.gex = Gauge("gexbot_net_gex_usd", "Last net gamma exposure (NaN: unknown)", registry=r)
        self.hurst = Gauge("gexbot_hurst", "Last Hurst exponent (NaN: unknown)", registry=r)
        self.ofi = Gauge("gexbot_ofi", "Last order-flow imbalance (NaN: unknown)", registry=r)
        self.skipped = Counter(
            "gexbot_skipped_minutes", "Minutes skipped for unusable data", registry=r
        )
        self._alive_at = now()
        self._iteration_at: float | None = None
        self._summary: dict[str, Any] = {}

    def observe_iteration(self, latency_s: float, state_summary: dict[str, Any]) -> None:
        """Record one finished minute: its latency and the state after it."""
        self.latency.observe(latency_s)
        if state_summary.get("balance") is not None:
            self.balance.set(float(state_summary["balance"]))
        if "position" in state_summary:
            self.position.set(_position_value(state_summary["position"]))
        at = self._now()
        with self._lock:
            self._alive_at = at
            self._iteration_at = at
            self._summary = dict(state_summary)

    def heartbeat(self) -> None:
        """Mark the loop alive while it waits (between sessions) without deciding a minute."""
        at = self._now()
        with self._lock:
            self._alive_at = at

    def observe_events(self, events: Iterable[Event]) -> None:
        """Count trades and skipped minutes; keep the last features, balance and position."""
        for event in events:
            if isinstance(event, Closed):
                self.trades.labels(exit_reason=event.trade.exit_reason.value).inc()
                self.balance.set(event.balance)
            elif isinstance(event, Opened):
                self.position.set(event.position.direction.sign)
            elif isinstance(event, Decided):
                self._decided(event)

    def handle(self, events: Sequence[Event]) -> None:
        """The loop's sink interface: same as `observe_events`."""
        self.observe_events(events)

    def _decided(self, event: Decided) -> None:
        self.balance.set(event.balance)
        self.position.set(_position_value(event.position))
        if event.action is Action.SKIP:
            self.skipped.inc()
        feats = event.features
        if feats is not None:
            for gauge, value in ((self.gex, feats.net_gex), (self.hurst, feats.hurst),
                                 (self.ofi, feats.ofi)):
                gauge.set(math.nan if value is None else value)

    def data_error(self, kind: str) -> None:
        """Count one unusable minute of kind `kind` (a DataError's stable label)."""
        self.data_errors.labels(kind=kind).inc()

    def health(self, max_age_s: float) -> tuple[int, dict[str, Any]]:
        """The /healthz status code and body."""
        now = self._now()
        with self._lock:
            alive_at, iteration_at, summary = self._alive_at, self._iteration_at, self._summary
        age = max(now - alive_at, 0.0)
        fresh = age <= max_age_s
        started = iteration_at is not None
        status = "stale" if not fresh else ("ok" if started else "starting")
        body: dict[str, Any] = {
            "status": status,
            "last_iteration_at": None
            if iteration_at is None
            else datetime.fromtimestamp(iteration_at, UTC).isoformat(),
            "age_s": round(age, 3),
        }
        body |= {key: _jsonable(summary.get(key)) for key in SUMMARY_KEYS}
        return (200 if fresh else 503), body

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        # A connection that sends nothing for this long is closed (reading times out).
        self.request.settimeout(self.server.idle_timeout_s)
        super().setup()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            code, body = self.server.metrics.health(self.server.max_age_s)
            self._reply(code, "application/json", json.dumps(body).encode())
        elif path == "/metrics":
            self._reply(200, CONTENT_TYPE_LATEST, self.server.metrics.exposition())
        elif path == "/" and self.server.page is not None:
            self._page(self.server.page)
        else:
            self._reply(404, "text/plain; charset=utf-8", b"not found\n")

    # A HEAD (a load balancer's or uptime checker's probe) gets the GET's status and headers.
    do_HEAD = do_GET

    def _page(self, page: Callable[[], bytes]) -> None:
        """The live page, drawn on this request's thread (never the loop's)."""
        try:
            body = page()
        except Exception:
            log.exception("live page: could not draw it")
            self._reply(500, "text/plain; charset=utf-8", b"the live page failed; see the log\n")
            return
        self._reply(200, "text/html; charset=utf-8", body)

    def _reply(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health endpoint: " + format, *args)


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` at a time; the rest closed at once."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        metrics: Metrics,
        max_age_s: float,
        page: Callable[[], bytes] | None,
        idle_timeout_s: float,
        max_connections: int,
    ) -> None:
        self.metrics = metrics
        self.max_age_s = max_age_s
        self.page = page
        self.idle_timeout_s = idle_timeout_s
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.debug("health endpoint: %d connections open, one more closed",
                      self.max_connections)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class HealthServer:
    """Serves /healthz and /metrics of `metrics` (and `page` at /) on host:port from a daemon
    thread."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        max_age_s: float,
        now: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        page: Callable[[], bytes] | None = None,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"--http-port: {port} is not a TCP port (0-65535)")
        self.metrics = metrics if metrics is not None else Metrics(now)
        self._address = (host, port)
        self._max_age_s = max_age_s
        self._page = page
        self._idle_timeout_s = idle_timeout_s
        self._max_connections = max_connections
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        if self._server is None:
            return self._address[1]
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind and serve in the background; ConfigError when the address is unusable."""
        host, port = self._address
        try:
            self._server = _Server(self._address, self.metrics, self._max_age_s, self._page,
                                   self._idle_timeout_s, self._max_connections)
        except OSError as exc:
            problem = f"--http-port: cannot listen on {host}:{port} ({exc.strerror})"
            raise ConfigError(problem) from None
        if not is_loopback(host):
            log.warning(
                "the health endpoints on %s:%d answer anyone who can reach this address, without"
                " authentication (/healthz and /metrics show the balance and the position); bind"
                " 127.0.0.1 unless a firewall or the container's port mapping keeps them private",
                host or "0.0.0.0", self.port,  # noqa: S104 - what '' binds, said in words
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(STOP_POLL_S,), name="health", daemon=True
        )
        self._thread.start()
        log.info("health endpoint on http://%s:%d/healthz and /metrics", host, self.port)

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None


def probe(url: str, timeout: float) -> int:
    """GET `url` directly (no proxy) and return the HTTP status, 0 when nothing answered."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--probe: expected an http(s) URL, got {url!r}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`--probe URL`: exit 0 when it answers 200, 1 when it does not, 2 for a bad URL."""
    parser = ArgumentParser(
        prog="python -m gexbot.shell.health",
        description="Probe gexbot's health endpoint (for Docker HEALTHCHECK).",
    )
    parser.add_argument(
        "--probe", required=True, metavar="URL", help="e.g. http://127.0.0.1:8080/healthz"
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    args = parser.parse_args(argv)
    try:
        if not 0.0 < args.timeout <= MAX_PROBE_TIMEOUT_S:
            raise ConfigError(
                f"--timeout must be a number of seconds above 0 and at most"
                f" {MAX_PROBE_TIMEOUT_S:g}, got {args.timeout!r}"
            )
        status = probe(args.probe, args.timeout)
    except ConfigError as problem:
        # 2, not 1: a probe that cannot be made is not an unhealthy daemon.
        print(escape_controls(str(problem)), file=sys.stderr)
        return EXIT_CONFIG
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
