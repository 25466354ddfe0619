"""A refused refresh token that may be refused only for a while: when to ask Schwab again.

Schwab has been seen refusing a refresh token that was still valid, for a while, then accepting
it again: HTTP 400 `unsupported_token_type` with `refresh_token_authentication_error`, or an
HTML "Access Denied" page in place of the JSON answer. A refusal of those kinds is not final
while the token can still be alive: Schwab is asked again after 15 minutes, then after a pause
that doubles up to 4 hours, so a passing refusal costs some minutes rather than the rest of the
week, and a lasting one costs a handful of token requests a day. It becomes final once the token
is surely dead (7 days after its issue, or after 7 days of refusals when its issue time is
unknown: it was issued before the first of them). Any other refusal (`invalid_grant`,
`invalid_client`, ...) is final at once: only a new login helps.

The wait is a plain value, kept by the token holder and remembered in the database
(shell/auth_gate.py), so that a restart neither asks Schwab early nor alerts again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from gexbot.core.session import EASTERN
from gexbot.documents import load_json
from gexbot.market.tokens import REFRESH_TOKEN_LIFETIME

FIRST_PAUSE = timedelta(minutes=15)
MAX_PAUSE = timedelta(hours=4)
PASSING_ERRORS = ("unsupported_token_type", "refresh_token_authentication_error")


def may_pass(error: str | None, description: str | None, page: bool) -> bool:
    """True for the refusals Schwab has been seen to take back: a page instead of JSON, or
    `unsupported_token_type` / `refresh_token_authentication_error`."""
    words = f"{error or ''} {description or ''}"
    return page or any(name in words for name in PASSING_ERRORS)


def surely_expired(issued_at: datetime | None, since: datetime, at: datetime) -> bool:
    """True when the refresh token cannot be alive at `at` whatever Schwab says.

    `since` is the first refusal: a token of unknown age was issued before it.
    """
    born = issued_at if issued_at is not None else since
    return at >= born + REFRESH_TOKEN_LIFETIME


@dataclass(frozen=True, slots=True)
class RefusalWait:
    """A run of refusals that may pass: since when, how many, and when to ask again."""

    since: datetime
    next_at: datetime
    pause: timedelta
    refusals: int
    message: str
    alerted_on: str | None = None
    """The New York date of the last alert about it (alerts go out at most once a day)."""

    def after_refusal(self, at: datetime, message: str) -> RefusalWait:
        """The wait after one more refusal at `at`: the pause doubles, up to `MAX_PAUSE`."""
        pause = min(2 * self.pause, MAX_PAUSE)
        return replace(
            self,
            next_at=_minute(at) + pause,
            pause=pause,
            refusals=self.refusals + 1,
            message=message,
        )

    def alert_due(self, at: datetime) -> bool:
        """True when no alert about this wait went out on `at`'s New York day."""
        return self.alerted_on != at.astimezone(EASTERN).date().isoformat()

    def alerted(self, at: datetime) -> RefusalWait:
        """The same wait, with an alert sent on `at`'s day."""
        return replace(self, alerted_on=at.astimezone(EASTERN).date().isoformat())

    def to_json(self) -> str:
        """The wait as the database keeps it."""
        document = asdict(self)
        document.update(
            since=self.since.isoformat(),
            next_at=self.next_at.isoformat(),
            pause=self.pause.total_seconds(),
        )
        return json.dumps(document)

    @classmethod
    def from_json(cls, text: str) -> RefusalWait:
        """Read a remembered wait; ValueError (or TypeError, KeyError) when it is not one."""
        raw = load_json(text, strict_numbers=False)
        wait = cls(
            since=datetime.fromisoformat(raw["since"]),
            next_at=datetime.fromisoformat(raw["next_at"]),
            pause=timedelta(seconds=float(raw["pause"])),
            refusals=int(raw["refusals"]),
            message=str(raw["message"]),
            alerted_on=raw.get("alerted_on"),
        )
        if wait.since.tzinfo is None or wait.next_at.tzinfo is None:
            raise ValueError("times without a UTC offset")
        if not FIRST_PAUSE <= wait.pause <= MAX_PAUSE or wait.refusals < 1:
            raise ValueError("pause or count out of range")
        return wait


WaitListener = Callable[[RefusalWait | None], None]
"""Told each time the wait after a passing refusal starts, grows or ends (None)."""


def first_wait(at: datetime, message: str) -> RefusalWait:
    """The wait after the first refusal of a run, at `at`."""
    return RefusalWait(
        since=at, next_at=_minute(at) + FIRST_PAUSE, pause=FIRST_PAUSE, refusals=1, message=message
    )


def _minute(at: datetime) -> datetime:
    """The whole minute of `at`: the next try falls on the minute it is due, not one later."""
    return at.replace(second=0, microsecond=0)
