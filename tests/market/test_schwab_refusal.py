"""A refusal that may pass: asked again at a growing interval, never a storm, never the week.

The transport runs on an injected loop clock (`at`) against mocked token and data endpoints, so
a simulated day takes milliseconds and the token requests can be counted.
"""

from __future__ import annotations

import itertools
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from schwab_helpers import (
    AT,
    QUOTES,
    REFRESH,
    TOKEN_URL,
    URLS,
    add_refresh,
    environ,
    load,
    make_transport,
    token_calls,
)

from gexbot.errors import AuthError
from gexbot.market.refusal import FIRST_PAUSE, MAX_PAUSE, RefusalWait, first_wait
from gexbot.market.token_endpoint import TokenRefused
from gexbot.market.tokens import TokenFile, Tokens

SUPERSEDED = load("oauth_refresh_superseded")
ACCESS_DENIED = "<html><head><title>Access Denied</title></head><body>Access Denied</body></html>"


@pytest.mark.parametrize(
    ("refused", "passes"),
    [
        (TokenRefused(400, "unsupported_token_type", "400 Bad Request: ..."), True),
        (TokenRefused(400, None, "x refresh_token_authentication_error y"), True),
        (TokenRefused(403, None, None, page=True), True),
        (TokenRefused(400, None, None, page=True), True),
        (TokenRefused(400, "invalid_grant", "refresh token expired"), False),
        (TokenRefused(400, "invalid_client", "refresh token invalid"), False),
        (TokenRefused(401, "invalid_client", "Unauthorized"), False),
        (TokenRefused(400, "invalid_request", None), False),
    ],
)
def test_which_refusals_may_pass(refused: TokenRefused, passes: bool) -> None:
    assert refused.may_pass is passes


def _refuse(body: Any = SUPERSEDED, status: int = 400) -> None:
    if isinstance(body, str):
        responses.post(TOKEN_URL, status=status, body=body, content_type="text/html")
    else:
        responses.post(TOKEN_URL, status=status, json=body)


def _quotes() -> None:
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))


def _minutes(start: datetime, end: datetime) -> list[datetime]:
    count = int((end - start) / timedelta(minutes=1))
    return [start + timedelta(minutes=n) for n in range(count)]


@pytest.mark.parametrize(("body", "status"), [(SUPERSEDED, 400), (ACCESS_DENIED, 403),
                                              (ACCESS_DENIED, 400)])  # fmt: skip
@responses.activate
def test_a_passing_refusal_skips_minutes_and_is_asked_again_at_a_growing_interval(
    body: Any, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    _refuse(body, status)
    _quotes()
    transport, _ = make_transport()
    asked: list[datetime] = []
    with caplog.at_level(logging.WARNING, logger="gexbot.schwab"):
        for minute in _minutes(AT, AT + timedelta(hours=24)):
            before = token_calls(responses.mock)
            answer = transport.get("quotes", QUOTES, minute)  # never raises: no AuthError
            assert not answer.ok
            assert answer.error is not None
            assert answer.error.startswith("no access token: Schwab refused the refresh token")
            if token_calls(responses.mock) > before:
                asked.append(minute)
    gaps = [(b - a) / timedelta(minutes=1) for a, b in itertools.pairwise(asked)]
    assert gaps == [15, 30, 60, 120, 240, 240, 240, 240, 240]
    assert len(asked) == 10  # over a whole day: ten token requests, no data request at all
    assert len(responses.calls) == 10
    refusals = [m for m in caplog.messages if m.startswith("Schwab refused the refresh token")]
    assert len(refusals) == 10  # one line per refusal, not one per minute
    assert "issued 2 d 0 h ago, can still be alive" in refusals[0]
    assert "asking again at 2026-11-17 09:51 EST (refusal 1, since 2026-11-17 09:36 EST)" in (
        refusals[0])  # fmt: skip


@responses.activate
def test_refused_twice_then_accepted_trades_on_without_a_new_login() -> None:
    _refuse()
    _refuse()
    add_refresh(responses.mock, "access-token-after-the-refusals")
    _quotes()
    transport, _ = make_transport()
    seen = []
    for minute in _minutes(AT, AT + timedelta(minutes=60)):
        seen.append((minute, transport.get("quotes", QUOTES, minute).ok))
    ok = [minute for minute, good in seen if good]
    assert ok[0] == AT + FIRST_PAUSE + 2 * FIRST_PAUSE  # refused at +0 and +15, accepted at +45
    assert len(ok) == 15
    assert token_calls(responses.mock) == 3


@responses.activate
def test_a_refusal_alerts_once_a_day_and_says_when_it_passed() -> None:
    for _ in range(6):
        _refuse()
    add_refresh(responses.mock, "access-token-in-the-evening")
    _quotes()
    transport, _ = make_transport()
    alerts: list[tuple[str, str]] = []
    transport.set_alerter(lambda title, message: alerts.append((title, message)))
    for minute in _minutes(AT, AT + timedelta(hours=12)):
        transport.get("quotes", QUOTES, minute)
    titles = [title for title, _ in alerts if "expires" not in title]
    # Refused at 09:36, 09:51, 10:21, 11:21, 13:21 and 17:21 (one alert: the same day),
    # accepted at 21:21.
    assert titles == ["Schwab refused the refresh token, asking again",
                      "Schwab accepts the refresh token again"]  # fmt: skip
    assert token_calls(responses.mock) == 7


@responses.activate
def test_the_next_day_alerts_again_while_it_lasts() -> None:
    for _ in range(20):
        _refuse()
    transport, _ = make_transport()
    alerts: list[str] = []
    transport.set_alerter(lambda title, _message: alerts.append(title))
    for minute in _minutes(AT, AT + timedelta(days=2)):
        transport.get("quotes", QUOTES, minute)
    refused = [title for title in alerts if title.startswith("Schwab refused")]
    assert len(refused) == 3  # 17 Nov, 18 Nov, 19 Nov (New York days)


@responses.activate
def test_a_token_surely_expired_by_its_issue_time_is_a_final_refusal() -> None:
    _refuse()
    issued = AT - timedelta(days=7, minutes=1)
    transport, _ = make_transport(environ(SCHWAB_REFRESH_TOKEN_ISSUED_AT=issued.isoformat()))
    with pytest.raises(AuthError, match=r"issued 7 d 0 h ago: re-authorize"):
        transport.get("quotes", QUOTES, AT)
    with pytest.raises(AuthError):
        transport.get("quotes", QUOTES, AT + timedelta(hours=1))
    assert token_calls(responses.mock) == 1


@responses.activate
def test_a_refusal_that_lasts_past_the_tokens_seven_days_becomes_final() -> None:
    for _ in range(30):
        _refuse()
    issued = AT - timedelta(days=6, hours=23)
    transport, _ = make_transport(environ(SCHWAB_REFRESH_TOKEN_ISSUED_AT=issued.isoformat()))
    for minute in _minutes(AT, AT + timedelta(minutes=59)):
        transport.get("quotes", QUOTES, minute)  # asked at +0, +15 and +45: still alive
    with pytest.raises(AuthError, match="re-authorize"):
        transport.get("quotes", QUOTES, AT + timedelta(hours=3))  # +1:45, token 7 days old
    assert token_calls(responses.mock) == 4


@responses.activate
def test_with_an_unknown_issue_time_seven_days_of_refusals_are_final() -> None:
    for _ in range(60):
        _refuse()
    transport, _ = make_transport(environ(SCHWAB_REFRESH_TOKEN_ISSUED_AT=None))

    def every_hour_for_eight_days() -> None:
        for hours in range(0, 24 * 8):
            transport.get("quotes", QUOTES, AT + timedelta(hours=hours))

    with pytest.raises(AuthError, match=r"refused since 7 d \d+ h ago: re-authorize"):
        every_hour_for_eight_days()
    assert 40 <= token_calls(responses.mock) <= 50  # about six a day, not one a minute


@responses.activate
def test_a_new_login_in_the_token_file_ends_the_wait_at_once(tmp_path: Path) -> None:
    path = tmp_path / "schwab-token.json"
    TokenFile(path).write(Tokens(REFRESH, AT - timedelta(days=2)))
    _refuse()
    add_refresh(responses.mock, "access-token-after-login", refresh="refresh-after-login-Zq8")
    _quotes()
    transport, _ = make_transport(environ(GEXBOT_TOKEN_FILE=str(path)))
    assert not transport.get("quotes", QUOTES, AT).ok
    assert not transport.get("quotes", QUOTES, AT + timedelta(minutes=1)).ok
    TokenFile(path).write(Tokens("refresh-after-login-Zq8", AT + timedelta(minutes=1)))
    assert transport.get("quotes", QUOTES, AT + timedelta(minutes=2)).ok
    assert token_calls(responses.mock) == 2


@responses.activate
def test_a_still_valid_access_token_is_used_through_the_wait() -> None:
    add_refresh(responses.mock, "access-token-valid-30-min")
    _refuse()
    add_refresh(responses.mock, "access-token-next")
    _quotes()
    transport, _ = make_transport()
    due = AT + timedelta(minutes=28)  # refresh due, refused: the old token still has 2 minutes
    results = [transport.get("quotes", QUOTES, AT).ok, transport.get("quotes", QUOTES, due).ok,
               transport.get("quotes", QUOTES, due + timedelta(minutes=1)).ok,
               transport.get("quotes", QUOTES, due + timedelta(minutes=3)).ok,
               transport.get("quotes", QUOTES, due + FIRST_PAUSE).ok]  # fmt: skip
    assert results == [True, True, True, False, True]
    assert token_calls(responses.mock) == 3


@responses.activate
def test_a_remembered_wait_is_gone_on_with_after_a_restart() -> None:
    _refuse()
    _quotes()
    remembered = first_wait(AT - timedelta(minutes=10), "remembered refusal")
    transport, _ = make_transport()
    changes: list[RefusalWait | None] = []
    transport.watch_refusals(remembered, changes.append)
    for minute in _minutes(AT, AT + timedelta(minutes=5)):
        answer = transport.get("quotes", QUOTES, minute)
        assert answer.error == "no access token: remembered refusal"
    assert token_calls(responses.mock) == 0  # not before the remembered time
    transport.get("quotes", QUOTES, remembered.next_at)
    assert token_calls(responses.mock) == 1
    assert len(changes) == 1
    wait = changes[0]
    assert wait is not None
    assert (wait.since, wait.refusals, wait.pause) == (remembered.since, 2, 2 * FIRST_PAUSE)
    assert RefusalWait.from_json(wait.to_json()) == wait


def test_a_wait_grows_to_four_hours_and_no_further() -> None:
    wait = first_wait(AT, "m")
    pauses = [wait.pause]
    for n in range(8):
        wait = wait.after_refusal(AT + timedelta(hours=n), "m")
        pauses.append(wait.pause)
    assert pauses[:6] == [FIRST_PAUSE * k for k in (1, 2, 4, 8, 16, 16)]
    assert max(pauses) == MAX_PAUSE
    for broken in ("{}", "[]", '{"since": "x"}', wait.to_json().replace("-05:00", "")):
        with pytest.raises((ValueError, TypeError, KeyError)):
            RefusalWait.from_json(broken)
