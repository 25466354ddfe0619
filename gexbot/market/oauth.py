"""Schwab's OAuth token endpoint, and the access token every data request carries.

`TokenEndpoint` speaks the two grants (authorization code, refresh token). `AccessTokens` keeps
the access token fresh on the loop's clock: it refreshes a couple of minutes before the
30-minute expiry (about every 28 minutes), once for all the threads of a minute, re-reading the
shared token file first so that a re-authorization or the other daemon's refresh is picked up.
A refused refresh is final (`AuthError`: only a browser login fixes it); an unreachable token
endpoint is transient (the current token is used while it lasts, the minute is skipped after).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from gexbot.core.session import EASTERN
from gexbot.errors import AuthError, ConfigError
from gexbot.market.tokens import TokenFile, Tokens, describe_span

TOKEN_PATH = "/v1/oauth/token"  # noqa: S105 (a URL path)
AUTHORIZE_PATH = "/v1/oauth/authorize"
REFRESH_MARGIN = timedelta(minutes=2)
"""Refresh this long before the access token expires."""
REFRESH_RETRY = timedelta(seconds=20)
"""After the token endpoint failed, wait this long (loop clock) before asking it again."""
WARN_BEFORE_EXPIRY = timedelta(hours=24)
DEFAULT_ACCESS_LIFETIME_S = 1800
REAUTHORIZE = "re-authorize with `python -m gexbot.auth`"
log = logging.getLogger("gexbot.schwab")

Alert = Callable[[str, str], None]
"""An operator alert: (title, message)."""
Secret = Callable[[str], None]
"""Registers a secret with the log redactor."""


class TokenUnavailable(Exception):
    """The token endpoint could not be reached or answered nonsense; it may heal by itself."""


class TokenRefused(Exception):
    """The token endpoint refused the grant (HTTP 400/401): credentials or token are bad."""

    def __init__(self, status: int, error: str | None, description: str | None) -> None:
        words = f"HTTP {status}"
        if error:
            words += f" {error}"
        if description:
            words += f": {description}"
        super().__init__(words)
        self.status = status
        self.error = error
        self.description = description

    @property
    def bad_client(self) -> bool:
        """True when Schwab refused the app key/secret rather than the token or code."""
        about_token = "token" in (self.description or "").lower()
        return self.status == 401 and self.error == "invalid_client" and not about_token


@dataclass(frozen=True, slots=True)
class Grant:
    """A successful token request: an access token, its lifetime, maybe a refresh token."""

    access_token: str
    expires_in_s: int
    refresh_token: str | None


def _short(text: object, limit: int = 100) -> str | None:
    """An error text on one line, bracketed token digests removed, cut to `limit` characters."""
    if not isinstance(text, str) or not text.strip():
        return None
    flat = " ".join(re.sub(r"\[[^\]]*\]", "", text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class TokenEndpoint:
    """`POST {base}/v1/oauth/token` with HTTP Basic app credentials."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        app_key: str,
        app_secret: str,
        timeout: tuple[float, float],
    ) -> None:
        self.url = base_url + TOKEN_PATH
        self._session = session
        self._auth = (app_key, app_secret)
        self._timeout = timeout

    def refresh(self, refresh_token: str, headers: dict[str, str] | None = None) -> Grant:
        """A new access token from the refresh token."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._post(form, headers or {})

    def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Tokens from a browser login's authorization code (single-use, short-lived)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return self._post(form, {})

    def _post(self, form: dict[str, str], headers: dict[str, str]) -> Grant:
        try:
            answer = self._session.post(
                self.url,
                data=form,
                auth=self._auth,
                headers={"Accept": "application/json", **headers},
                timeout=self._timeout,
            )
        except requests.Timeout:
            raise TokenUnavailable(f"timeout after {self._timeout[1]:g} s") from None
        except requests.RequestException as exc:
            raise TokenUnavailable(f"connection error ({type(exc).__name__})") from None
        body = _json(answer)
        if answer.status_code in (400, 401):
            error = body.get("error") if isinstance(body, dict) else None
            described = body.get("error_description") if isinstance(body, dict) else None
            raise TokenRefused(answer.status_code, _short(error, 60), _short(described))
        if answer.status_code != 200:
            raise TokenUnavailable(f"HTTP {answer.status_code}")
        if not isinstance(body, dict):
            raise TokenUnavailable("HTTP 200 without a JSON object")
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise TokenUnavailable("HTTP 200 without an access_token")
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime <= 0:
            lifetime = DEFAULT_ACCESS_LIFETIME_S
        refresh = body.get("refresh_token")
        return Grant(access, lifetime, refresh if isinstance(refresh, str) and refresh else None)


def _json(answer: requests.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


class AccessTokens:
    """The current access token on the loop's clock; thread-safe, one refresh at a time.

    Parameters
    ----------
    endpoint : the token endpoint.
    tokens : the refresh token to start from (file or environment, see `tokens.pick_tokens`).
    file : the shared token file, None when tokens come from the environment only.
    secret : called with every token learnt, so the log redactor masks it.
    headers : extra headers for token requests (a stand-in server's clock header).
    """

    def __init__(
        self,
        endpoint: TokenEndpoint,
        tokens: Tokens,
        file: TokenFile | None,
        *,
        secret: Secret,
        headers: Callable[[datetime], dict[str, str]] | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._tokens = tokens
        self._file = file
        self._secret = secret
        self._headers = headers or (lambda _at: {})
        self._lock = threading.Lock()
        self._alert: Alert | None = None
        self._refused: str | None = None
        self._retry_at: datetime | None = None
        self._problem = ""
        self._warned_day: object = None
        self._told_unknown_age = False
        secret(tokens.refresh_token)
        if tokens.access_token:
            secret(tokens.access_token)

    @property
    def tokens(self) -> Tokens:
        """What is held now (for status reports; never log the values)."""
        return self._tokens

    def set_alerter(self, alert: Alert | None) -> None:
        """Where the refresh token's expiry warning goes besides the log."""
        self._alert = alert

    def current(self, at: datetime) -> str:
        """An access token good at clock time `at`, refreshing it first when due.

        Raises `AuthError` when Schwab refused the refresh token, `TokenUnavailable` when no
        usable token can be had right now.
        """
        with self._lock:
            self._check_refused()
            self._warn_expiry(at)
            if self._tokens.access_usable(at, REFRESH_MARGIN):
                return self._tokens.access_token  # type: ignore[return-value]
            return self._refresh(at, rejected=None)

    def replace(self, rejected: str, at: datetime) -> str:
        """A different access token after Schwab answered 401 to `rejected`.

        When another thread (or the other daemon) already replaced it, that token is used;
        otherwise one refresh is made.
        """
        with self._lock:
            self._check_refused()
            held = self._tokens.access_token
            if held is not None and held != rejected and self._tokens.access_usable(at, _ZERO):
                return held
            return self._refresh(at, rejected=rejected)

    def _check_refused(self) -> None:
        if self._refused is not None:
            raise AuthError(self._refused)

    def _refresh(self, at: datetime, rejected: str | None) -> str:
        held = self._tokens
        still_good = held.access_token if held.access_token != rejected else None
        if still_good is not None and not held.access_usable(at, _ZERO):
            still_good = None
        if self._retry_at is not None and at < self._retry_at:
            if still_good is not None:
                return still_good
            raise TokenUnavailable(self._problem)
        if self._file is None:
            return self._grant(at, held)
        with self._file.locked() as got_lock:
            if not got_lock:
                log.warning("%s: lock busy; refreshing without it", self._file.path)
            adopted = self._adopt_file(self._file, at, rejected)
            if adopted is not None:
                return adopted
            return self._grant(at, self._tokens)

    def _adopt_file(self, file: TokenFile, at: datetime, rejected: str | None) -> str | None:
        """Take a newer refresh token or a still-good access token from the shared file."""
        try:
            on_disk = file.read()
        except ConfigError as problem:
            log.warning("%s; refreshing with the token held in memory", problem)
            return None
        if on_disk is None:
            return None
        held = self._tokens
        if on_disk.refresh_token != held.refresh_token:
            if held.newer_than(on_disk):
                return None
            self._secret(on_disk.refresh_token)
            issued = on_disk.refresh_issued_at
            log.info(
                "picked up a new Schwab refresh token from %s (issued %s)",
                file.path,
                "at an unknown time"
                if issued is None
                else f"{issued.astimezone(EASTERN):%Y-%m-%d %H:%M %Z}",
            )
            self._tokens = on_disk
            self._warned_day = None
        access = on_disk.access_token
        if access is not None and access != rejected and on_disk.access_usable(at, REFRESH_MARGIN):
            self._secret(access)
            self._tokens = on_disk
            log.debug("using the access token another process refreshed")
            return access
        return None

    def _grant(self, at: datetime, held: Tokens) -> str:
        try:
            grant = self._endpoint.refresh(held.refresh_token, self._headers(at))
        except TokenRefused as refused:
            self._refused = self._refusal(refused, held, at)
            raise AuthError(self._refused) from None
        except TokenUnavailable as problem:
            self._problem = f"Schwab token endpoint: {problem}"
            self._retry_at = at + REFRESH_RETRY
            still_good = held.access_token if held.access_usable(at, _ZERO) else None
            log.warning(
                "%s; %s",
                self._problem,
                "keeping the current access token" if still_good else "no usable access token",
            )
            if still_good is not None:
                return still_good
            raise TokenUnavailable(self._problem) from None
        self._retry_at = None
        self._secret(grant.access_token)
        refresh = held.refresh_token
        if grant.refresh_token is not None and grant.refresh_token != refresh:
            self._secret(grant.refresh_token)
            refresh = grant.refresh_token
        expires = at + timedelta(seconds=grant.expires_in_s)
        fresh = Tokens(refresh, held.refresh_issued_at).with_access(grant.access_token, at, expires)
        self._tokens = fresh
        self._save(fresh)
        log.info(
            "Schwab access token refreshed, valid until %s%s",
            f"{expires.astimezone(EASTERN):%H:%M:%S}",
            self._left(fresh, at),
        )
        return grant.access_token

    def _save(self, tokens: Tokens) -> None:
        if self._file is None:
            return
        try:
            self._file.write(tokens)
        except OSError as exc:
            log.warning(
                "%s: cannot write the token file (%s); the other daemon will refresh on its own",
                self._file.path,
                exc.strerror,
            )

    def _refusal(self, refused: TokenRefused, held: Tokens, at: datetime) -> str:
        if refused.bad_client:
            return (
                f"Schwab refused the app credentials ({refused}): check SCHWAB_APP_KEY and"
                " SCHWAB_APP_SECRET"
            )
        issued = held.refresh_issued_at
        age = "" if issued is None else f"; it was issued {describe_span(at - issued)} ago"
        where = f" (token file {self._file.path})" if self._file is not None else ""
        return f"Schwab refused the refresh token ({refused}){age}: {REAUTHORIZE}{where}"

    @staticmethod
    def _left(tokens: Tokens, at: datetime) -> str:
        expires = tokens.refresh_expires_at
        if expires is None:
            return ""
        return f"; refresh token expires in {describe_span(expires - at)}"

    def _warn_expiry(self, at: datetime) -> None:
        """Log (and alert) once a clock day from 24 h before the refresh token dies."""
        expires = self._tokens.refresh_expires_at
        if expires is None:
            if not self._told_unknown_age:
                self._told_unknown_age = True
                log.info(
                    "the Schwab refresh token's issue time is unknown, so its 7-day expiry"
                    " cannot be warned about; `python -m gexbot.auth` records it"
                )
            return
        left = expires - at
        day = at.astimezone(EASTERN).date()
        if left > WARN_BEFORE_EXPIRY or self._warned_day == day:
            return
        self._warned_day = day
        when = f"{expires.astimezone(EASTERN):%Y-%m-%d %H:%M %Z}"
        if left > _ZERO:
            title = "Schwab refresh token expires soon"
            message = (
                f"the Schwab refresh token expires in {describe_span(left)} ({when}):"
                f" {REAUTHORIZE} before then, or the daemons stop"
            )
        else:
            title = "Schwab refresh token expired"
            message = (
                f"the Schwab refresh token expired {describe_span(left)} ago ({when}):"
                f" {REAUTHORIZE}"
            )
        log.warning("%s", message)
        if self._alert is not None:
            self._alert(title, message)


_ZERO = timedelta(0)
