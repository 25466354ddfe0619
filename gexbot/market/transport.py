"""The one seam for market-data I/O: a request in, an `Exchange` out.

Live Schwab, the simulated market, a recorded session and the recording wrapper all implement
`Transport`, so everything after it (the parser, the engine) runs the same code whatever the
source. A transport never raises for a failed request: it answers an `Exchange` whose `status`
and `error` say what happened, because a failure is data to the loop (skip the minute, record
it) and must be recordable and replayable like any answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

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
