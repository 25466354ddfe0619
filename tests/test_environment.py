"""The environment, read once: `./.env` where the user stands (or `--env-file`), nothing else."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import responses
from cli_state import process_state_restored
from secret_search import HOSTILE_KEY, HOSTILE_REFRESH, HOSTILE_SECRET

from gexbot import auth, live, reconcile, train_hmm
from gexbot.environment import load_environment
from gexbot.errors import ConfigError
from gexbot.market.schwab import SchwabTransport
from gexbot.market.schwab_config import SchwabConfig, base_url_from_env
from gexbot.market.tokens import update_env_file

REPO = Path(__file__).resolve().parents[1]
KEY, SECRET, REFRESH = "env-app-key-Vd41", "env-app-secret-Kp08", "env-refresh-Zq+7/Lm@"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_dot_env_of_the_working_directory_is_read_under_the_process_environment(
    tmp_path: Path,
) -> None:
    _write(tmp_path / ".env", f"SCHWAB_APP_KEY={KEY}\nSCHWAB_APP_SECRET='{SECRET}'\n"
           "GEXBOT_LOG_LEVEL=DEBUG\nDISCORD_WEBHOOK_URL=\n")  # fmt: skip
    env = load_environment(process={"GEXBOT_LOG_LEVEL": "", "PATH": "/bin"}, cwd=tmp_path)
    assert env.env_file == tmp_path / ".env"
    assert dict(env) == {"SCHWAB_APP_KEY": KEY, "SCHWAB_APP_SECRET": SECRET,
                         "GEXBOT_LOG_LEVEL": "", "DISCORD_WEBHOOK_URL": ""}  # fmt: skip
    assert (env.secrets.app_key, env.secrets.app_secret) == (KEY, SECRET)
    assert KEY not in repr(env)
    assert SECRET not in repr(env)


def test_no_env_file_is_searched_for_in_parent_folders(tmp_path: Path) -> None:
    _write(tmp_path / ".env", "GEXBOT_SCHWAB_BASE_URL=https://evil.example\n")
    below = tmp_path / "work" / "deeper"
    below.mkdir(parents=True)
    env = load_environment(process={}, cwd=below)
    assert env.env_file is None
    assert dict(env) == {}


def test_only_gexbot_variables_are_taken_and_the_process_is_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    path = _write(
        tmp_path / "my.env",
        "HTTPS_PROXY=http://proxy.example:3128\n"
        "REQUESTS_CA_BUNDLE=/tmp/evil.pem\nSCHWAB_CALLBACK_URL=https://127.0.0.1\n",
    )
    env = load_environment(path, process={"HOME": "/root", "SCHWAB_APP_KEY": KEY})
    assert dict(env) == {"SCHWAB_CALLBACK_URL": "https://127.0.0.1", "SCHWAB_APP_KEY": KEY}
    assert env.ignored == ("HTTPS_PROXY", "REQUESTS_CA_BUNDLE")
    assert "HTTPS_PROXY" not in os.environ


@pytest.mark.parametrize("secret", [HOSTILE_KEY, HOSTILE_SECRET, HOSTILE_REFRESH, "a$HOME${PATH}b"])
def test_values_are_read_literally_and_round_trip_through_the_token_writer(
    tmp_path: Path, secret: str
) -> None:
    path = tmp_path / ".env"
    update_env_file(path, {"SCHWAB_REFRESH_TOKEN": secret, "SCHWAB_APP_KEY": KEY})
    env = load_environment(path, process={})
    assert env["SCHWAB_REFRESH_TOKEN"] == secret
    assert env.secrets.refresh_token == secret


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "--env-file {p}: no such file"),
        ("folder", "{p}: a folder, not a .env file"),
        (b"\xff\xfe=\x00", "{p}: not UTF-8 text"),
        (b"A=1\x00", "{p}: holds NUL bytes"),
        (b"#" * (2 << 20), "{p}: over 1 MB"),
        ("fifo", "{p}: a pipe or socket, not a .env file"),
    ],
)
def test_an_unusable_env_file_is_one_line(
    tmp_path: Path, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / "given.env"
    if content == "folder":
        path.mkdir()
    elif content == "fifo":
        os.mkfifo(path)  # opening it would wait for a writer forever, deaf to SIGTERM
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ConfigError) as refused:
        load_environment(path, process={})
    assert str(refused.value).startswith(message.format(p=path))


def test_a_secret_too_short_in_the_file_is_refused_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path / ".env", 'SCHWAB_APP_SECRET="x"\n')
    with pytest.raises(ConfigError, match=r"^SCHWAB_APP_SECRET has 1 characters, too few"):
        load_environment(path, process={})


@pytest.mark.parametrize(
    "url",
    ["https://api.schwabapi.com", "https://sandbox.schwabapi.com/", "http://127.0.0.1:8080",
     "http://127.0.0.2:9", "http://localhost:8080", "http://[::1]:8080"],
)  # fmt: skip
def test_schwab_and_this_machine_need_no_opt_in(url: str) -> None:
    assert base_url_from_env({"GEXBOT_SCHWAB_BASE_URL": url}) == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://evil.example", "points at evil.example, neither Schwab nor this machine"),
        ("https://api.schwabapi.com.evil.example", "points at api.schwabapi.com.evil.example"),
        ("https://notschwabapi.com", "points at notschwabapi.com"),
        ("https://10.0.0.7:8443", "points at 10.0.0.7"),
        ("https://user:pw@api.schwabapi.com", "a user or password has no place"),
        ("https://api.schwabapi.com#x", "must be a scheme and host only"),
        ("https://api.schwabapi.com:99999", "not a URL like https://api.schwabapi.com"),
    ],
)  # fmt: skip
def test_any_other_host_is_refused_without_the_opt_in(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        base_url_from_env({"GEXBOT_SCHWAB_BASE_URL": url})
    assert "pw" not in str(refused.value)


def test_the_opt_in_lets_another_host_through_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "SCHWAB_APP_KEY": KEY,
        "SCHWAB_APP_SECRET": SECRET,
        "SCHWAB_REFRESH_TOKEN": REFRESH,
        "GEXBOT_SCHWAB_BASE_URL": "https://proxy.example",
        "GEXBOT_ALLOW_FOREIGN_BASE_URL": "1",
    }
    with caplog.at_level(logging.WARNING, logger="gexbot.schwab"):
        transport = SchwabTransport(SchwabConfig.from_env(env))
    assert repr(transport) == "SchwabTransport(https://proxy.example)"
    assert caplog.messages == [
        "GEXBOT_SCHWAB_BASE_URL points at proxy.example, not Schwab: the app key, secret and"
        " tokens are sent there (GEXBOT_ALLOW_FOREIGN_BASE_URL=1)"
    ]
    for value in ("yes", "true", "0", ""):
        with pytest.raises(ConfigError, match="GEXBOT_ALLOW_FOREIGN_BASE_URL=1 if you mean it"):
            base_url_from_env({**env, "GEXBOT_ALLOW_FOREIGN_BASE_URL": value})


def _daemon(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("SCHWAB_", "GEXBOT_", "DISCORD_"))}  # fmt: skip
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, "-m", "gexbot.live", "--variant", "es", "--db", str(cwd / "x.db"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_readme_setup_reads_dot_env_where_the_daemon_is_started(tmp_path: Path) -> None:
    # Credentials from ./.env reach the daemon: what it says next is about the refresh token.
    _write(tmp_path / ".env", f"SCHWAB_APP_KEY={KEY}\nSCHWAB_APP_SECRET={SECRET}\n")
    done = _daemon(tmp_path)
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 2
    assert len(lines) == 1
    assert "SCHWAB_REFRESH_TOKEN is not set" in lines[0]
    # A .env naming a foreign server is refused before anything is sent anywhere.
    _write(
        tmp_path / ".env",
        f"SCHWAB_APP_KEY={KEY}\nSCHWAB_APP_SECRET={SECRET}\n"
        f"SCHWAB_REFRESH_TOKEN={REFRESH}\nGEXBOT_SCHWAB_BASE_URL=https://evil.example\n",
    )
    done = _daemon(tmp_path)
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 2
    assert len(lines) == 1
    assert "points at evil.example, neither Schwab nor this machine" in lines[0]
    assert not (tmp_path / "x.db").exists()
    for secret in (KEY, SECRET, REFRESH):
        assert secret not in done.stdout + done.stderr


def test_every_command_that_reads_secrets_takes_env_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "nowhere.env"
    expected = f"--env-file {missing}: no such file"
    with process_state_restored():
        assert live.main(["--variant", "es", "--source", "sim", "--env-file", str(missing)]) == 2
        assert train_hmm.main(["--variant", "es", "--source", "sim", "--env-file",
                               str(missing)]) == 2  # fmt: skip
        assert reconcile.main(["--db", str(tmp_path / "x.db"), "--replay", str(tmp_path),
                               "--env-file", str(missing)]) == 2  # fmt: skip
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [expected] * 3
    out = io.StringIO()
    with responses.RequestsMock():
        assert auth.main(["--env-file", str(missing)], stdout=out) == 2
    assert out.getvalue() == f"error: {expected}\n"
    assert "Traceback" not in capsys.readouterr().out
