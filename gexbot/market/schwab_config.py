"""The live transport's settings, read from the environment and checked once at start.

A missing credential is one line naming the variable (never its value) and saying that the
simulated market needs none, because that is what a new user runs into first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from gexbot.errors import ConfigError
from gexbot.market.tokens import (
    REFRESH_TOKEN_ENV,
    TOKEN_FILE_ENV,
    TokenFile,
    Tokens,
    env_tokens,
    pick_tokens,
    token_file_path,
)
from gexbot.net import is_loopback
from gexbot.settings import Secrets

DEFAULT_BASE_URL = "https://api.schwabapi.com"
BASE_URL_ENV = "GEXBOT_SCHWAB_BASE_URL"
ALLOW_FOREIGN_ENV = "GEXBOT_ALLOW_FOREIGN_BASE_URL"
SCHWAB_DOMAIN = "schwabapi.com"
TIMEOUT_ENV = "GEXBOT_SCHWAB_TIMEOUT_S"
BACKOFF_ENV = "GEXBOT_SCHWAB_BACKOFF_S"
CONNECT_TIMEOUT_S = 3.05
READ_TIMEOUT_S = 10.0
"""Per request; with retries and pauses a minute's request still ends well inside the minute."""
BACKOFF_S = 0.5
"""First pause before retrying a timeout, lost connection or 5xx; doubled each time."""
SIM_HINT = "--source sim runs without credentials"


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(
            f"{name} is not set: live Schwab data needs SCHWAB_APP_KEY, SCHWAB_APP_SECRET and a"
            f" refresh token (python -m gexbot.auth); {SIM_HINT}"
        )
    Secrets.from_env({name: value})  # one too short to be real is refused, by name
    return value


def _seconds(
    environ: Mapping[str, str], name: str, default: float, low: float, high: float
) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} must be a number of seconds from {low:g} to {high:g}")
    return value


def is_schwab_host(host: str) -> bool:
    """True for Schwab's API hosts (schwabapi.com and its subdomains)."""
    return host == SCHWAB_DOMAIN or host.endswith("." + SCHWAB_DOMAIN)


def base_url_from_env(environ: Mapping[str, str]) -> str:
    """`GEXBOT_SCHWAB_BASE_URL` checked (scheme and host only), else Schwab's host.

    The credentials and tokens go to this host, so anything but Schwab or this machine (a fake
    for tests) needs `GEXBOT_ALLOW_FOREIGN_BASE_URL=1` as well: a `.env` written by someone else
    must not be enough to send them elsewhere. `foreign_host_warning` says so once it is allowed.
    """
    raw = environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
    try:
        parts = urlsplit(raw)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise ConfigError(f"{BASE_URL_ENV}: not a URL like {DEFAULT_BASE_URL}") from None
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{BASE_URL_ENV}: a user or password has no place in the URL")
    local = is_loopback(host)
    if (
        parts.scheme not in ("https", "http")
        or not host
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or (parts.scheme == "http" and not local)
    ):
        raise ConfigError(
            f"{BASE_URL_ENV}={raw!r} must be a scheme and host only, like {DEFAULT_BASE_URL}"
            " (plain http only for 127.0.0.1)"
        )
    if not local and not is_schwab_host(host) and environ.get(ALLOW_FOREIGN_ENV, "") != "1":
        raise ConfigError(
            f"{BASE_URL_ENV} points at {host}, neither Schwab nor this machine: the app key,"
            f" secret and tokens would be sent there; set {ALLOW_FOREIGN_ENV}=1 if you mean it"
        )
    return raw.rstrip("/")


def foreign_host_warning(base_url: str) -> str | None:
    """The warning to log when the credentials go to a host that is not Schwab's nor local."""
    host = urlsplit(base_url).hostname or ""
    if is_loopback(host) or is_schwab_host(host):
        return None
    return (
        f"{BASE_URL_ENV} points at {host}, not Schwab: the app key, secret and tokens are sent"
        f" there ({ALLOW_FOREIGN_ENV}=1)"
    )


@dataclass(frozen=True, slots=True)
class SchwabConfig:
    """Everything the transport needs from the environment (secrets masked in repr)."""

    base_url: str
    app_key: str = field(repr=False)
    app_secret: str = field(repr=False)
    tokens: Tokens
    token_file: Path | None
    read_timeout_s: float = READ_TIMEOUT_S
    backoff_s: float = BACKOFF_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SchwabConfig:
        """Read and check the settings; `ConfigError` names the variable, never its value."""
        app_key = _required(environ, "SCHWAB_APP_KEY")
        app_secret = _required(environ, "SCHWAB_APP_SECRET")
        path = token_file_path(environ)
        from_file = TokenFile(path).read() if path is not None else None
        tokens = pick_tokens(from_file, env_tokens(environ))
        if tokens is None:
            where = f" and {TOKEN_FILE_ENV} {path} does not exist" if path is not None else ""
            raise ConfigError(
                f"{REFRESH_TOKEN_ENV} is not set{where}: run python -m gexbot.auth to authorize"
                f" the app; {SIM_HINT}"
            )
        return cls(
            base_url=base_url_from_env(environ),
            app_key=app_key,
            app_secret=app_secret,
            tokens=tokens,
            token_file=path,
            read_timeout_s=_seconds(environ, TIMEOUT_ENV, READ_TIMEOUT_S, 0.01, 30.0),
            backoff_s=_seconds(environ, BACKOFF_ENV, BACKOFF_S, 0.0, 10.0),
        )
