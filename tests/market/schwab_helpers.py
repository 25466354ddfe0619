"""What the Schwab transport tests share: fake secrets, fixtures, a fake clock, mocked routes."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import responses
from responses import matchers

from gexbot.core.session import EASTERN
from gexbot.market.schwab import SchwabTransport
from gexbot.market.schwab_config import SchwabConfig

FIXTURES = Path(__file__).parent.parent / "fixtures" / "schwab"
KEY = "test-app-key-Q7x2Lm"
SECRET = "test-app-secret-Zr9Pw4"  # noqa: S105 (a fake, searched for in output)
REFRESH = "test-refresh-R3f+Tok/9@"
BASE = "https://api.schwabapi.com"
TOKEN_URL = f"{BASE}/v1/oauth/token"
URLS = {
    "quotes": f"{BASE}/marketdata/v1/quotes",
    "pricehistory": f"{BASE}/marketdata/v1/pricehistory",
    "chains": f"{BASE}/marketdata/v1/chains",
}
AT = datetime(2026, 11, 17, 9, 36, tzinfo=EASTERN)
QUOTES = {"symbols": "$SPX,SPY", "fields": "quote,reference"}
BASIC = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()


def load(name: str) -> Any:
    """A fixture's JSON."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def token_body(access: str, refresh: str | None = REFRESH, expires_in: int = 1800) -> Any:
    """Schwab's token answer (fixture) with the given tokens."""
    body = load("oauth_token")
    body["access_token"] = access
    body["expires_in"] = expires_in
    if refresh is None:
        del body["refresh_token"]
    else:
        body["refresh_token"] = refresh
    return body


class FakeTime:
    """A monotonic clock that only moves when the transport 'sleeps' (or a test moves it)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def environ(**changes: str | None) -> dict[str, str]:
    """The environment of a configured daemon; a None value removes the variable."""
    env = {
        "SCHWAB_APP_KEY": KEY,
        "SCHWAB_APP_SECRET": SECRET,
        "SCHWAB_REFRESH_TOKEN": REFRESH,
        "SCHWAB_REFRESH_TOKEN_ISSUED_AT": (AT - timedelta(days=2)).isoformat(),
    }
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def make_transport(
    env: Mapping[str, str] | None = None, clock: FakeTime | None = None
) -> tuple[SchwabTransport, FakeTime]:
    """A transport on `env` (default: `environ()`) whose waits go to a `FakeTime`."""
    clock = clock if clock is not None else FakeTime()
    config = SchwabConfig.from_env(env if env is not None else environ())
    return SchwabTransport(config, sleep=clock.sleep, monotonic=clock.monotonic), clock


def add_refresh(
    rsps: responses.RequestsMock,
    access: str,
    *,
    refresh: str = REFRESH,
    status: int = 200,
    body: Any = None,
) -> None:
    """Expect one refresh-token grant with `refresh`, answered with `access` (or `body`)."""
    rsps.post(
        TOKEN_URL,
        status=status,
        json=token_body(access, refresh) if body is None else body,
        match=[
            matchers.urlencoded_params_matcher(
                {"grant_type": "refresh_token", "refresh_token": refresh}
            ),
            matchers.header_matcher({"Authorization": BASIC}),
        ],
    )


def token_calls(rsps: responses.RequestsMock) -> int:
    """How many token requests were made."""
    return sum(1 for call in rsps.calls if call.request.url == TOKEN_URL)


def data_calls(rsps: responses.RequestsMock) -> list[Any]:
    """The market-data requests made, in order."""
    return [call for call in rsps.calls if call.request.url != TOKEN_URL]


def assert_sent(
    rsps: responses.RequestsMock, endpoint: str, params: Mapping[str, str], *bearers: str
) -> None:
    """Every market-data request went to `endpoint` with exactly `params`, a bearer token (the
    given ones in order, or the one given for all) and its own correlation UUID."""
    calls = data_calls(rsps)
    assert calls
    expected = list(bearers) if len(bearers) > 1 else [bearers[0]] * len(calls)
    assert len(calls) == len(expected)
    correl = set()
    for call, bearer in zip(calls, expected, strict=True):
        split = urlsplit(call.request.url)
        assert f"{split.scheme}://{split.netloc}{split.path}" == URLS[endpoint]
        assert dict(parse_qsl(split.query)) == dict(params)
        assert call.request.headers["Authorization"] == f"Bearer {bearer}"
        assert call.request.headers["Accept"] == "application/json"
        correl.add(uuid.UUID(call.request.headers["Schwab-Client-CorrelId"]))
    assert len(correl) == len(calls)
