"""Tokens: the shared token file, re-authorization, expiry warnings, configuration, secrets."""

from __future__ import annotations

import json
import logging
import stat
from datetime import timedelta
from pathlib import Path

import pytest
import responses
from responses import matchers
from schwab_helpers import (
    AT,
    KEY,
    QUOTES,
    REFRESH,
    SECRET,
    URLS,
    add_refresh,
    data_calls,
    environ,
    load,
    make_transport,
    token_calls,
)

from gexbot.errors import AuthError, ConfigError
from gexbot.market.schwab_config import SchwabConfig
from gexbot.market.tokens import TokenFile, Tokens, update_env_file

NEW_REFRESH = "test-refresh-after-login-8Hq"


def _file_env(path: Path, **changes: str | None) -> dict[str, str]:
    return environ(GEXBOT_TOKEN_FILE=str(path), **changes)


def _write(path: Path, refresh: str, issued_days_ago: float, access: str | None = None) -> None:
    tokens = Tokens(refresh, AT - timedelta(days=issued_days_ago))
    if access is not None:
        tokens = tokens.with_access(access, AT - timedelta(minutes=5), AT + timedelta(minutes=25))
    TokenFile(path).write(tokens)


@responses.activate
def test_the_token_file_is_written_atomically_with_mode_600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "schwab-token.json"
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    transport, _ = make_transport(_file_env(path))
    assert transport.get("quotes", QUOTES, AT).ok
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved == {
        "refresh_token": REFRESH,
        "refresh_token_issued_at": (AT - timedelta(days=2)).isoformat(),
        "access_token": "access-token-1",
        "access_token_obtained_at": AT.isoformat(),
        "access_token_expires_at": (AT + timedelta(minutes=30)).isoformat(),
    }
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "schwab-token.json", "schwab-token.json.lock"]  # fmt: skip


def test_no_link_in_the_folder_can_redirect_the_token(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    path = tmp_path / "schwab-token.json"
    # Links where the file, its lock and the old predictable temporary name would go.
    path.symlink_to(victim)
    path.with_name(path.name + ".lock").symlink_to(tmp_path / "lock-victim")
    for pid in range(1, 40_000, 997):
        (tmp_path / f".{path.name}.{pid}.tmp").symlink_to(victim)
    file = TokenFile(path)
    with file.locked() as held:
        assert held is False  # never follows the link: goes on without the lock
        file.write(Tokens(REFRESH, AT))
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "lock-victim").exists()
    assert not path.is_symlink()  # the link itself was replaced by the token file
    assert file.read() == Tokens(REFRESH, AT)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"refresh_token": "short"}, "refresh_token is under 12 characters, not a real token"),
        ({"refresh_token": REFRESH, "access_token": "a"},
         "access_token is under 12 characters, not a real token"),
    ],
)  # fmt: skip
def test_a_token_file_with_a_token_too_short_to_be_real_is_refused(
    tmp_path: Path, content: dict[str, str], message: str
) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=message) as refused:
        SchwabConfig.from_env(_file_env(path))
    assert "short" not in str(refused.value).replace("too short", "")


@responses.activate
def test_a_reauthorization_reaches_a_running_transport_at_its_next_refresh(tmp_path: Path) -> None:
    path = tmp_path / "schwab-token.json"
    _write(path, REFRESH, issued_days_ago=6.5)
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    transport, _ = make_transport(_file_env(path, SCHWAB_REFRESH_TOKEN=None))
    transport.get("quotes", QUOTES, AT)
    _write(path, NEW_REFRESH, issued_days_ago=0)  # python -m gexbot.auth ran meanwhile
    add_refresh(responses.mock, "access-token-2", refresh=NEW_REFRESH)
    assert transport.get("quotes", QUOTES, AT + timedelta(minutes=29)).ok
    assert token_calls(responses.mock) == 2
    saved = json.loads(path.read_text())
    assert (saved["refresh_token"], saved["access_token"]) == (NEW_REFRESH, "access-token-2")


@responses.activate
def test_two_daemons_share_one_access_token_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "schwab-token.json"
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    es, _ = make_transport(_file_env(path))
    nq, _ = make_transport(_file_env(path))
    assert es.get("quotes", QUOTES, AT).ok
    assert nq.get("quotes", QUOTES, AT + timedelta(seconds=1)).ok
    assert token_calls(responses.mock) == 1
    assert [c.request.headers["Authorization"] for c in data_calls(responses.mock)] == [
        "Bearer access-token-1", "Bearer access-token-1"]  # fmt: skip


@responses.activate
def test_a_401_adopts_the_token_the_other_daemon_refreshed(tmp_path: Path) -> None:
    path = tmp_path / "schwab-token.json"
    _write(path, REFRESH, issued_days_ago=1, access="access-token-old")
    old = [matchers.header_matcher({"Authorization": "Bearer access-token-old"})]
    new = [matchers.header_matcher({"Authorization": "Bearer access-token-new"})]
    responses.get(URLS["quotes"], status=401, json=load("error_401"), match=old)
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"), match=new)
    transport, _ = make_transport(_file_env(path))
    _write(path, REFRESH, issued_days_ago=1, access="access-token-new")
    assert transport.get("quotes", QUOTES, AT).ok
    assert token_calls(responses.mock) == 0


@responses.activate
def test_a_newer_refresh_token_in_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "schwab-token.json"
    _write(path, "stale-refresh-token", issued_days_ago=6)
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    transport, _ = make_transport(_file_env(path))  # the environment's token is 2 days old
    assert transport.get("quotes", QUOTES, AT).ok
    assert json.loads(path.read_text())["refresh_token"] == REFRESH


@responses.activate
def test_a_token_file_broken_at_run_time_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "schwab-token.json"
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    transport, _ = make_transport(_file_env(path))
    path.write_text('{"refresh_token": ')
    assert transport.get("quotes", QUOTES, AT).ok
    assert "not a valid token file" in caplog.text


def test_a_broken_token_file_at_start_is_one_config_line(tmp_path: Path) -> None:
    path = tmp_path / "schwab-token.json"
    path.write_text(json.dumps({"refresh_token": REFRESH, "refresh_token_issued_at": "monday"}))
    with pytest.raises(ConfigError) as info:
        SchwabConfig.from_env(_file_env(path))
    assert str(info.value) == (
        f"GEXBOT_TOKEN_FILE {path}: not a valid token file (Invalid isoformat string: 'monday');"
        " run python -m gexbot.auth to write a new one"
    )
    assert REFRESH not in str(info.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"SCHWAB_APP_KEY": None}, "SCHWAB_APP_KEY is not set: live Schwab data needs"),
        ({"SCHWAB_APP_SECRET": "  "}, "SCHWAB_APP_SECRET is not set: live Schwab data needs"),
        ({"SCHWAB_REFRESH_TOKEN": None}, "SCHWAB_REFRESH_TOKEN is not set: run python -m gexbot"),
        ({"SCHWAB_REFRESH_TOKEN": None, "GEXBOT_TOKEN_FILE": "/nonexistent/t.json"},
         "SCHWAB_REFRESH_TOKEN is not set and GEXBOT_TOKEN_FILE /nonexistent/t.json does not"
         " exist"),
    ],
)  # fmt: skip
def test_missing_credentials_name_the_variable_and_the_sim_source(
    changes: dict[str, str | None], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        SchwabConfig.from_env(environ(**changes))
    text = str(info.value)
    assert text.startswith(message)
    assert text.endswith("--source sim runs without credentials")
    assert "\n" not in text


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GEXBOT_SCHWAB_BASE_URL", "https://api.schwabapi.com/marketdata/v1",
         "must be a scheme and host only"),
        ("GEXBOT_SCHWAB_BASE_URL", "http://example.com", "plain http only for 127.0.0.1"),
        ("GEXBOT_SCHWAB_BASE_URL", "ftp://127.0.0.1", "must be a scheme and host only"),
        ("GEXBOT_SCHWAB_TIMEOUT_S", "60", "must be a number of seconds from 0.01 to 30"),
        ("GEXBOT_SCHWAB_BACKOFF_S", "fast", "must be a number of seconds from 0 to 10"),
        ("SCHWAB_REFRESH_TOKEN_ISSUED_AT", "2026-11-30T14:05:00",
         "is not an ISO time with a UTC offset"),
    ],
)  # fmt: skip
def test_bad_settings_are_one_config_line(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        SchwabConfig.from_env(environ(**{name: value}))
    assert str(info.value).startswith(name)


@responses.activate
def test_expiry_is_warned_once_a_day_from_24_hours_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    issued = AT - timedelta(days=6, hours=1)
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    transport, _ = make_transport(environ(SCHWAB_REFRESH_TOKEN_ISSUED_AT=issued.isoformat()))
    alerts: list[tuple[str, str]] = []
    transport.set_alerter(lambda title, message: alerts.append((title, message)))
    for minutes in (0, 1, 60):
        transport.get("quotes", QUOTES, AT + timedelta(minutes=minutes))
    assert alerts == [(
        "Schwab refresh token expires soon",
        "the Schwab refresh token expires in 23 h 0 min (2026-11-18 08:36 EST): re-authorize"
        " with `python -m gexbot.auth` before then, or the daemons stop",
    )]  # fmt: skip
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [alerts[0][1]]
    transport.get("quotes", QUOTES, AT.replace(hour=8, minute=0) + timedelta(days=1))
    assert len(alerts) == 2
    assert alerts[1][1].startswith("the Schwab refresh token expires in 36")


@responses.activate
def test_no_warning_with_more_than_a_day_left_and_one_note_when_age_unknown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    add_refresh(responses.mock, "access-token-1")
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    alerts: list[tuple[str, str]] = []
    known, _ = make_transport()
    unknown, _ = make_transport(environ(SCHWAB_REFRESH_TOKEN_ISSUED_AT=None))
    for transport in (known, unknown):
        transport.set_alerter(lambda *alert: alerts.append(alert))
        for minutes in (0, 1):
            transport.get("quotes", QUOTES, AT + timedelta(minutes=minutes))
    assert alerts == []
    assert caplog.text.count("issue time is unknown") == 1


@responses.activate
def test_secrets_never_reach_logs_errors_or_exchanges(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    access = "test-access-Tk9+secret/x"
    add_refresh(responses.mock, access)
    responses.get(URLS["quotes"], status=401, json=load("error_401"))
    responses.get(URLS["quotes"], json=load("quotes_spx_spy"))
    responses.get(URLS["chains"], status=429, json=load("error_429"), headers={"Retry-After": "1"})
    add_refresh(responses.mock, access)
    transport, _ = make_transport()
    masked: list[str] = []
    transport.register_redactor(masked.append)
    exchanges = [
        transport.get("quotes", QUOTES, AT),
        transport.get("chains", {}, AT),
    ]
    add_refresh(responses.mock, "x", status=400, body=load("oauth_refresh_invalid"))
    with pytest.raises(AuthError) as info:
        transport.get("quotes", QUOTES, AT + timedelta(minutes=40))
    seen = " ".join([caplog.text, str(info.value), repr(transport), repr(exchanges)])
    seen += repr(SchwabConfig.from_env(environ())) + repr(Tokens(REFRESH, AT, access))
    for secret in (KEY, SECRET, REFRESH, access):
        assert secret not in seen
        assert secret in masked
    assert "Bearer" not in seen


def test_update_env_file_keeps_other_lines_and_is_private(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# my settings\nSCHWAB_APP_KEY=abc\nexport SCHWAB_REFRESH_TOKEN=old\n"
        "SCHWAB_REFRESH_TOKEN=older\nDISCORD_WEBHOOK_URL=\n"
    )
    update_env_file(env, {"SCHWAB_REFRESH_TOKEN": "new@tok", "SCHWAB_REFRESH_TOKEN_ISSUED_AT": "t"})
    assert env.read_text() == (
        "# my settings\nSCHWAB_APP_KEY=abc\nSCHWAB_REFRESH_TOKEN=new@tok\nDISCORD_WEBHOOK_URL=\n"
        "SCHWAB_REFRESH_TOKEN_ISSUED_AT=t\n"
    )
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    update_env_file(env, {"SCHWAB_REFRESH_TOKEN": 'odd "value" here'})
    assert 'SCHWAB_REFRESH_TOKEN="odd \\"value\\" here"' in env.read_text()


@pytest.mark.parametrize("name", ["SCHWAB_APP_KEY", "SCHWAB_APP_SECRET", "SCHWAB_REFRESH_TOKEN"])
def test_a_credential_too_short_to_be_real_is_one_config_line(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name} has 5 characters, too few") as refused:
        SchwabConfig.from_env(environ(**{name: "a%b+c"}))
    assert "a%b+c" not in str(refused.value)


@responses.activate
def test_a_token_answer_too_short_to_be_real_is_not_taken() -> None:
    add_refresh(responses.mock, "short")
    transport, _ = make_transport()
    answer = transport.get("quotes", QUOTES, AT)
    assert answer.error == (
        "no access token: Schwab token endpoint: HTTP 200 with a token of under 12 characters"
    )
    assert not data_calls(responses.mock)
