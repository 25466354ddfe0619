"""The environment of a command, read once: `./.env` (or `--env-file`) under the process's own.

Every command that may need credentials (the daemon, `auth`, `train_hmm`, `reconcile`) reads its
environment here, at start, into one frozen `Environment` that it passes down; nothing else reads
`os.environ` or a `.env` file. The rules, and why:

- The `.env` file is `./.env` in the working directory, where the README's setup puts it, or the
  file `--env-file` names; never a file found by searching parent folders, because whoever can
  write a `.env` in any folder above the installation could otherwise send the credentials to a
  server of their choosing (`GEXBOT_SCHWAB_BASE_URL`).
- The process environment wins over the file (a variable set there, even empty, is kept), as
  Docker's `env_file` and a shell's `export` expect.
- Only gexbot's own variables (`SCHWAB_*`, `GEXBOT_*`, `DISCORD_*`) are taken, from both
  sources; the file never changes the process environment, so it cannot set `HTTPS_PROXY` or
  `REQUESTS_CA_BUNDLE` for the HTTP client either. Other names in the file are listed in
  `ignored` so that the command can say so.
- Values are read literally: no `${VAR}` expansion (a `$` in a secret stays a `$`).
- The secrets are checked here (`Secrets.from_env`): one too short to be real is refused.
"""

from __future__ import annotations

import argparse
import io
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from dotenv import dotenv_values

from gexbot.errors import ConfigError
from gexbot.settings import Secrets

ENV_FILE = ".env"
PREFIXES = ("SCHWAB_", "GEXBOT_", "DISCORD_")
MAX_ENV_FILE_BYTES = 1 << 20
"""A `.env` file is a few hundred bytes; a larger one is something else given by mistake."""


@dataclass(frozen=True, slots=True, eq=False)
class Environment(Mapping[str, str]):
    """gexbot's variables, from the process environment over the `.env` file; read-only.

    A mapping of variable names to values (so the settings readers take it as they take a
    plain dict in tests), plus where the values came from and the checked secrets. `repr`
    names the variables, never their values.
    """

    variables: Mapping[str, str]
    env_file: Path | None = None
    """The `.env` file read (None when there was none)."""
    ignored: tuple[str, ...] = ()
    """Names in the file that are not gexbot's, left out."""
    secrets: Secrets = field(default_factory=Secrets)

    def __getitem__(self, name: str) -> str:
        return self.variables[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.variables)

    def __len__(self) -> int:
        return len(self.variables)

    def __repr__(self) -> str:
        return f"Environment({sorted(self.variables)}, env_file={self.env_file})"


def add_env_file_argument(parser: argparse.ArgumentParser) -> None:
    """`--env-file`, the same on every command that reads credentials."""
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="read settings and secrets from PATH instead of ./.env (the process environment"
        " still wins)",
    )


def is_ours(name: str) -> bool:
    """True for the variables gexbot reads."""
    return name.startswith(PREFIXES)


def load_environment(
    env_file: Path | None = None,
    *,
    process: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Environment:
    """Read `env_file` (default `./.env` of `cwd`, if there is one) under `process`.

    `process` defaults to `os.environ` and `cwd` to the working directory. A file named by
    `env_file` must exist; every problem with a file is one `ConfigError` naming it.
    """
    source = os.environ if process is None else process
    path = env_file if env_file is not None else (cwd or Path.cwd()) / ENV_FILE
    from_file = _read(path, required=env_file is not None)
    ignored = tuple(sorted(name for name in from_file if not is_ours(name)))
    merged = {name: value for name, value in from_file.items() if is_ours(name)}
    merged.update({name: value for name, value in source.items() if is_ours(name)})
    return Environment(
        variables=MappingProxyType(merged),
        env_file=path if from_file or path.is_file() else None,
        ignored=ignored,
        secrets=Secrets.from_env(merged),
    )


def _read(path: Path, *, required: bool) -> dict[str, str]:
    """The variables a `.env` file sets (a name without a value is left out)."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            # Opening a FIFO waits for a writer, and no stop signal ends that wait.
            raise ConfigError(f"{path}: a pipe or socket, not a .env file")
        with path.open("rb") as handle:
            data = handle.read(MAX_ENV_FILE_BYTES + 1)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"--env-file {path}: no such file") from None
        return {}
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a .env file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the .env file ({exc.strerror})") from None
    if len(data) > MAX_ENV_FILE_BYTES:
        raise ConfigError(f"{path}: over 1 MB, not a .env file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text, not a .env file") from None
    if "\0" in text:
        raise ConfigError(f"{path}: holds NUL bytes, not a .env file")
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {name: value for name, value in values.items() if value is not None}
