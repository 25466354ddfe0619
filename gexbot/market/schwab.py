"""Live Schwab market data behind the one-method `Transport` seam.

Each `get` makes one market-data request with a fresh access token and answers an `Exchange`;
a failure is an Exchange too (the parser turns it into a skipped minute), except a refused
refresh token, which raises `AuthError` and stops the daemon. Inside one call, and so inside the
minute, the reactions are:

- 401: one token refresh and one retry; a freshly refreshed token refused too skips the minute
  (Schwab's backend sometimes refuses tokens for a while; an app without the Market Data product
  is refused for good, which the warning names), and never stops the daemon: only a refused
  refresh token does.
- 429: with a `Retry-After` that fits in the minute, wait it and retry once; otherwise no
  request goes to Schwab until the pause is over (the end of the minute without the header).
- 5xx, timeouts, connection errors: bounded retries with a doubling pause, all within
  `MINUTE_BUDGET_S`, then the failed answer.

Time is the loop's clock (`at`) plus the real time spent inside the call, so token expiry, the
rate window and Schwab's pauses work the same on a simulated clock. A stand-in server (any
`GEXBOT_SCHWAB_BASE_URL` but Schwab's) is also sent that time in a `Gexbot-Clock` header, so a
fake serving a simulated market answers at the simulated minute.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from gexbot.core.session import EASTERN
from gexbot.documents import load_answer
from gexbot.market.oauth import AccessTokens
from gexbot.market.rate import RequestWindow, retry_after_seconds
from gexbot.market.refusal import RefusalWait, WaitListener
from gexbot.market.schwab_config import (
    CONNECT_TIMEOUT_S,
    DEFAULT_BASE_URL,
    SchwabConfig,
    foreign_host_warning,
)
from gexbot.market.token_endpoint import TokenEndpoint, TokenUnavailable
from gexbot.market.tokens import TokenFile
from gexbot.market.transport import Alert, Endpoint, Exchange, ManagedTransport, SecretListener
from gexbot.redaction import Masker, basic_credentials

DATA_PATHS: dict[Endpoint, str] = {
    "quotes": "/marketdata/v1/quotes",
    "pricehistory": "/marketdata/v1/pricehistory",
    "chains": "/marketdata/v1/chains",
}
CORREL_HEADER = "Schwab-Client-CorrelId"
CLOCK_HEADER = "Gexbot-Clock"
ATTEMPTS = 3
"""Tries of a request that timed out, lost its connection or got a 5xx."""
MINUTE_BUDGET_S = 40.0
"""Real time one `get` may take, waits included: the minute is decided well before the next."""
RATE_LIMIT = 120
"""Schwab's request limit per rolling minute (widely reported; not published)."""
RATE_WARN = 96
FRESH_REFUSAL_HINT_EVERY = timedelta(minutes=30)
"""How often the warning about fresh tokens refused is repeated while it goes on."""
RATE_REPORT_EVERY = timedelta(hours=1)
log = logging.getLogger("gexbot.schwab")


def open_schwab(environ: Mapping[str, str]) -> SchwabTransport:
    """The live transport configured from the environment (no request is made yet)."""
    return SchwabTransport(SchwabConfig.from_env(environ))


class _Bearer(requests.auth.AuthBase):
    """Sets the Authorization header (an auth object also keeps ~/.netrc from replacing it)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int | None
    body: Any
    error: str | None
    retry_after_s: float | None = None

    @property
    def transient(self) -> bool:
        return self.status is None or 500 <= self.status <= 599


class SchwabTransport(ManagedTransport):
    """Market data from Schwab (or a stand-in at `base_url`), OAuth included.

    `sleep` and `monotonic` are the real waits and the real elapsed time, injectable so that
    tests never sleep; `session_factory` makes one `requests.Session` per thread.
    """

    def __init__(
        self,
        config: SchwabConfig,
        *,
        sleep: Callable[[float], object] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        self._config = config
        self._sleep = sleep
        self._monotonic = monotonic
        self._session_factory = session_factory
        self._timeout = (min(CONNECT_TIMEOUT_S, config.read_timeout_s), config.read_timeout_s)
        self._clock_header = config.base_url != DEFAULT_BASE_URL
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._redactors: list[SecretListener] = []
        basic = basic_credentials(config.app_key, config.app_secret)
        self._secrets: set[str] = {config.app_key, config.app_secret, basic}
        self._masker = Masker(self._secrets)
        self._window = RequestWindow()
        self._hold_until: datetime | None = None
        self._hinted_at: datetime | None = None
        self._near_limit = False
        self._peak = 0
        self._peak_since: datetime | None = None
        token_session = session_factory()
        self._sessions.append(token_session)
        endpoint = TokenEndpoint(
            token_session,
            config.base_url,
            config.app_key,
            config.app_secret,
            self._timeout,
            self._masker,
        )
        file = TokenFile(config.token_file) if config.token_file is not None else None
        self._tokens = AccessTokens(
            endpoint, config.tokens, file, secret=self._secret, headers=self._extra_headers
        )
        warning = foreign_host_warning(config.base_url)
        if warning is not None:
            log.warning("%s", warning)

    # ------------------------------------------------------------------ wiring

    def register_redactor(self, add: SecretListener) -> None:
        """Have `add` mask every secret this transport knows now or learns later."""
        with self._lock:
            self._redactors.append(add)
            known = list(self._secrets)
        for secret in known:
            add(secret)

    def set_alerter(self, alert: Alert | None) -> None:
        """Send the refresh token's expiry warning to `alert(title, message)` besides the log."""
        self._tokens.set_alerter(alert)

    def watch_refusals(self, resume: RefusalWait | None, listener: WaitListener) -> None:
        """Go on with a remembered wait after a passing refusal; report changes (refusal.py)."""
        self._tokens.watch_refusals(resume, listener)

    def requests_last_minute(self, at: datetime) -> int:
        """Requests sent to Schwab in the 60 s of clock time before `at`."""
        return self._window.count(at)

    def close(self) -> None:
        """Close the HTTP connections."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    # ------------------------------------------------------------------ requests

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        """Request `endpoint?params` at clock time `at`; a failure is a failed `Exchange`.

        Raises `AuthError` when Schwab refused the refresh token or the app's credentials. The
        answer is masked: a server that echoes a token or the app's credentials in any spelling
        hands on `***` in their place, so nothing past this seam (parser, skip reasons, logs,
        recordings) ever holds a secret, even cut to a length.
        """
        started = self._monotonic()

        def now() -> datetime:
            return at + timedelta(seconds=self._monotonic() - started)

        sent = dict(params)
        url = self._config.base_url + DATA_PATHS[endpoint]
        rejected: str | None = None
        attempt, waited_429 = 1, False
        while True:
            held_back = self._held_back(now())
            if held_back is not None:
                return Exchange(at, endpoint, sent, None, None, held_back)
            try:
                if rejected is None:
                    token = self._tokens.current(now())
                else:
                    token = self._tokens.replace(rejected, now())
            except TokenUnavailable as problem:
                return self._masked(at, endpoint, sent, None, None, f"no access token: {problem}")
            answer = self._send(endpoint, url, sent, token, now())
            if answer.status == 401 and rejected is None:
                log.info("%s: HTTP 401 (access token refused); refreshing once", endpoint)
                rejected = token
                continue
            if answer.status == 401:
                self._fresh_refused(endpoint, now())
            if answer.status == 429:
                pause = answer.retry_after_s
                if pause is not None and not waited_429 and self._fits(started, pause):
                    self._report_429(endpoint, now(), f"waiting {pause:g} s (Retry-After)")
                    self._sleep(pause)
                    waited_429 = True
                    continue
                self._pause_requests(endpoint, now(), pause)
            elif answer.transient and attempt < ATTEMPTS:
                pause = self._config.backoff_s * 2 ** (attempt - 1)
                if self._fits(started, pause):
                    log.warning(
                        "%s: %s (try %d of %d); retrying in %g s",
                        endpoint,
                        answer.error,
                        attempt,
                        ATTEMPTS,
                        pause,
                    )
                    self._sleep(pause)
                    attempt += 1
                    continue
            return self._masked(at, endpoint, sent, answer.status, answer.body, answer.error)

    def _masked(
        self,
        at: datetime,
        endpoint: Endpoint,
        params: dict[str, str],
        status: int | None,
        body: Any,
        error: str | None,
    ) -> Exchange:
        masker = self._masker
        return Exchange(
            at,
            endpoint,
            params,
            status,
            masker.mask_json(body),
            None if error is None else masker.mask(error),
        )

    def _fits(self, started: float, pause: float) -> bool:
        """True when a pause plus one more full request still ends inside the minute's budget."""
        elapsed = self._monotonic() - started
        return elapsed + pause + sum(self._timeout) <= MINUTE_BUDGET_S

    def _held_back(self, now: datetime) -> str | None:
        """Why no request may go out now (Schwab's pause, or our own count), else None."""
        with self._lock:
            until = self._hold_until
        if until is not None and now < until:
            return f"rate limited: no request to Schwab before {until.astimezone(EASTERN):%H:%M:%S}"
        count = self._window.count(now)
        if count >= RATE_LIMIT:
            return f"rate limited: {count} requests in the last 60 s, Schwab's limit"
        return None

    def _pause_requests(self, endpoint: str, now: datetime, pause: float | None) -> None:
        if pause is None:
            until = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
            how = "no Retry-After: skipping the rest of the minute"
        else:
            until = now + timedelta(seconds=pause)
            how = f"Retry-After {pause:g} s"
        with self._lock:
            if self._hold_until is None or until > self._hold_until:
                self._hold_until = until
        self._report_429(
            endpoint, now, f"{how}; no request before {until.astimezone(EASTERN):%H:%M:%S}"
        )

    def _report_429(self, endpoint: str, now: datetime, what: str) -> None:
        log.warning(
            "%s: HTTP 429 from Schwab, %d requests in the last 60 s (limit %d/min); %s",
            endpoint,
            self._window.count(now),
            RATE_LIMIT,
            what,
        )

    def _fresh_refused(self, endpoint: str, now: datetime) -> None:
        """A token refreshed for this very retry was refused too: say what may be wrong."""
        with self._lock:
            if self._hinted_at is not None and now - self._hinted_at < FRESH_REFUSAL_HINT_EVERY:
                return
            self._hinted_at = now
        log.warning(
            "%s: HTTP 401 with a freshly refreshed access token; the minute is skipped. If it"
            " goes on, check that the app has the Market Data Production product and is Ready"
            " For Use",
            endpoint,
        )

    def _send(
        self, endpoint: Endpoint, url: str, params: dict[str, str], token: str, now: datetime
    ) -> _Answer:
        headers = {"Accept": "application/json", CORREL_HEADER: str(uuid.uuid4())}
        headers.update(self._extra_headers(now))
        count = self._window.add(now)
        self._note_rate(count, now)
        began = self._monotonic()
        try:
            reply = self._session().get(
                url, params=params, headers=headers, auth=_Bearer(token), timeout=self._timeout
            )
        except requests.Timeout:
            return _Answer(None, None, f"timeout after {self._timeout[1]:g} s")
        except requests.RequestException as exc:
            return _Answer(None, None, f"connection error ({type(exc).__name__})")
        log.debug(
            "%s: HTTP %d in %.0f ms (%s %s; %d requests in the last 60 s)",
            endpoint,
            reply.status_code,
            1000 * (self._monotonic() - began),
            CORREL_HEADER,
            headers[CORREL_HEADER],
            count,
        )
        return _decode(reply, now)

    def _extra_headers(self, now: datetime) -> dict[str, str]:
        return {CLOCK_HEADER: now.isoformat()} if self._clock_header else {}

    def _note_rate(self, count: int, now: datetime) -> None:
        """Warn when the rolling count nears the limit; report the peak once an hour."""
        if count >= RATE_WARN and not self._near_limit:
            self._near_limit = True
            log.warning(
                "%d Schwab requests in the last 60 s: close to the limit of %d a minute",
                count,
                RATE_LIMIT,
            )
        elif count < RATE_WARN // 2:
            self._near_limit = False
        with self._lock:
            self._peak = max(self._peak, count)
            if self._peak_since is None:
                self._peak_since = now
            if now - self._peak_since < RATE_REPORT_EVERY:
                return
            peak, self._peak, self._peak_since = self._peak, 0, now
        log.info(
            "Schwab requests: at most %d in any 60 s over the last hour (limit %d)",
            peak,
            RATE_LIMIT,
        )

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._session_factory()
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _secret(self, value: str) -> None:
        with self._lock:
            if value in self._secrets:
                return
            self._secrets.add(value)
            self._masker.add(value)
            redactors = list(self._redactors)
        for add in redactors:
            add(value)

    def __repr__(self) -> str:
        return f"SchwabTransport({self._config.base_url})"


def _decode(reply: requests.Response, now: datetime) -> _Answer:
    status = reply.status_code
    content = reply.content
    body: Any = None
    problem: str | None = None
    if content:
        try:
            body = load_answer(content)
        except ValueError as exc:
            problem = f"bad JSON: {getattr(exc, 'msg', None) or exc}"
    if status == 200:
        error = problem or (None if content else "empty body")
        return _Answer(200, body if error is None else None, error)
    pause = retry_after_seconds(reply.headers, now) if status == 429 else None
    return _Answer(status, body, f"HTTP {status}", pause)
