"""Where `python -m gexbot.auth` puts a new refresh token: checked before the login, rescued after.

An authorization code works once, so once Schwab has answered the browser step is spent. The
destination (the token file, or the `.env` file) is therefore checked before the authorize URL
is printed: it must not be a folder, a symbolic link or a special file, its folder must exist
and take a new file, and a `.env` that is updated must be readable. If writing still fails
afterwards (the disk filled, a permission changed in between), the tokens go to a rescue file in
the working directory or the home folder, mode 600, in the token file's format, and the one line
says where. The token itself is never printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from gexbot.errors import ConfigError
from gexbot.market.tokens import TokenFile, Tokens, atomic_write

RESCUE_STEM = "schwab-token-rescued"
TOKEN_FILE_LIMIT = 64 * 1024
"""A token file is a few hundred bytes; a file far larger is something else."""


def check_destination(path: Path, what: str, *, lock: bool) -> None:
    """Refuse (ConfigError naming `what` and `path`) a destination a token could not reach.

    `lock` also checks the token file's lock file beside it, which the daemons share.
    """
    _check_path(path, what)
    if lock:
        _check_token_file(path, what)
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(
            f"{what} {path}: the folder {folder} does not exist; create it or name another file"
        )
    try:
        descriptor, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise ConfigError(
            f"{what} {path}: cannot create files in {folder} ({exc.strerror}); fix its"
            " permissions or name another file, before logging in"
        ) from None
    os.close(descriptor)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    if lock:
        _check_path(TokenFile(path).lock_path, f"{what} lock file")


def check_env_file_readable(path: Path) -> None:
    """An existing `.env` is rewritten keeping its other lines, so it must read as text."""
    try:
        path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{path}: cannot read it to add the token ({reason})") from None


def _check_path(path: Path, what: str) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot be checked ({exc.strerror})") from None
    if stat.S_ISLNK(mode):
        raise ConfigError(
            f"{what} {path} is a symbolic link: gexbot replaces the file by a rename and never"
            " writes through a link; name the real file"
        )
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{what} {path} is a folder; name a file in it")
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{what} {path} is not a regular file")


def _check_token_file(path: Path, what: str) -> None:
    """The token file is replaced by a rename: only an earlier token file (a JSON object, or an
    empty file) may stand there, never a file a user keeps under that name by mistake."""
    try:
        with path.open("rb") as handle:
            head = handle.read(TOKEN_FILE_LIMIT + 1)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read what is there ({exc.strerror})") from None
    try:
        document = json.loads(head) if head.strip() else {}
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict) or len(head) > TOKEN_FILE_LIMIT:
        raise ConfigError(
            f"{what} {path} exists and is not a token file; gexbot replaces only its own token"
            " file: move it away or name another file, before logging in"
        )


def rescue_folders() -> list[Path]:
    """Where a token that could not reach its destination is saved: here, else home."""
    folders = [Path.cwd()]
    with contextlib.suppress(RuntimeError, KeyError):
        folders.append(Path.home())
    return folders


def rescue(tokens: Tokens, issued: datetime, folders: Sequence[Path]) -> Path | None:
    """Save `tokens` as a token file in the first of `folders` that takes it; None if none.

    The file is new (a name with the issue time, never an existing file), mode 600.
    """
    text = json.dumps(tokens.to_json(), indent=2) + "\n"
    stamp = issued.strftime("%Y%m%dT%H%M%S")
    for folder in folders:
        for attempt in range(100):
            suffix = "" if attempt == 0 else f"-{attempt}"
            path = folder / f"{RESCUE_STEM}-{stamp}{suffix}.json"
            if path.exists() or path.is_symlink():
                continue
            try:
                atomic_write(path, text)
            except OSError:
                break
            return path
    return None
