"""`python -m gexbot.auth` never loses the new token: destination checked first, rescue after."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import responses
from test_auth import KEY, NOW, REFRESH, SECRET, _env, _expect_exchange, _redirect, _run

import gexbot.auth
import gexbot.auth_destination
from gexbot.market.tokens import TokenFile

Setup = Callable[[Path], dict[str, str | None]]


def _token_file(make: Callable[[Path], object]) -> Setup:
    def setup(tmp: Path) -> dict[str, str | None]:
        path = tmp / "schwab-token.json"
        make(path)
        return {"GEXBOT_TOKEN_FILE": str(path)}

    return setup


def _in_missing_folder(tmp: Path) -> dict[str, str | None]:
    return {"GEXBOT_TOKEN_FILE": str(tmp / "no-such-folder" / "t.json")}


def _env_file(make: Callable[[Path], object]) -> Setup:
    def setup(tmp: Path) -> dict[str, str | None]:
        make(tmp / ".env")
        return {"GEXBOT_TOKEN_FILE": None, "--env-file": str(tmp / ".env")}

    return setup


DESTINATIONS: list[tuple[str, Setup, str]] = [
    ("token file is a folder", _token_file(Path.mkdir), "is a folder; name a file in it"),
    ("token file is a link", _token_file(lambda p: p.symlink_to(p.parent / "elsewhere")),
     "is a symbolic link"),
    ("lock file is a link", _token_file(
        lambda p: p.with_name(p.name + ".lock").symlink_to(p.parent / "victim")),
     "lock file"),
    ("token file is a fifo", _token_file(os.mkfifo), "is not a regular file"),
    ("token file is a user's notes", _token_file(lambda p: p.write_text("my notes\n")),
     "exists and is not a token file"),
    ("token file is a database", _token_file(lambda p: p.write_bytes(b"SQLite format 3\x00")),
     "exists and is not a token file"),
    ("token file is a JSON list", _token_file(lambda p: p.write_text("[1, 2]")),
     "exists and is not a token file"),
    ("folder missing", _in_missing_folder, "no-such-folder does not exist"),
    (".env is a folder", _env_file(Path.mkdir), "is a folder"),
    (".env is not text", _env_file(lambda p: p.write_bytes(b"\xff\xfe")),
     "cannot read it to add the token (not UTF-8 text)"),
]  # fmt: skip


def _run_with(tmp_path: Path, changes: dict[str, str | None]) -> tuple[int, str]:
    args = ["--env-file", changes.pop("--env-file")] if "--env-file" in changes else []  # type: ignore[list-item]
    return _run(_env(tmp_path, **changes), args)


@pytest.mark.parametrize(
    ("name", "setup", "message"), DESTINATIONS, ids=[d[0] for d in DESTINATIONS]
)
@responses.activate
def test_a_destination_that_cannot_take_the_token_is_refused_before_the_browser_step(
    tmp_path: Path, name: str, setup: Setup, message: str
) -> None:
    code, printed = _run_with(tmp_path, setup(tmp_path))
    assert code == 2, printed
    assert printed.count("\n") == 1
    assert printed.startswith("error: ")
    assert message in printed
    assert "/v1/oauth/authorize" not in printed  # no code was spent
    assert not responses.calls


@responses.activate
def test_a_folder_that_takes_no_new_file_is_refused_before_the_browser_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**_: object) -> tuple[int, str]:
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(gexbot.auth_destination.tempfile, "mkstemp", refuse)
    code, printed = _run(_env(tmp_path), [])
    assert code == 2
    assert printed == (
        f"error: GEXBOT_TOKEN_FILE {tmp_path / 'schwab-token.json'}: cannot create files in"
        f" {tmp_path} (Read-only file system); fix its permissions or name another file, before"
        " logging in\n"
    )
    assert not responses.calls


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a read-only folder")
@responses.activate
def test_a_read_only_folder_is_refused_before_the_browser_step(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, printed = _run(_env(tmp_path, GEXBOT_TOKEN_FILE=str(folder / "t.json")), [])
    finally:
        folder.chmod(0o700)
    assert code == 2
    assert "cannot create files in" in printed
    assert not responses.calls


def _fail_writes(monkeypatch: pytest.MonkeyPatch, number: int, text: str) -> None:
    def fail(*_: object, **__: object) -> None:
        raise OSError(number, text)

    monkeypatch.setattr(gexbot.auth.TokenFile, "write", fail)
    monkeypatch.setattr(gexbot.auth, "update_env_file", fail)


@pytest.mark.parametrize("to_env_file", [False, True])
@responses.activate
def test_a_token_that_cannot_be_written_after_the_code_is_spent_is_saved_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, to_env_file: bool
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    _expect_exchange()
    _fail_writes(monkeypatch, errno.ENOSPC, "No space left on device")
    env = _env(tmp_path, GEXBOT_TOKEN_FILE=None) if to_env_file else _env(tmp_path)
    code, printed = _run(env, [])
    assert code == 2
    (rescued,) = here.glob("schwab-token-rescued-*.json")
    assert rescued.name == "schwab-token-rescued-20261130T140500.json"
    destination = here / ".env" if to_env_file else tmp_path / "schwab-token.json"
    last = printed.strip().splitlines()[-1]
    move = "" if to_env_file else f", or move it to {destination}"
    assert last == (
        f"error: could not write {destination} (No space left on device); the new token is saved"
        f" in {rescued} (mode 600): set GEXBOT_TOKEN_FILE={rescued}{move}"
    )
    assert stat.S_IMODE(rescued.stat().st_mode) == 0o600
    saved = TokenFile(rescued).read()
    assert saved is not None
    assert (saved.refresh_token, saved.refresh_issued_at) == (REFRESH, NOW)
    assert json.loads(rescued.read_text())["refresh_token"] == REFRESH
    for secret in (REFRESH, SECRET):
        assert secret not in printed


@responses.activate
def test_when_no_folder_takes_the_token_the_line_says_it_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _expect_exchange()
    _fail_writes(monkeypatch, errno.EIO, "Input/output error")
    monkeypatch.setattr(gexbot.auth, "rescue_folders", lambda: [tmp_path / "gone", tmp_path / "x"])
    code, printed = _run(_env(tmp_path), [])
    assert code == 2
    assert (
        printed.strip()
        .splitlines()[-1]
        .endswith(
            "nor a copy in the working or home folder: the new token is lost; fix the folder"
            " and run python -m gexbot.auth again"
        )
    )
    assert REFRESH not in printed
    assert KEY in printed  # the authorize URL names the app key, as Schwab needs


@responses.activate
def test_a_rescue_never_overwrites_an_earlier_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    earlier = tmp_path / "schwab-token-rescued-20261130T140500.json"
    earlier.write_text("keep me")
    _expect_exchange()
    _fail_writes(monkeypatch, errno.ENOSPC, "No space left on device")
    code, printed = _run(_env(tmp_path), [])
    assert code == 2
    assert earlier.read_text() == "keep me"
    assert "schwab-token-rescued-20261130T140500-1.json (mode 600)" in printed


@pytest.mark.parametrize(
    ("paste", "message"),
    [
        (lambda p: _redirect(p).replace("&state=", "&other="), "has no state=... in it"),
        (lambda p: _redirect(p).split("&state=")[0], "has no state=... in it"),
        (lambda p: _redirect(p).replace("state=", "state=x"), "comes from another login"),
        (lambda p: _redirect(p).replace("state=", "state=").rsplit("=", 1)[0] + "=",
         "comes from another login"),
        (lambda p: f"https://127.0.0.1/?code=short&state={_redirect(p).rsplit('=', 1)[1]}",
         "too few to be Schwab's"),
    ],
)  # fmt: skip
@responses.activate
def test_a_pasted_address_without_the_state_sent_is_refused(
    tmp_path: Path, paste: Callable[[str], str], message: str
) -> None:
    code, printed = _run(_env(tmp_path), [], paste)
    assert code == 2
    last = printed.strip().splitlines()[-1]
    assert last.startswith("error: ")
    assert message in last
    assert not responses.calls
    assert not (tmp_path / "schwab-token.json").exists()


@responses.activate
def test_an_error_in_the_pasted_address_is_masked_before_it_is_cut(tmp_path: Path) -> None:
    from urllib.parse import quote

    said = "x" * 45 + SECRET  # a cut at 60 characters would go through the secret
    code, printed = _run(_env(tmp_path), [], lambda _: f"https://127.0.0.1/?error={quote(said)}")
    assert code == 3
    assert "app-secret" not in printed
    assert "(error=" + "x" * 45 + "***)" in printed
