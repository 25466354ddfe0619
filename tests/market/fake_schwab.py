"""A local stand-in for Schwab on 127.0.0.1: OAuth plus the three market-data endpoints.

Market answers come from a `SimMarket` at the client's clock time, read from the `Gexbot-Clock`
header the live transport sends to any stand-in, so the daemon can run a simulated session at
full speed over real HTTP. Access tokens expire on that clock too. Faults are planned per clock
minute and endpoint: an HTTP status (with or without Retry-After), a slow answer (the client
times out), a dropped connection, truncated JSON, a Schwab-shaped bad body, or a revoked access
token. Every request is logged (`seen`) so tests can check what the client sent, and when.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from gexbot.core.session import EASTERN
from gexbot.market.sim import SimMarket
from gexbot.market.transport import Endpoint

DATA_PREFIX = "/marketdata/v1/"
TOKEN_PATH = "/v1/oauth/token"  # noqa: S105 (a URL path)
ENDPOINTS: tuple[Endpoint, ...] = ("quotes", "pricehistory", "chains")


def schwab_error(status: int, title: str, detail: str | None = None) -> dict[str, Any]:
    """An error body shaped like Schwab's `ErrorResponse`."""
    error: dict[str, Any] = {"id": str(uuid.uuid4()), "status": status, "title": title}
    if detail is not None:
        error["detail"] = detail
    return {"errors": [error]}


@dataclass
class Fault:
    """What goes wrong for requests to `endpoint` ("token" for the token endpoint) in `minute`.

    kind: "status" (answer `status` with `body`, plus `retry_after` when set), "slow" (answer
    late, after the client's timeout), "drop" (close the connection unanswered), "truncated"
    (200 with the real JSON cut short), "body" (200 with `body`), "revoke" (revoke the access
    token presented, then 401), "echo" (answer `status` with an error text that is `body`
    followed by the request's Authorization header and its query or form, as a careless server
    quotes what it was sent). `times` is how many matching requests it hits (-1: all).
    """

    endpoint: str
    minute: datetime
    kind: str
    status: int = 500
    body: Any = None
    retry_after: str | None = None
    times: int = 1


@dataclass(frozen=True)
class Seen:
    """One request as the fake received it."""

    method: str
    endpoint: str
    params: dict[str, str]
    headers: dict[str, str]
    clock: datetime
    answered: int | None


@dataclass
class _State:
    access: dict[str, datetime] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    codes: dict[str, str] = field(default_factory=dict)


class FakeSchwab:
    """A fake Schwab API; use as a context manager, point `GEXBOT_SCHWAB_BASE_URL` at `base_url`.

    `latency_s` is a (low, high) range of real delay added to every answer (seeded).
    """

    def __init__(
        self,
        market: SimMarket | None,
        *,
        app_key: str,
        app_secret: str,
        refresh_token: str,
        access_lifetime_s: int = 1800,
        latency_s: tuple[float, float] = (0.0, 0.0),
        slow_s: float = 0.3,
        seed: int = 0,
    ) -> None:
        self.market = market
        self.app_key = app_key
        self.app_secret = app_secret
        self.refresh_token = refresh_token
        self.refresh_valid = True
        self.access_lifetime_s = access_lifetime_s
        self.latency_s = latency_s
        self.slow_s = slow_s
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.issued: list[str] = []
        self._state = _State()
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._server.handle_error = lambda *_: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """Scheme and host of the fake, as `GEXBOT_SCHWAB_BASE_URL` wants it."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeSchwab:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_code(self, code: str, redirect_uri: str) -> None:
        """Accept `code` once, for `redirect_uri`, at the authorization-code grant."""
        with self._lock:
            self._state.codes[code] = redirect_uri

    def data_requests(self) -> list[Seen]:
        """The market-data requests received, in order of arrival."""
        with self._lock:
            return [seen for seen in self.seen if seen.endpoint in ENDPOINTS]

    def token_requests(self) -> list[Seen]:
        """The token requests received, in order of arrival."""
        with self._lock:
            return [seen for seen in self.seen if seen.endpoint == "token"]

    # ------------------------------------------------------------------ serving

    def fault_for(self, endpoint: str, clock: datetime) -> Fault | None:
        """The planned fault hitting this request, consuming one of its `times`."""
        minute = clock.astimezone(EASTERN).replace(second=0, microsecond=0)
        with self._lock:
            for fault in self.faults:
                if fault.times != 0 and fault.endpoint == endpoint and fault.minute == minute:
                    fault.times -= 1 if fault.times > 0 else 0
                    return fault
        return None

    def note(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def latency(self) -> float:
        low, high = self.latency_s
        with self._lock:
            return self._random.uniform(low, high) if high > 0 else 0.0

    def token(self, form: dict[str, str], basic: str | None, clock: datetime) -> tuple[int, Any]:
        """Answer the token endpoint like Schwab (status, body)."""
        expected = base64.b64encode(f"{self.app_key}:{self.app_secret}".encode()).decode()
        if basic != expected:
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        grant = form.get("grant_type")
        with self._lock:
            if grant == "refresh_token":
                if form.get("refresh_token") != self.refresh_token or not self.refresh_valid:
                    return 400, {
                        "error": "invalid_client",
                        "error_description": "refresh token invalid",
                    }
            elif grant == "authorization_code":
                code = form.get("code", "")
                if self._state.codes.pop(code, None) != form.get("redirect_uri"):
                    return 400, {"error": "invalid_request", "error_description": "Bad Request"}
                self.refresh_token = "fake-refresh-" + secrets.token_hex(12)
                self.refresh_valid = True
            else:
                return 400, {"error": "unsupported_grant_type"}
            access = f"fake-access-{len(self.issued)}-{secrets.token_hex(8)}"
            self.issued.append(access)
            self._state.access[access] = clock + timedelta(seconds=self.access_lifetime_s)
            body = {
                "expires_in": self.access_lifetime_s,
                "token_type": "Bearer",
                "scope": "api",
                "access_token": access,
                "id_token": "eyJfake.jwt",
            }
            if grant == "authorization_code":
                body["refresh_token"] = self.refresh_token
            return 200, body

    def authorized(self, bearer: str | None, clock: datetime) -> bool:
        with self._lock:
            expires = self._state.access.get(bearer or "")
            return expires is not None and clock < expires and bearer not in self._state.revoked

    def revoke(self, bearer: str | None) -> None:
        with self._lock:
            self._state.revoked.add(bearer or "")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body in two writes cost a delayed ACK
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake's own access log is `FakeSchwab.seen`."""

    def _clock(self) -> datetime:
        raw = self.headers.get("Gexbot-Clock")
        return datetime.fromisoformat(raw) if raw else datetime.now(UTC)

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Schwab-Client-CorrelId", self.headers.get("Schwab-Client-CorrelId", ""))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        fake: FakeSchwab = self.server.fake
        clock = self._clock()
        delay = fake.latency()
        if delay:
            time.sleep(delay)
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        auth = self.headers.get("Authorization", "")
        basic = auth[6:] if auth.startswith("Basic ") else None
        fault = fake.fault_for("token", clock)
        path = urlsplit(self.path).path
        if path != TOKEN_PATH:
            status, body = 404, b"404 Not Found: Requested route does not exist."
        elif fault is not None and fault.kind == "status":
            status, body = fault.status, fault.body if fault.body is not None else b"Access Denied"
        elif fault is not None and fault.kind == "echo":
            said = f"{fault.body or ''}{auth} {urlencode(form)}"
            status, body = fault.status, {"error": "unsupported_token_type",
                                          "error_description": said}
        else:
            status, body = fake.token(form, basic, clock)
        fake.note(Seen("POST", "token", form, dict(self.headers), clock, status))
        self._reply(status, body)

    def do_GET(self) -> None:
        fake: FakeSchwab = self.server.fake
        clock = self._clock()
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query))
        endpoint = parts.path.removeprefix(DATA_PREFIX)
        auth = self.headers.get("Authorization", "")
        bearer = auth[7:] if auth.startswith("Bearer ") else None
        try:
            status = self._answer(fake, endpoint, params, bearer, clock)
        except OSError:
            status = None  # the client gave up (timed out) before the answer was written
        fake.note(Seen("GET", endpoint, params, dict(self.headers), clock, status))

    def _answer(
        self,
        fake: FakeSchwab,
        endpoint: str,
        params: dict[str, str],
        bearer: str | None,
        clock: datetime,
    ) -> int | None:
        if endpoint not in ENDPOINTS or fake.market is None:
            self._reply(404, b"404 Not Found: Requested route does not exist.")
            return 404
        delay = fake.latency()
        if delay:
            time.sleep(delay)
        if not _uuid(self.headers.get("Schwab-Client-CorrelId")):
            self._reply(400, schwab_error(400, "Bad Request", "Missing header"))
            return 400
        fault = fake.fault_for(endpoint, clock)
        if fault is not None and fault.kind == "revoke":
            fake.revoke(bearer)
        if not fake.authorized(bearer, clock):
            self._reply(401, schwab_error(401, "Unauthorized", "Client not authorized"))
            return 401
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            return None
        if fault is not None and fault.kind == "status":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            body = fault.body if fault.body is not None else b""
            self._reply(fault.status, body, extra)
            return fault.status
        if fault is not None and fault.kind == "body":
            self._reply(200, fault.body)
            return 200
        if fault is not None and fault.kind == "echo":
            auth, query = self.headers.get("Authorization", ""), urlsplit(self.path).query
            said = f"{fault.body or ''}Authorization: {auth} query: {query}"
            self._reply(fault.status, schwab_error(fault.status, "Bad Request", said))
            return fault.status
        exchange = fake.market.get(endpoint, params, clock)  # type: ignore[arg-type]
        if fault is not None and fault.kind == "slow":
            time.sleep(fake.slow_s)
        data = json.dumps(exchange.body).encode()
        if fault is not None and fault.kind == "truncated":
            data = data[: len(data) // 2]
        self._reply(exchange.status or 500, data)
        return exchange.status


def _uuid(text: str | None) -> bool:
    try:
        uuid.UUID(text or "")
    except ValueError:
        return False
    return True
