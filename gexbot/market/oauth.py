"""The access token every data request carries, kept fresh from the refresh token.

`AccessTokens` keeps the access token fresh on the loop's clock: it refreshes a couple of
minutes before the 30-minute expiry (about every 28 minutes), once for all the threads of a
minute, re-reading the shared token file first so that a re-authorization or the other daemon's
refresh is picked up.
A refused refresh is final (`AuthError`: only a browser login fixes it) unless it is of a kind
that passes (refusal.py): then Schwab is asked again at a growing interval while minutes are
skipped, and a new login in the token file ends the wait at once. An unreachable token endpoint
is transient (the current token is used while it lasts, the minute is skipped after).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from gexbot.core.session import EASTERN
from gexbot.errors import AuthError, ConfigError
from gexbot.market.refusal import RefusalWait, WaitListener, first_wait, surely_expired
from gexbot.market.token_endpoint import TokenEndpoint, TokenRefused, TokenUnavailable
from gexbot.market.tokens import TokenFile, Tokens, describe_span
from gexbot.market.transport import Alert

REFRESH_MARGIN = timedelta(minutes=2)
"""Refresh this long before the access token expires."""
REFRESH_RETRY = timedelta(seconds=20)
"""After the token endpoint failed, wait this long (loop clock) before asking it again."""
WARN_BEFORE_EXPIRY = timedelta(hours=24)
REAUTHORIZE = "re-authorize with `python -m gexbot.auth`"
log = logging.getLogger("gexbot.schwab")

Secret = Callable[[str], None]
"""Registers a secret with the log redactor."""


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
        self._wait: RefusalWait | None = None
        self._refused_access: str | None = None
        """The last access token a data request was refused with (see `_unusable`)."""
        self._on_wait: WaitListener = lambda _wait: None
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

    def watch_refusals(self, resume: RefusalWait | None, listener: WaitListener) -> None:
        """Go on with a wait a previous run remembered (no request to Schwab before its time),
        and tell `listener` about every change, so that the next run can do the same."""
        with self._lock:
            self._on_wait = listener
            self._wait = resume
            if resume is not None:
                self._problem = resume.message
                log.warning("%s", resume.message)

    def current(self, at: datetime) -> str:
        """An access token good at clock time `at`, refreshing it first when due.

        Raises `AuthError` when Schwab refused the refresh token, `TokenUnavailable` when no
        usable token can be had right now.
        """
        with self._lock:
            self._check_refused()
            self._warn_expiry(at)
            held = self._tokens.access_token
            if held != self._unusable() and self._tokens.access_usable(at, REFRESH_MARGIN):
                return held  # type: ignore[return-value]
            return self._refresh(at, rejected=None)

    def replace(self, rejected: str, at: datetime) -> str:
        """A different access token after Schwab answered 401 to `rejected`.

        When another thread (or the other daemon) already replaced it, that token is used;
        otherwise one refresh is made.
        """
        with self._lock:
            self._check_refused()
            self._refused_access = rejected
            held = self._tokens.access_token
            if held is not None and held != rejected and self._tokens.access_usable(at, _ZERO):
                return held
            return self._refresh(at, rejected=rejected)

    def _check_refused(self) -> None:
        if self._refused is not None:
            raise AuthError(self._refused)

    def _unusable(self) -> str | None:
        """The access token not to offer again while waiting on a refusal: the one Schwab's
        data endpoints refused (else each waiting minute would send it, to be refused again)."""
        return self._refused_access if self._wait is not None else None

    def _paused(self, at: datetime) -> bool:
        """True while no token request may go out: after a failure, or waiting on a refusal."""
        if self._retry_at is not None and at < self._retry_at:
            return True
        return self._wait is not None and at < self._wait.next_at

    def _refresh(self, at: datetime, rejected: str | None) -> str:
        if self._wait is not None and self._file is not None and self._paused(at):
            # A new login, or the other daemon getting through, ends the wait at once.
            adopted = self._adopt_file(self._file, at, rejected)
            if adopted is not None:
                return adopted
        held = self._tokens
        still_good = (
            held.access_token if held.access_token not in (rejected, self._unusable()) else None
        )
        if still_good is not None and not held.access_usable(at, _ZERO):
            still_good = None
        if self._paused(at):
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
            self._end_wait(at, f"a new refresh token in {file.path}")
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
        refused = (rejected, self._unusable())
        if (
            access is not None
            and access not in refused
            and on_disk.access_usable(at, REFRESH_MARGIN)
        ):
            self._secret(access)
            if access != held.access_token:
                self._end_wait(at, "the other process's refresh")
            self._tokens = on_disk
            log.debug("using the access token another process refreshed")
            return access
        return None

    def _grant(self, at: datetime, held: Tokens) -> str:
        try:
            grant = self._endpoint.refresh(held.refresh_token, self._headers(at))
        except TokenRefused as refused:
            since = self._wait.since if self._wait is not None else at
            if refused.may_pass and not surely_expired(held.refresh_issued_at, since, at):
                return self._wait_after(refused, held, at)
            self._refused = self._refusal(refused, held, at, since)
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
        self._end_wait(at, "Schwab's answer")
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

    def _wait_after(self, refused: TokenRefused, held: Tokens, at: datetime) -> str:
        """Wait to ask again after a refusal that may pass; the still-good token, else raise."""
        wait = first_wait(at, "") if self._wait is None else self._wait.after_refusal(at, "")
        issued = held.refresh_issued_at
        age = "" if issued is None else f", issued {describe_span(at - issued)} ago,"
        message = (
            f"Schwab refused the refresh token ({refused}); it{age} can still be alive and such"
            f" refusals have passed before: asking again at {_hhmm(wait.next_at)}"
            f" (refusal {wait.refusals}, since {_hhmm(wait.since)}); a new login"
            " (python -m gexbot.auth) ends the wait"
        )
        wait = replace(wait, message=message)
        log.warning("%s", message)
        if self._alert is not None and wait.alert_due(at):
            self._alert("Schwab refused the refresh token, asking again", message)
            wait = wait.alerted(at)
        self._set_wait(wait)
        self._problem = message
        access = held.access_token
        if access is not None and access != self._unusable() and held.access_usable(at, _ZERO):
            return access
        raise TokenUnavailable(message)

    def _end_wait(self, at: datetime, what: str) -> None:
        wait = self._wait
        if wait is None:
            return
        message = (
            f"Schwab accepts the refresh token again ({what}) after {wait.refusals} refusal(s)"
            f" since {_hhmm(wait.since)}"
        )
        log.info("%s", message)
        if self._alert is not None and wait.alerted_on is not None:
            self._alert("Schwab accepts the refresh token again", message)
        self._set_wait(None)

    def _set_wait(self, wait: RefusalWait | None) -> None:
        self._wait = wait
        try:
            self._on_wait(wait)
        except Exception:
            log.exception("could not remember the wait for Schwab's token endpoint")

    def _refusal(
        self, refused: TokenRefused, held: Tokens, at: datetime, since: datetime | None = None
    ) -> str:
        if refused.bad_client:
            return (
                f"Schwab refused the app credentials ({refused}): check SCHWAB_APP_KEY and"
                " SCHWAB_APP_SECRET"
            )
        issued = held.refresh_issued_at
        age = "" if issued is None else f"; it was issued {describe_span(at - issued)} ago"
        if issued is None and since is not None and since < at:
            age = f"; refused since {describe_span(at - since)} ago"
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


def _hhmm(moment: datetime) -> str:
    return f"{moment.astimezone(EASTERN):%Y-%m-%d %H:%M %Z}"


_ZERO = timedelta(0)
