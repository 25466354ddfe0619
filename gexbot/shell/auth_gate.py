"""A refused Schwab credential, remembered in the database so that restarts do not hammer anyone.

When Schwab refuses the refresh token (expired after 7 days, revoked by a newer login) the daemon
alerts, logs one critical line and exits with code 3. Under `restart: unless-stopped` Docker
starts it again and again; each start finds the refusal in the `meta` table and, while the
credentials are the ones refused, exits at once with code 3 without a single request to Schwab
and without a new alert (at most one a day, to say it is still waiting). Exiting at once, rather
than sleeping, lets Docker's own restart delay grow instead of resetting it.

A refusal that may pass (market/refusal.py) stops nothing: the running daemon asks Schwab again
at a growing interval. The gate remembers that wait too, so a restart goes on with it (no early
request to Schwab, no second alert the same day) instead of starting it afresh. The token holder
reports changes from whichever thread asked for a token; they are written from the loop's
thread, after a minute is committed (`save_wait`), never from under the store.

Credentials are recognised by a fingerprint: a truncated SHA-256 of the app key and the refresh
token, which identifies them without revealing either. `python -m gexbot.auth` writes a new
refresh token; the next start sees another fingerprint, forgets the refusal and trades again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Protocol

from gexbot.core.session import EASTERN
from gexbot.documents import load_json
from gexbot.market.refusal import RefusalWait

KEY = "auth_refused"
WAIT_KEY = "auth_waiting"
FINGERPRINT_HEX = 16
log = logging.getLogger("gexbot.auth_gate")


class MetaStore(Protocol):
    """The part of the store the gate uses."""

    def get_meta(self, key: str) -> str | None:
        """The remembered value, or None."""
        ...

    def set_meta(self, key: str, value: str) -> bool:
        """Remember a value."""
        ...


Alert = Callable[[str, str], None]


def fingerprint(app_key: str, refresh_token: str) -> str:
    """A short, one-way name for a pair of credentials."""
    digest = hashlib.sha256(f"{app_key}\n{refresh_token}".encode()).hexdigest()
    return digest[:FINGERPRINT_HEX]


@dataclass(frozen=True, slots=True)
class Refusal:
    """What the database remembers of a refusal."""

    fingerprint: str
    refused_at: str
    message: str
    last_alert_day: str
    starts_since: int


class AuthGate:
    """Lets a start through, or stops it while the refused credentials are still in place."""

    def __init__(self, store: MetaStore, current: str, alert: Alert) -> None:
        """`current` is the fingerprint of the credentials this start would use."""
        self._store = store
        self._current = current
        self._alert = alert
        self._lock = threading.Lock()
        self._unsaved: tuple[RefusalWait | None] | None = None

    def remembered(self) -> Refusal | None:
        """The refusal stored for any credentials, None when there is none (or it is unreadable)."""
        text = self._store.get_meta(KEY)
        if not text:
            return None
        try:
            return Refusal(**load_json(text, strict_numbers=False))
        except (TypeError, ValueError):
            log.warning("the remembered Schwab refusal is unreadable; ignoring it")
            return None

    def check_start(self, now: datetime) -> str | None:
        """The reason this start must not contact Schwab, or None to go on.

        A refusal of other credentials is forgotten (a new login happened). A refusal of these
        ones counts the start and alerts again only on a new day.
        """
        refusal = self.remembered()
        if refusal is None:
            return None
        if refusal.fingerprint != self._current:
            log.info("new Schwab credentials since the refusal of %s: trading again",
                     refusal.refused_at)
            self._store.set_meta(KEY, "")
            return None
        today = now.astimezone(EASTERN).date().isoformat()
        refusal = replace(refusal, starts_since=refusal.starts_since + 1)
        why = (
            f"Schwab refused these credentials at {refusal.refused_at} ({refusal.message});"
            f" {refusal.starts_since} start(s) since. Not contacting Schwab until they change:"
            " run python -m gexbot.auth to authorize again"
        )
        if refusal.last_alert_day != today:
            self._alert("Schwab authorization still refused", why)
            refusal = replace(refusal, last_alert_day=today)
        self._store.set_meta(KEY, json.dumps(asdict(refusal)))
        return why

    def record_refusal(self, message: str, now: datetime) -> None:
        """Remember that Schwab refused the current credentials; alert unless done today."""
        today = now.astimezone(EASTERN).date().isoformat()
        previous = self.remembered()
        already = (
            previous is not None
            and previous.fingerprint == self._current
            and previous.last_alert_day == today
        )
        if not already:
            self._alert("Schwab authentication failed", message)
        refusal = Refusal(
            fingerprint=self._current,
            refused_at=now.astimezone(EASTERN).isoformat(timespec="seconds"),
            message=message,
            last_alert_day=today,
            starts_since=0,
        )
        self._store.set_meta(KEY, json.dumps(asdict(refusal)))
        self._store.set_meta(WAIT_KEY, "")

    def waiting(self) -> RefusalWait | None:
        """The wait after a passing refusal of these credentials, to go on with; None if none.

        A wait of other credentials is forgotten (a new login happened).
        """
        text = self._store.get_meta(WAIT_KEY)
        if not text:
            return None
        try:
            remembered = load_json(text, strict_numbers=False)
            wait = RefusalWait.from_json(remembered["wait"])
            credentials = remembered["fingerprint"]
        except (TypeError, ValueError, KeyError):
            log.warning("the remembered wait for Schwab's token endpoint is unreadable; ignored")
            return None
        if credentials != self._current:
            self._store.set_meta(WAIT_KEY, "")
            return None
        return wait

    def note_wait(self, wait: RefusalWait | None) -> None:
        """Take a change of the wait from any thread; `save_wait` writes it."""
        with self._lock:
            self._unsaved = (wait,)

    def save_wait(self, _events: Sequence[object] = ()) -> None:
        """Write the last change noted, if any (a sink of the loop, so on its thread)."""
        with self._lock:
            unsaved, self._unsaved = self._unsaved, None
        if unsaved is None:
            return
        (wait,) = unsaved
        text = "" if wait is None else json.dumps(
            {"fingerprint": self._current, "wait": wait.to_json()}
        )
        self._store.set_meta(WAIT_KEY, text)
