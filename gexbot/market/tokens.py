"""Where the Schwab tokens live: a token file shared by both daemons, or the environment.

One browser login gives one refresh token, valid for 7 days from that login (refreshing the
access token does not extend it), and the ES and NQ daemons share one Schwab app, hence one
refresh token. The token file (`GEXBOT_TOKEN_FILE`) holds the refresh token with its issue time
and the current access token with its expiry, so that

- a re-authorization (`python -m gexbot.auth`) reaches running daemons at their next refresh,
  because each refresh re-reads the file;
- the two daemons share one access token instead of refreshing in turn (a refresh by one
  process is reported to invalidate the token another process holds).

Writes are atomic (a temporary file renamed over the old one, mode 600), and refreshes are
serialized across processes by an exclusive lock on a lock file beside the token file. Without a
token file the refresh token comes from `SCHWAB_REFRESH_TOKEN` (with its issue time in
`SCHWAB_REFRESH_TOKEN_ISSUED_AT`) and access tokens live in memory only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gexbot.documents import DocumentError, load_json, read_text
from gexbot.errors import ConfigError
from gexbot.redaction import MIN_SECRET_CHARS, too_short

REFRESH_TOKEN_LIFETIME = timedelta(days=7)
"""Schwab's refresh tokens die 7 days after the browser login that issued them."""
TOKEN_FILE_ENV = "GEXBOT_TOKEN_FILE"  # noqa: S105 (a variable name)
REFRESH_TOKEN_ENV = "SCHWAB_REFRESH_TOKEN"  # noqa: S105 (a variable name)
ISSUED_AT_ENV = "SCHWAB_REFRESH_TOKEN_ISSUED_AT"
LOCK_WAIT_S = 20.0
TOKEN_FILE_LIMIT = 64 << 10
"""Bytes of the largest token file read (one is under 1 KB): a FIFO or a device is refused."""
"""How long to wait for the other daemon's refresh (bounded by its HTTP timeout) before going on."""
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9._~+/=@:-]*$")


def _aware(text: object, what: str) -> datetime | None:
    """An ISO time with a UTC offset, None when absent; ValueError naming `what` otherwise."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise ValueError(f"{what} is not a time")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{what} {text!r} has no UTC offset")
    return moment


@dataclass(frozen=True, slots=True)
class Tokens:
    """A refresh token with its issue time, and the access token obtained with it, if any.

    Times are on the clock of whoever obtained them: the wall clock for a live daemon and for
    `python -m gexbot.auth`, the simulated clock for a simulated run.
    """

    refresh_token: str = field(repr=False)
    refresh_issued_at: datetime | None
    access_token: str | None = field(default=None, repr=False)
    access_obtained_at: datetime | None = None
    access_expires_at: datetime | None = None

    def __repr__(self) -> str:
        return (
            f"Tokens(refresh_token='***', refresh_issued_at={self.refresh_issued_at!r},"
            f" access_token={'None' if self.access_token is None else repr('***')},"
            f" access_expires_at={self.access_expires_at!r})"
        )

    @property
    def refresh_expires_at(self) -> datetime | None:
        """When Schwab stops accepting the refresh token (None when its issue time is unknown)."""
        issued = self.refresh_issued_at
        return None if issued is None else issued + REFRESH_TOKEN_LIFETIME

    def access_usable(self, at: datetime, margin: timedelta) -> bool:
        """True when the access token is good at `at` for `margin` more.

        A token obtained "after" `at` came from another clock (a simulated run sharing the
        file), so its times mean nothing here and it is not used.
        """
        if self.access_token is None or self.access_expires_at is None:
            return False
        obtained = self.access_obtained_at
        if obtained is not None and obtained > at + timedelta(minutes=1):
            return False
        return at + margin < self.access_expires_at

    def newer_than(self, other: Tokens) -> bool:
        """True when this refresh token comes from a later login than `other`'s."""
        mine, theirs = self.refresh_issued_at, other.refresh_issued_at
        if mine is None:
            return False
        return theirs is None or mine > theirs

    def with_access(self, token: str, obtained: datetime, expires: datetime) -> Tokens:
        """The same refresh token with a new access token."""
        return replace(
            self, access_token=token, access_obtained_at=obtained, access_expires_at=expires
        )

    def to_json(self) -> dict[str, str | None]:
        """The token file's content."""

        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "refresh_token": self.refresh_token,
            "refresh_token_issued_at": iso(self.refresh_issued_at),
            "access_token": self.access_token,
            "access_token_obtained_at": iso(self.access_obtained_at),
            "access_token_expires_at": iso(self.access_expires_at),
        }

    @classmethod
    def from_json(cls, raw: Any) -> Tokens:
        """Read the token file's content; ValueError saying what is wrong (never a value)."""
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        refresh = raw.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise ValueError("no refresh_token")
        access = raw.get("access_token")
        if access is not None and not isinstance(access, str):
            raise ValueError("access_token is not a string")
        for name, value in (("refresh_token", refresh), ("access_token", access or "")):
            if too_short(value):
                raise ValueError(f"{name} is under {MIN_SECRET_CHARS} characters, not a real token")
        return cls(
            refresh_token=refresh,
            refresh_issued_at=_aware(raw.get("refresh_token_issued_at"), "refresh_token_issued_at"),
            access_token=access or None,
            access_obtained_at=_aware(
                raw.get("access_token_obtained_at"), "access_token_obtained_at"
            ),
            access_expires_at=_aware(raw.get("access_token_expires_at"), "access_token_expires_at"),
        )


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step, readable by its owner only (mode 600).

    A reader sees the old file or the new one, never half of one: the text goes to a
    temporary file in the same folder, is flushed to disk, and is renamed over `path`. The
    temporary file is created exclusively under an unpredictable name, so a symbolic link
    planted in the folder cannot redirect the secret elsewhere; and a `path` that is itself a
    link is replaced, never written through.
    """
    folder = path.parent
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    with contextlib.suppress(OSError):
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)


class TokenFile:
    """The token file both daemons and `python -m gexbot.auth` read and write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    def read(self) -> Tokens | None:
        """The tokens in the file; None when there is no file; ConfigError when it is unusable."""
        try:
            text = read_text(self.path, TOKEN_FILE_LIMIT)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(
                f"{TOKEN_FILE_ENV} {self.path}: cannot read ({exc.strerror})"
            ) from None
        except DocumentError as exc:
            raise ConfigError(
                f"{TOKEN_FILE_ENV} {self.path}: not a token file ({exc})"
            ) from None
        try:
            return Tokens.from_json(load_json(text, strict_numbers=False))
        except ValueError as exc:
            # Neither the JSON parser's words nor a `DocumentError` quote a value.
            raise ConfigError(
                f"{TOKEN_FILE_ENV} {self.path}: not a valid token file ({exc});"
                " run python -m gexbot.auth to write a new one"
            ) from None

    def write(self, tokens: Tokens) -> None:
        """Replace the file with `tokens` (atomic, mode 600)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(tokens.to_json(), indent=2) + "\n")

    @contextlib.contextmanager
    def locked(self, wait_s: float = LOCK_WAIT_S) -> Iterator[bool]:
        """Hold the cross-process refresh lock; yields False when it could not be had in time.

        The lock is on a separate file because the token file itself is replaced by a rename.
        Going on without it is safe (at worst both daemons refresh), waiting forever is not; so
        is a lock file that cannot be opened (a symbolic link there is never followed).
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(
                self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
        except OSError:
            yield False
            return
        try:
            deadline = time.monotonic() + wait_s
            held = False
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(0.05)
            try:
                yield held
            finally:
                if held:
                    fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)


def token_file_path(environ: Mapping[str, str]) -> Path | None:
    """The token file named by `GEXBOT_TOKEN_FILE`, None when unset."""
    value = environ.get(TOKEN_FILE_ENV, "").strip()
    return Path(value).expanduser() if value else None


def env_tokens(environ: Mapping[str, str]) -> Tokens | None:
    """The refresh token (and its issue time) from the environment, None when unset."""
    refresh = environ.get(REFRESH_TOKEN_ENV, "").strip()
    if not refresh:
        return None
    if too_short(refresh):
        raise ConfigError(
            f"{REFRESH_TOKEN_ENV} has {len(refresh)} characters, too few for a real token (at"
            f" least {MIN_SECRET_CHARS}): run python -m gexbot.auth"
        )
    raw = environ.get(ISSUED_AT_ENV, "").strip()
    try:
        issued = _aware(raw, ISSUED_AT_ENV)
    except ValueError:
        raise ConfigError(
            f"{ISSUED_AT_ENV}={raw!r} is not an ISO time with a UTC offset"
            " (e.g. 2026-11-30T14:05:00+00:00)"
        ) from None
    return Tokens(refresh_token=refresh, refresh_issued_at=issued)


def pick_tokens(from_file: Tokens | None, from_env: Tokens | None) -> Tokens | None:
    """The refresh token to use: the one from the later login; the file's on a tie."""
    if from_file is None or from_env is None:
        return from_file or from_env
    return from_env if from_env.newer_than(from_file) else from_file


def describe_span(span: timedelta) -> str:
    """A duration for people: ``6 d 23 h``, ``5 h 12 min``, ``40 s``."""
    seconds = int(abs(span.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


def _env_line(name: str, value: str) -> str:
    if _PLAIN_VALUE.match(value):
        return f"{name}={value}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"'


def update_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Set `values` in a `.env` file, keeping every other line; atomic, mode 600.

    A line ``NAME=...`` (or ``export NAME=...``) is replaced in place; names not yet in the
    file are appended.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    pending = dict(values)
    kept: list[str] = []
    for line in lines:
        match = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        name = match.group(1) if match else None
        if name is not None and name in values:
            if name in pending:
                kept.append(_env_line(name, pending.pop(name)))
            continue
        kept.append(line)
    kept.extend(_env_line(name, value) for name, value in pending.items())
    atomic_write(path, "\n".join(kept) + "\n")
