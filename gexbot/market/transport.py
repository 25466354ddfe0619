"""The one seam for market-data I/O: a request in, an `Exchange` out.

Live Schwab, the simulated market, a recorded session and the recording wrapper all implement
`Transport`, so everything after it (the parser, the engine) runs the same code whatever the
source. A transport never raises for a failed request: it answers an `Exchange` whose `status`
and `error` say what happened, because a failure is data to the loop (skip the minute, record
it) and must be recordable and replayable like any answer.

A run owns the transport it opens (`ManagedTransport`): besides answering, a transport may hold
secrets that the logs must mask, warn the operator (a refresh token about to die), remember a
wait across restarts, and hold connections to close. Those hooks are declared once here with
do-nothing defaults and each transport overrides the ones it supports, so the run calls all of
them on whatever it opened, and the type checker holds every transport to their signatures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from gexbot.market.refusal import RefusalWait, WaitListener

Endpoint = Literal["quotes", "pricehistory", "chains"]
ENDPOINTS: tuple[Endpoint, ...] = ("quotes", "pricehistory", "chains")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One market-data HTTP exchange as made at clock time `at`.

    `params` are the query parameters as sent. `status` is the HTTP status, None when no answer
    came (timeout, connection error). `body` is the decoded JSON, None when there was none or it
    was not JSON. `error` says in words what failed (timeout, bad JSON, HTTP 429), None when the
    exchange succeeded at the transport level.
    """

    at: datetime
    endpoint: Endpoint
    params: dict[str, str]
    status: int | None
    body: Any
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when an HTTP 200 with a JSON body came back."""
        return self.error is None and self.status == 200 and self.body is not None


class Transport(Protocol):
    """Anything that can answer a market-data request at a clock time."""

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        """Make the request `endpoint?params` at clock time `at` and return what came back."""
        ...


Alert = Callable[[str, str], None]
"""An operator alert: (title, message)."""
SecretListener = Callable[[str], object]
"""Told every secret a transport holds or learns, so that it is masked wherever text goes."""


class ManagedTransport(ABC):
    """A transport as a run opens, wires and closes it; each hook does nothing unless overridden.

    The simulated market and a replay need none of the hooks; live Schwab overrides them all
    (its credentials and fresh access tokens, the refresh token's expiry, the remembered wait
    after a refusal, its HTTP connections); the recorder passes each on to what it wraps.
    """

    @abstractmethod
    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        """Make the request `endpoint?params` at clock time `at` and return what came back."""

    def register_redactor(self, add: SecretListener) -> None:
        """Have `add` mask every secret this transport holds now or learns later (none here)."""
        return

    def set_alerter(self, alert: Alert | None) -> None:
        """Send operator warnings (a credential about to expire) to `alert` (none here)."""
        return

    def watch_refusals(self, resume: RefusalWait | None, listener: WaitListener) -> None:
        """Go on with a wait after a refused credential that a previous run remembered, and
        tell `listener` of each change (no credentials here: nothing to wait for)."""
        return

    def close(self) -> None:
        """Release what the transport holds (connections, open files); nothing here."""
        return
