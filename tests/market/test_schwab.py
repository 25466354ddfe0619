"""The live transport against mocked Schwab: exact requests, OAuth refresh, every HTTP failure."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import timedelta

import pytest
import requests
import responses
from responses import matchers
from schwab_helpers import (
    AT,
    BASE,
    FIXTURES,
    KEY,
    QUOTES,
    REFRESH,
    SECRET,
    TOKEN_URL,
    URLS,
    FakeTime,
    add_refresh,
    assert_sent,
    data_calls,
    environ,
    load,
    make_transport,
    token_calls,
)

from gexbot.errors import AuthError, DataError, TransientError
from gexbot.market.parse import check_exchange
from gexbot.market.schwab import ATTEMPTS, CLOCK_HEADER, CORREL_HEADER, RATE_LIMIT

HISTORY = {
    "symbol": "$SPX",
    "periodType": "day",
    "period": "1",
    "frequencyType": "minute",
    "frequency": "1",
    "startDate": "1794925800000",
    "endDate": "1794926160000",
    "needExtendedHoursData": "false",
    "needPreviousClose": "true",
}
CHAINS = {
    "symbol": "$SPX",
    "contractType": "ALL",
    "strikeCount": "40",
    "includeUnderlyingQuote": "false",
    "fromDate": "2026-11-17",
    "toDate": "2026-11-18",
}


def _headers_of(call: object) -> dict[str, str]:
    return dict(call.request.headers)  # type: ignore[attr-defined]


@responses.activate
def test_requests_carry_exact_url_params_and_headers() -> None:
    add_refresh(responses.mock, "access-token-1")
    for endpoint, params, body in (
        ("quotes", QUOTES, load("quotes_spx_spy")),
        ("pricehistory", HISTORY, load("pricehistory_spx")),
        ("chains", CHAINS, load("chains_spx")),
    ):
        responses.get(
            URLS[endpoint],
            json=body,
            match=[
                matchers.query_param_matcher(params),
                matchers.header_matcher(
                    {"Authorization": "Bearer access-token-1", "Accept": "application/json"}
                ),
            ],
        )
    transport, _ = make_transport()
    answers = [transport.get(ep, p, AT) for ep, p in (
        ("quotes", QUOTES), ("pricehistory", HISTORY), ("chains", CHAINS))]  # fmt: skip
    assert all(answer.ok for answer in answers)
    assert answers[0].params == QUOTES
    assert answers[0].at == AT
    assert answers[2].body == load("chains_spx")
    assert token_calls(responses.mock) == 1
    correl = [_headers_of(call)[CORREL_HEADER] for call in data_calls(responses.mock)]
    assert len({str(uuid.UUID(value)) for value in correl}) == 3
    # Schwab itself is never sent the stand-in clock header.
    assert all(CLOCK_HEADER not in _headers_of(c) for c in data_calls(responses.mock))
    assert data_calls(responses.mock)[0].request.req_kwargs["timeout"] == (3.05, 10.0)
    assert data_calls(responses.mock)[0].request.url == (
        f"{URLS['quotes']}?symbols=%24SPX%2CSPY&fields=quote%2Creference"
    )


@responses.activate
def test_a_stand_in_server_is_sent_the_loop_clock() -> None:
    local = "http://127.0.0.1:8999"
    responses.post(
        f"{local}/v1/oauth/token", json={"access_token": "stand-in-access-a", "expires_in": 1800}
    )
    responses.get(f"{local}/marketdata/v1/quotes", json=load("quotes_spx_spy"))
    transport, _ = make_transport(environ(GEXBOT_SCHWAB_BASE_URL=local + "/"))
    assert transport.get("quotes", QUOTES, AT).ok
    token, data = responses.calls
    assert _headers_of(token)[CLOCK_HEADER] == AT.isoformat()
    assert _headers_of(data)[CLOCK_HEADER] == AT.isoformat()


@responses.activate
def test_access_token_is_refreshed_about_every_28_minutes_of_loop_clock() -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    transport, _ = make_transport()
    for minute in (0, 10, 27):
        transport.get("quotes", QUOTES, AT + timedelta(minutes=minute))
    assert token_calls(responses.mock) == 1
    responses.mock.replace(responses.POST, TOKEN_URL, json=load("oauth_token") | {
        "access_token": "access-token-2"})  # fmt: skip
    transport.get("quotes", QUOTES, AT + timedelta(minutes=28, seconds=1))
    assert token_calls(responses.mock) == 2
    assert _headers_of(data_calls(responses.mock)[-1])["Authorization"] == "Bearer access-token-2"


@responses.activate
def test_concurrent_requests_of_a_minute_share_one_refresh() -> None:
    def slow_token(_request: object) -> tuple[int, dict[str, str], str]:
        time.sleep(0.05)
        return 200, {}, '{"access_token": "access-token-1", "expires_in": 1800}'

    responses.add_callback(responses.POST, TOKEN_URL, callback=slow_token)
    for endpoint in URLS:
        responses.get(URLS[endpoint], json={"status": "SUCCESS"})
    transport, _ = make_transport()
    threads = [
        threading.Thread(target=transport.get, args=(ep, {}, AT)) for ep in URLS
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert token_calls(responses.mock) == 1
    assert len(data_calls(responses.mock)) == 3


@responses.activate
def test_401_refreshes_once_and_retries_once() -> None:
    add_refresh(responses.mock, "access-token-1")
    add_refresh(responses.mock, "access-token-2")
    first = [matchers.header_matcher({"Authorization": "Bearer access-token-1"})]
    second = [matchers.header_matcher({"Authorization": "Bearer access-token-2"})]
    responses.get(URLS["quotes"], status=401, json=load("error_401"), match=first)
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"), match=second)
    transport, _ = make_transport()
    assert transport.get("quotes", QUOTES, AT).ok
    assert token_calls(responses.mock) == 2
    assert_sent(responses.mock, "quotes", QUOTES, "access-token-1", "access-token-2")
    assert len(data_calls(responses.mock)) == 2


@responses.activate
def test_401_with_a_fresh_token_skips_the_minute_and_never_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    responses.post(TOKEN_URL, json={"access_token": "access-token-n", "expires_in": 1800})
    responses.get(URLS["quotes"], status=401, json=load("error_401"))
    transport, _ = make_transport()
    with caplog.at_level(logging.WARNING, logger="gexbot.schwab"):
        for minute in range(5):
            answer = transport.get("quotes", QUOTES, AT + timedelta(minutes=minute))
            with pytest.raises(DataError, match=r"HTTP 401 \(Unauthorized: Client not author"):
                check_exchange(answer)
    assert_sent(responses.mock, "quotes", QUOTES, "access-token-n")
    # One refresh and one retry per minute, never more.
    assert len(data_calls(responses.mock)) == 10
    assert token_calls(responses.mock) == 6
    hints = [m for m in caplog.messages if "freshly refreshed access token" in m]
    assert len(hints) == 1
    assert "Market Data Production" in hints[0]


@pytest.mark.parametrize(
    ("status", "fixture", "words"),
    [
        (400, "oauth_refresh_invalid", "HTTP 400 invalid_client: refresh token invalid"),
        (401, "oauth_refresh_invalid", "HTTP 401 invalid_client: refresh token invalid"),
        (401, "oauth_invalid_client", "check SCHWAB_APP_KEY and SCHWAB_APP_SECRET"),
    ],
)
@responses.activate
def test_a_refused_refresh_is_an_auth_error_once_and_for_all(
    status: int, fixture: str, words: str
) -> None:
    add_refresh(responses.mock, "unused", status=status, body=load(fixture))
    transport, _ = make_transport()
    with pytest.raises(AuthError) as info:
        transport.get("quotes", QUOTES, AT)
    message = str(info.value)
    assert words in message
    assert "\n" not in message
    assert "tokenDigest" not in message
    for secret in (KEY, SECRET, REFRESH):
        assert secret not in message
    if fixture != "oauth_invalid_client":
        assert "python -m gexbot.auth" in message
        assert "issued 2 d 0 h ago" in message
    with pytest.raises(AuthError):
        transport.get("chains", {}, AT + timedelta(minutes=1))
    assert token_calls(responses.mock) == 1
    assert not data_calls(responses.mock)


@responses.activate
def test_an_unreachable_token_endpoint_keeps_the_current_token_then_skips() -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    transport, _ = make_transport()
    transport.get("quotes", QUOTES, AT)
    responses.mock.replace(responses.POST, TOKEN_URL, status=503, body="<html>Access Denied</html>")
    due = AT + timedelta(minutes=28, seconds=30)
    assert transport.get("quotes", QUOTES, due).ok  # still valid for 90 s
    assert transport.get("quotes", QUOTES, due + timedelta(seconds=10)).ok  # no second try yet
    assert token_calls(responses.mock) == 2
    expired = AT + timedelta(minutes=31)
    answer = transport.get("quotes", QUOTES, expired)
    assert answer.status is None
    assert answer.error == "no access token: Schwab token endpoint: HTTP 503"
    with pytest.raises(TransientError) as info:
        check_exchange(answer)
    assert info.value.kind == "connection"
    responses.mock.replace(
        responses.POST, TOKEN_URL, json={"access_token": "access-token-b", "expires_in": 60}
    )
    assert transport.get("quotes", QUOTES, expired + timedelta(minutes=1)).ok


@responses.activate
def test_a_token_answer_nested_beyond_the_stack_is_no_token() -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    transport, _ = make_transport()
    transport.get("quotes", QUOTES, AT)
    responses.mock.replace(responses.POST, TOKEN_URL, body="[" * 100_000 + "]" * 100_000,
                           content_type="application/json")
    answer = transport.get("quotes", QUOTES, AT + timedelta(minutes=31))
    assert answer.status is None
    assert answer.error == (
        "no access token: Schwab token endpoint: HTTP 200 without a JSON object"
    )


@responses.activate
def test_429_with_a_short_retry_after_waits_and_retries_once() -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], status=429, json=load("error_429"), headers={"Retry-After": "5"})
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    transport, clock = make_transport()
    assert transport.get("quotes", QUOTES, AT).ok
    assert clock.sleeps == [5.0]
    assert_sent(responses.mock, "quotes", QUOTES, "access-token-1")


@responses.activate
def test_429_twice_gives_up_and_pauses_requests() -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], status=429, json=load("error_429"), headers={"Retry-After": "2"})
    transport, clock = make_transport()
    answer = transport.get("quotes", QUOTES, AT)
    assert (answer.status, clock.sleeps, len(data_calls(responses.mock))) == (429, [2.0], 2)
    assert_sent(responses.mock, "quotes", QUOTES, "access-token-1")
    with pytest.raises(TransientError) as info:
        check_exchange(answer)
    assert info.value.kind == "rate_limited"


@responses.activate
def test_429_with_a_long_retry_after_holds_every_request_until_it_passes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], status=429, json=load("error_429"), headers={"Retry-After": "90"})
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    transport, clock = make_transport()
    assert transport.get("quotes", QUOTES, AT).status == 429
    held = transport.get("quotes", QUOTES, AT + timedelta(seconds=60))
    assert held.status is None
    assert held.error == "rate limited: no request to Schwab before 09:37:30"
    with pytest.raises(TransientError, match=r"\(not sent\)") as info:
        check_exchange(held)
    assert info.value.kind == "rate_limited"
    assert len(data_calls(responses.mock)) == 1
    assert clock.sleeps == []
    assert transport.get("quotes", QUOTES, AT + timedelta(seconds=91)).ok
    assert "HTTP 429 from Schwab, 1 requests in the last 60 s (limit 120/min)" in caplog.text
    assert_sent(responses.mock, "quotes", QUOTES, "access-token-1")


@responses.activate
def test_429_without_retry_after_skips_the_rest_of_the_minute() -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["chains"], status=429, body="")
    responses.get(URLS["chains"], json=load("chains_spx"))
    transport, clock = make_transport()
    minute = AT.replace(second=5)
    assert transport.get("chains", CHAINS, minute).status == 429
    assert transport.get("chains", CHAINS, minute.replace(second=40)).error is not None
    assert len(data_calls(responses.mock)) == 1
    assert clock.sleeps == []
    assert transport.get("chains", CHAINS, AT + timedelta(minutes=1)).ok
    assert_sent(responses.mock, "chains", CHAINS, "access-token-1")


@responses.activate
def test_429_retry_after_as_an_http_date() -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], status=429, headers={
        "Retry-After": "Tue, 17 Nov 2026 14:36:08 GMT", "Date": "Tue, 17 Nov 2026 14:36:00 GMT"})
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))  # fmt: skip
    transport, clock = make_transport()
    assert transport.get("quotes", QUOTES, AT).ok
    assert clock.sleeps == [8.0]
    assert_sent(responses.mock, "quotes", QUOTES, "access-token-1")


@responses.activate
def test_5xx_is_retried_with_doubling_pauses() -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["chains"], status=500, json=load("error_500"))
    responses.get(URLS["chains"], status=502, json=load("error_gateway_fault"))
    responses.get(URLS["chains"], json=load("chains_spx"))
    transport, clock = make_transport()
    assert transport.get("chains", CHAINS, AT).ok
    assert clock.sleeps == [0.5, 1.0]
    assert_sent(responses.mock, "chains", CHAINS, "access-token-1")


@responses.activate
def test_5xx_on_every_try_fails_the_minute() -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["chains"], status=502, json=load("error_gateway_fault"))
    transport, clock = make_transport()
    answer = transport.get("chains", CHAINS, AT)
    assert len(data_calls(responses.mock)) == ATTEMPTS
    assert clock.sleeps == [0.5, 1.0]
    with pytest.raises(TransientError) as info:
        check_exchange(answer)
    assert (info.value.kind, str(info.value)) == (
        "server_error",
        "chains: HTTP 502 (Body buffer overflow: protocol.http.TooBigBody)",
    )
    assert_sent(responses.mock, "chains", CHAINS, "access-token-1")


@pytest.mark.parametrize(
    ("failure", "kind", "error"),
    [
        (requests.exceptions.ReadTimeout("read timed out"), "timeout", "timeout after 10 s"),
        (requests.exceptions.ConnectTimeout("connect"), "timeout", "timeout after 10 s"),
        (requests.exceptions.ConnectionError("refused"), "connection",
         "connection error (ConnectionError)"),
        (requests.exceptions.ChunkedEncodingError("cut"), "connection",
         "connection error (ChunkedEncodingError)"),
    ],
)  # fmt: skip
@responses.activate
def test_timeouts_and_connection_errors_are_retried_then_fail_the_minute(
    failure: Exception, kind: str, error: str
) -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["pricehistory"], body=failure)
    transport, _ = make_transport()
    answer = transport.get("pricehistory", HISTORY, AT)
    assert (answer.status, answer.body, answer.error) == (None, None, error)
    assert len(data_calls(responses.mock)) == ATTEMPTS
    with pytest.raises(TransientError) as info:
        check_exchange(answer)
    assert info.value.kind == kind
    assert_sent(responses.mock, "pricehistory", HISTORY, "access-token-1")


@responses.activate
def test_a_timeout_then_an_answer_recovers_the_minute() -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["pricehistory"], body=requests.exceptions.ReadTimeout("slow"))
    responses.get(URLS["pricehistory"], json=load("pricehistory_spx"))
    transport, clock = make_transport()
    assert transport.get("pricehistory", HISTORY, AT).ok
    assert clock.sleeps == [0.5]
    assert_sent(responses.mock, "pricehistory", HISTORY, "access-token-1")


@responses.activate
def test_retries_stop_at_the_minute_budget() -> None:
    clock = FakeTime()

    def slow_failure(_request: object) -> tuple[int, dict[str, str], str]:
        clock.now += 15.0  # as if each try ran into its timeout
        return 503, {}, ""

    add_refresh(responses.mock, "access-token-1")
    responses.add_callback(responses.GET, URLS["chains"], callback=slow_failure)
    transport, _ = make_transport(clock=clock)
    assert transport.get("chains", CHAINS, AT).status == 503
    # 15 s + 0.5 s pause + a 13 s try fits in 40 s; 30.5 s + 1 s + 13 s does not.
    assert len(data_calls(responses.mock)) == 2
    assert clock.sleeps == [0.5]
    assert_sent(responses.mock, "chains", CHAINS, "access-token-1")


TRUNCATED = (FIXTURES / "pricehistory_truncated.txt").read_text()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (TRUNCATED, "bad JSON: "),
        ("", "empty body"),
        ("<html>Whitelabel Error Page</html>", "bad JSON: Expecting value"),
        ("[" * 100_000 + "]" * 100_000, "bad JSON: nested too deeply to read"),
    ],
)
@responses.activate
def test_malformed_or_truncated_json_fails_the_minute_without_retry(text: str, error: str) -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["pricehistory"], body=text, content_type="application/json")
    transport, clock = make_transport()
    answer = transport.get("pricehistory", HISTORY, AT)
    assert (answer.status, answer.body) == (200, None)
    assert answer.error is not None
    assert answer.error.startswith(error)
    assert len(data_calls(responses.mock)) == 1
    assert clock.sleeps == []
    with pytest.raises(DataError) as info:
        check_exchange(answer)
    assert info.value.kind == "bad_json"
    assert_sent(responses.mock, "pricehistory", HISTORY, "access-token-1")


@responses.activate
def test_other_client_errors_are_not_retried() -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], status=400, json={"errors": [{
        "id": "x", "status": "400", "title": "Bad Request", "detail": "valid fields should be"
        " any of all,fundamental,reference,extended,quote,regular or empty value"}]})  # fmt: skip
    transport, _ = make_transport()
    with pytest.raises(DataError) as info:
        check_exchange(transport.get("quotes", QUOTES, AT))
    assert info.value.kind == "http_400"
    assert len(data_calls(responses.mock)) == 1
    assert_sent(responses.mock, "quotes", QUOTES, "access-token-1")


@responses.activate
def test_the_rate_window_warns_near_the_limit_and_holds_at_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    transport, _ = make_transport()
    for n in range(RATE_LIMIT):
        assert transport.get("quotes", QUOTES, AT + timedelta(milliseconds=100 * n)).ok
    assert caplog.text.count("close to the limit of 120 a minute") == 1
    assert transport.requests_last_minute(AT + timedelta(seconds=12)) == RATE_LIMIT
    held = transport.get("quotes", QUOTES, AT + timedelta(seconds=13))
    assert held.error == "rate limited: 120 requests in the last 60 s, Schwab's limit"
    assert len(data_calls(responses.mock)) == RATE_LIMIT
    assert transport.get("quotes", QUOTES, AT + timedelta(seconds=61)).ok


def test_base_is_schwab_by_default() -> None:
    transport, _ = make_transport()
    assert repr(transport) == f"SchwabTransport({BASE})"
