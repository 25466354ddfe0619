"""`python -m gexbot.auth`: the authorization-code flow, where tokens are written, --status."""

from __future__ import annotations

import base64
import io
import json
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers

from gexbot.auth import main

KEY = "auth-test-app-key-Jd81"
SECRET = "auth-test-app-secret-Pq02"  # noqa: S105 (a fake)
REFRESH = "auth-test-refresh-Zz7@"
ACCESS = "auth-test-access-Yy6"
TOKEN_URL = "https://api.schwabapi.com/v1/oauth/token"  # noqa: S105 (a URL)
NOW = datetime(2026, 11, 30, 14, 5, tzinfo=UTC)
BASIC = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
CODE_IN_URL = "C0.b2F1dGgy+LmJkYy%2Fx.abc%40"
CODE = "C0.b2F1dGgy+LmJkYy/x.abc@"


class Paste(io.StringIO):
    """stdin whose pasted line is made from what the tool printed so far (it holds the state)."""

    def __init__(self, out: io.StringIO, make: Callable[[str], str]) -> None:
        super().__init__()
        self._out = out
        self._make = make

    def readline(self, size: int | None = -1) -> str:
        return self._make(self._out.getvalue()) + "\n"


def _state(printed: str) -> str:
    url = next(word for word in printed.split() if "/v1/oauth/authorize?" in word)
    return parse_qs(urlsplit(url).query)["state"][0]


def _redirect(printed: str) -> str:
    return f"https://127.0.0.1/?code={CODE_IN_URL}&session=46b905a8-aa&state={_state(printed)}"


def _env(tmp_path: Path, **changes: str | None) -> dict[str, str]:
    env = {"SCHWAB_APP_KEY": KEY, "SCHWAB_APP_SECRET": SECRET}
    env["GEXBOT_TOKEN_FILE"] = str(tmp_path / "schwab-token.json")
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _run(
    env: dict[str, str], args: list[str], paste: Callable[[str], str] = _redirect
) -> tuple[int, str]:
    out = io.StringIO()
    code = main(args, environ=env, stdin=Paste(out, paste), stdout=out, now=lambda: NOW,
                session=requests.Session())  # fmt: skip
    return code, out.getvalue()


def _expect_exchange(status: int = 200, body: object = None) -> None:
    responses.post(
        TOKEN_URL,
        status=status,
        json=body if body is not None else {
            "expires_in": 1800, "token_type": "Bearer", "scope": "api",
            "refresh_token": REFRESH, "access_token": ACCESS, "id_token": "eyJ.x.y"},
        match=[
            matchers.urlencoded_params_matcher({"grant_type": "authorization_code", "code": CODE,
                                                "redirect_uri": "https://127.0.0.1"}),
            matchers.header_matcher({"Authorization": BASIC}),
        ],
    )  # fmt: skip


@responses.activate
def test_authorization_writes_the_token_file_for_running_daemons(tmp_path: Path) -> None:
    _expect_exchange()
    code, printed = _run(_env(tmp_path), [])
    assert code == 0
    authorize = next(word for word in printed.split() if "/v1/oauth/authorize?" in word)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith("https://api.schwabapi.com/v1/oauth/authorize?")
    assert {k: v[0] for k, v in query.items() if k != "state"} == {
        "response_type": "code", "client_id": KEY, "redirect_uri": "https://127.0.0.1"}  # fmt: skip
    path = tmp_path / "schwab-token.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert (saved["refresh_token"], saved["refresh_token_issued_at"]) == (REFRESH, NOW.isoformat())
    assert saved["access_token"] == ACCESS
    assert saved["access_token_expires_at"] == (NOW + timedelta(minutes=30)).isoformat()
    assert "expires 2026-12-07 09:05 EST (7 days from now)" in printed
    assert "pick it up at their next token refresh" in printed
    for secret in (SECRET, REFRESH, ACCESS, CODE):
        assert secret not in printed


@responses.activate
def test_without_a_token_file_the_env_file_is_updated_keeping_other_lines(tmp_path: Path) -> None:
    _expect_exchange()
    env_file = tmp_path / ".env"
    env_file.write_text("SCHWAB_APP_KEY=x\nSCHWAB_REFRESH_TOKEN=old-one\n# a note\n")
    code, printed = _run(_env(tmp_path, GEXBOT_TOKEN_FILE=None), ["--env-file", str(env_file)])
    assert code == 0
    assert env_file.read_text() == (
        f"SCHWAB_APP_KEY=x\nSCHWAB_REFRESH_TOKEN={REFRESH}\n# a note\n"
        "SCHWAB_REFRESH_TOKEN_ISSUED_AT=2026-11-30T14:05:00+00:00\n"
    )
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "Restart the daemons" in printed
    assert REFRESH not in printed


@pytest.mark.parametrize(
    ("paste", "exit_code", "message"),
    [
        (lambda p: _redirect(p).replace("state=", "state=x"), 2, "comes from another login"),
        (lambda _: "https://127.0.0.1/?error=access_denied", 3,
         "Schwab did not authorize the app (error=access_denied)"),
        (lambda _: "https://127.0.0.1/?session=abc", 2, "has no code=... in it"),
        (lambda _: "", 2, "nothing was pasted"),
        (lambda p: _redirect(p).replace(f"&state={_state(p)}", ""), 2,
         "the pasted address has no state=... in it"),
        (lambda p: _redirect(p).replace("state=", "state=\x1b[2J\r"), 2,
         "comes from another login"),
        (lambda _: "https://127.0.0.1/?error=\x1b[31mdenied\u2028error: forged", 3,
         "Schwab did not authorize the app (error=\\x1b[31mdenied error: forged)"),
    ],
)  # fmt: skip
@responses.activate
def test_a_bad_paste_is_one_line(
    tmp_path: Path, paste: Callable[[str], str], exit_code: int, message: str
) -> None:
    code, printed = _run(_env(tmp_path), [], paste)
    assert code == exit_code
    last = printed.strip().splitlines()[-1]
    assert last.startswith("error: ")
    assert message in last
    assert "\x1b" not in printed
    assert not responses.calls
    assert not (tmp_path / "schwab-token.json").exists()


@pytest.mark.parametrize(
    "answer",
    [{"status": 503, "body": "<html>Access Denied</html>"},
     {"body": requests.ConnectionError("connection refused")}],
    ids=["503", "no connection"],
)
@responses.activate
def test_a_token_endpoint_that_does_not_answer_is_one_line_and_exit_2(
    tmp_path: Path, answer: dict[str, object]
) -> None:
    """A fault of the network or of Schwab is bad input like any other: 2, not the 1 of a bug."""
    responses.post(TOKEN_URL, **answer)  # type: ignore[arg-type]
    code, printed = _run(_env(tmp_path), [])
    assert code == 2
    last = printed.strip().splitlines()[-1]
    assert last.startswith("error: Schwab's token endpoint did not answer")
    assert not (tmp_path / "schwab-token.json").exists()


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, {"error": "invalid_request"}, "a code works once and expires within about 30 s"),
        (401, {"error": "invalid_client", "error_description": "Unauthorized"},
         "Schwab refused the app credentials (HTTP 401 invalid_client: Unauthorized)"),
    ],
)  # fmt: skip
@responses.activate
def test_a_refused_exchange_is_an_auth_error(
    tmp_path: Path, status: int, body: object, message: str
) -> None:
    _expect_exchange(status, body)
    code, printed = _run(_env(tmp_path), [])
    assert code == 3
    assert message.replace("30 s", "30 seconds") in printed
    assert not (tmp_path / "schwab-token.json").exists()


@pytest.mark.parametrize(
    ("changes", "args", "message"),
    [
        ({"SCHWAB_APP_KEY": None}, [], "SCHWAB_APP_KEY is not set (environment or .env)"),
        ({}, ["--callback-url", "https://localhost:8182"], "Schwab rejects localhost"),
        ({"SCHWAB_CALLBACK_URL": "http://127.0.0.1"}, [], "must be https://host"),
    ],
)
def test_bad_settings_are_one_line(
    tmp_path: Path, changes: dict[str, str | None], args: list[str], message: str
) -> None:
    code, printed = _run(_env(tmp_path, **changes), args)
    assert code == 2
    assert printed.startswith("error: ")
    assert message in printed


def _status(env: dict[str, str]) -> tuple[int, str]:
    return _run(env, ["--status"])


def test_status_tells_age_and_time_left_without_the_token(tmp_path: Path) -> None:
    (tmp_path / "schwab-token.json").write_text(json.dumps({
        "refresh_token": REFRESH,
        "refresh_token_issued_at": (NOW - timedelta(days=2, hours=3)).isoformat()}))  # fmt: skip
    code, printed = _status(_env(tmp_path))
    assert code == 0
    assert printed.splitlines() == [
        f"refresh token: from token file {tmp_path / 'schwab-token.json'}",
        "issued:        2026-11-28 06:05 EST (2 d 3 h ago)",
        "expires:       2026-12-05 06:05 EST (in 4 d 21 h)",
    ]
    assert REFRESH not in printed


@pytest.mark.parametrize(
    ("age", "exit_code", "line"),
    [
        (timedelta(days=6, hours=2), 0, "re-authorize soon with python -m gexbot.auth"),
        (timedelta(days=7, minutes=1), 3, "(1 min ago): re-authorize with python -m gexbot.auth"),
    ],
)
def test_status_near_and_past_expiry(
    tmp_path: Path, age: timedelta, exit_code: int, line: str
) -> None:
    env = _env(tmp_path, GEXBOT_TOKEN_FILE=None, SCHWAB_REFRESH_TOKEN=REFRESH,
               SCHWAB_REFRESH_TOKEN_ISSUED_AT=(NOW - age).isoformat())  # fmt: skip
    code, printed = _status(env)
    assert code == exit_code
    assert line in printed
    assert "from SCHWAB_REFRESH_TOKEN (environment or .env)" in printed


def test_status_with_unknown_issue_time_or_no_token(tmp_path: Path) -> None:
    env = _env(tmp_path, SCHWAB_REFRESH_TOKEN=REFRESH)
    code, printed = _status(env)
    assert code == 0
    assert "unknown (SCHWAB_REFRESH_TOKEN_ISSUED_AT not set)" in printed
    code, printed = _status(_env(tmp_path))
    assert code == 3
    assert printed.startswith("no Schwab refresh token")
