"""`python -m gexbot.auth`: authorize the Schwab app, on a server without a browser.

Schwab's refresh tokens die 7 days after the browser login that issued them, so this runs once
a week: it prints the authorize URL, the user logs in on any machine and pastes back the address
Schwab redirected to, and the code in it is exchanged at once (codes work once and expire within
about 30 seconds). The refresh token and its issue time go where the daemons read them: the token
file when `GEXBOT_TOKEN_FILE` is set (running daemons pick it up at their next refresh), else the
`.env` file (`./.env`, or `--env-file`), other lines kept. That destination is checked before the
browser step, and a token that still cannot be written is saved elsewhere, never lost or printed
(auth_destination.py). The pasted address must carry the `state` this run sent, so an address
from another login (or forged) is refused. `--status` tells the refresh token's age and time left
without showing it.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote, urlencode, urlsplit

import requests

from gexbot import __version__
from gexbot.auth_destination import (
    check_destination,
    check_env_file_readable,
    rescue,
    rescue_folders,
)
from gexbot.cli import ArgumentParser, escape_controls
from gexbot.core.session import EASTERN
from gexbot.environment import ENV_FILE, load_environment
from gexbot.errors import (
    EXIT_AUTH,
    EXIT_CONFIG,
    EXIT_OK,
    AuthError,
    ConfigError,
    GexbotError,
)
from gexbot.market.schwab_config import CONNECT_TIMEOUT_S, base_url_from_env, foreign_host_warning
from gexbot.market.token_endpoint import (
    AUTHORIZE_PATH,
    TokenEndpoint,
    TokenRefused,
    TokenUnavailable,
)
from gexbot.market.tokens import (
    ISSUED_AT_ENV,
    REFRESH_TOKEN_ENV,
    REFRESH_TOKEN_LIFETIME,
    TOKEN_FILE_ENV,
    TokenFile,
    Tokens,
    describe_span,
    env_tokens,
    pick_tokens,
    token_file_path,
    update_env_file,
)
from gexbot.redaction import MIN_SECRET_CHARS, Masker, basic_credentials, too_short
from gexbot.settings import Secrets

CALLBACK_ENV = "SCHWAB_CALLBACK_URL"
DEFAULT_CALLBACK = "https://127.0.0.1"
EXCHANGE_TIMEOUT_S = 20.0
WARN_WITHIN = timedelta(hours=24)
Clock = Callable[[], datetime]


def build_parser() -> argparse.ArgumentParser:
    """Every option of the authorization tool (`--help` lists them)."""
    parser = ArgumentParser(
        prog="python -m gexbot.auth",
        description="Authorize the Schwab app (a browser login, once every 7 days) and store the"
        " refresh token where the daemons read it.",
    )
    parser.add_argument(
        "--status",
        action="store_true",
        help="show the refresh token's age and time left (never the token) and exit",
    )
    parser.add_argument(
        "--callback-url",
        help=f"the app's callback URL, exactly as registered (default {CALLBACK_ENV} or"
        f" {DEFAULT_CALLBACK})",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help=f"read settings from PATH instead of ./.env, and write the token there when"
        f" {TOKEN_FILE_ENV} is not set",
    )
    parser.add_argument("--version", action="version", version=f"gexbot {__version__}")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    now: Clock | None = None,
    session: requests.Session | None = None,
) -> int:
    """Run the tool; the return value is the exit code (3 when Schwab refused).

    `environ` replaces the command's environment (`./.env` or `--env-file` under the process
    environment) in tests.
    """
    args = build_parser().parse_args(argv)
    out = stdout if stdout is not None else sys.stdout
    clock = now if now is not None else (lambda: datetime.now(UTC))
    try:
        if environ is None:
            environ = load_environment(args.env_file)
        else:
            Secrets.from_env(environ)
        if args.status:
            return show_status(environ, out, clock())
        return authorize(
            environ,
            callback=_callback(args.callback_url, environ),
            env_file=args.env_file,
            stdin=stdin if stdin is not None else sys.stdin,
            out=out,
            now=clock,
            session=session if session is not None else requests.Session(),
        )
    except GexbotError as problem:
        print(f"error: {escape_controls(str(problem))}", file=out)
        return problem.exit_code
    except TokenUnavailable as problem:
        # A fault of the network or of Schwab, not a bug: 2, like every other bad input.
        print(f"error: Schwab's token endpoint did not answer"
              f" ({escape_controls(str(problem))}); try again", file=out)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK


def _callback(given: str | None, environ: Mapping[str, str]) -> str:
    url = (given or environ.get(CALLBACK_ENV, "").strip() or DEFAULT_CALLBACK).strip()
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"callback URL {url!r} must be https://host[:port][/path], as registered")
    if parts.hostname == "localhost":
        raise ConfigError(f"callback URL {url!r}: Schwab rejects localhost; use 127.0.0.1")
    return url


def _credential(environ: Mapping[str, str], name: str, what: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set (environment or .env): it is the {what}")
    return value


def authorize_url(base_url: str, app_key: str, callback: str, state: str) -> str:
    """The browser address that starts Schwab's authorization-code flow."""
    query = urlencode(
        {"response_type": "code", "client_id": app_key, "redirect_uri": callback, "state": state}
    )
    return f"{base_url}{AUTHORIZE_PATH}?{query}"


def code_from(pasted: str, state: str, masker: Masker | None = None) -> str:
    """The authorization code in the pasted redirect address, decoded (``%40`` -> ``@``).

    Only percent-escapes are decoded, not ``+``: a code is not form text. The address must carry
    the `state` this run sent: without it, or with another, it is not the answer to this login.
    `masker` masks what the address says back (an error text) before it is cut and shown.
    """
    masker = masker if masker is not None else Masker()
    text = pasted.strip()
    if not text:
        raise ConfigError("nothing was pasted: run python -m gexbot.auth again")
    fields: dict[str, str] = {}
    for pair in urlsplit(text).query.split("&"):
        name, _, value = pair.partition("=")
        fields.setdefault(unquote(name), unquote(value))
    if "error" in fields:
        said = masker.clip(fields["error"], 60)
        raise AuthError(f"Schwab did not authorize the app (error={said})")
    code = fields.get("code", "")
    if not code:
        raise ConfigError(
            "the pasted address has no code=... in it: paste the whole address of the page"
            " Schwab sent the browser to"
        )
    if "state" not in fields:
        raise ConfigError(
            "the pasted address has no state=... in it, so it cannot be told from another"
            " login's: paste the whole address the browser landed on after the URL printed here"
        )
    if fields["state"] != state:
        raise ConfigError(
            "the pasted address comes from another login (its state does not match):"
            " run python -m gexbot.auth again and use the URL it prints"
        )
    if too_short(code):
        raise ConfigError(
            f"the code in the pasted address has under {MIN_SECRET_CHARS} characters, too few"
            " to be Schwab's: paste the whole address"
        )
    return code


def authorize(
    environ: Mapping[str, str],
    *,
    callback: str,
    env_file: Path | None,
    stdin: TextIO,
    out: TextIO,
    now: Clock,
    session: requests.Session,
) -> int:
    """Walk through the login, exchange the code, store the refresh token and its issue time."""
    app_key = _credential(environ, "SCHWAB_APP_KEY", "App Key of your app at developer.schwab.com")
    app_secret = _credential(environ, "SCHWAB_APP_SECRET", "Secret of your app")
    base = base_url_from_env(environ)
    destination = _destination(environ, env_file)
    warning = foreign_host_warning(base)
    if warning is not None:
        print(f"warning: {warning}", file=out)
    masker = Masker([app_key, app_secret, basic_credentials(app_key, app_secret)])
    state = secrets.token_urlsafe(16)
    print("1. Open this address in a browser, log in to Schwab and approve the accounts:", file=out)
    print(f"\n   {authorize_url(base, app_key, callback, state)}\n", file=out)
    print(
        f"2. The browser then lands on {callback}/?code=... (the page may fail to load: that is"
        " expected).\n   Paste that whole address here at once (the code expires within about"
        " 30 seconds):",
        file=out,
    )
    out.flush()
    code = code_from(stdin.readline(), state, masker)
    endpoint = TokenEndpoint(
        session, base, app_key, app_secret, (CONNECT_TIMEOUT_S, EXCHANGE_TIMEOUT_S), masker
    )
    try:
        grant = endpoint.exchange_code(code, callback)
    except TokenRefused as refused:
        if refused.bad_client:
            raise AuthError(
                f"Schwab refused the app credentials ({refused}): check SCHWAB_APP_KEY and"
                " SCHWAB_APP_SECRET"
            ) from None
        raise AuthError(
            f"Schwab refused the authorization code ({refused}): a code works once and"
            " expires within about 30 seconds, and the callback URL must match the app's"
            " exactly; run python -m gexbot.auth again and paste the address at once"
        ) from None
    if grant.refresh_token is None:
        raise AuthError("Schwab's answer held no refresh token; run python -m gexbot.auth again")
    issued = now()
    tokens = Tokens(grant.refresh_token, issued).with_access(
        grant.access_token, issued, issued + timedelta(seconds=grant.expires_in_s)
    )
    try:
        where = _store(environ, tokens, issued, destination)
    except OSError as exc:
        is_token_file = token_file_path(environ) is not None
        print(_rescued(destination, exc, tokens, issued, is_token_file), file=out)
        return EXIT_CONFIG
    expires = issued + REFRESH_TOKEN_LIFETIME
    print(
        f"\nAuthorized. The refresh token and its issue time are in {where} (mode 600);"
        f" it expires {_eastern(expires)} (7 days from now).",
        file=out,
    )
    if token_file_path(environ) is not None:
        print(
            "Running daemons pick it up at their next token refresh (within 30 minutes).", file=out
        )
    else:
        print("Restart the daemons to use it (they read .env when they start).", file=out)
    return EXIT_OK


def _destination(environ: Mapping[str, str], env_file: Path | None) -> Path:
    """Where the token goes, checked now, before the browser step spends a code."""
    path = token_file_path(environ)
    if path is not None:
        check_destination(path, TOKEN_FILE_ENV, lock=True)
        return path
    target = env_file if env_file is not None else Path(ENV_FILE).absolute()
    check_destination(target, "--env-file" if env_file is not None else ENV_FILE, lock=False)
    check_env_file_readable(target)
    return target


def _store(
    environ: Mapping[str, str], tokens: Tokens, issued: datetime, destination: Path
) -> Path:
    """Write the new tokens where the daemons read them; returns the file written."""
    if token_file_path(environ) is not None:
        file = TokenFile(destination)
        with file.locked():
            file.write(tokens)
        return destination
    update_env_file(
        destination,
        {
            REFRESH_TOKEN_ENV: tokens.refresh_token,
            ISSUED_AT_ENV: issued.isoformat(timespec="seconds"),
        },
    )
    return destination


def _rescued(
    destination: Path, problem: OSError, tokens: Tokens, issued: datetime, is_token_file: bool
) -> str:
    """Save a token its destination refused elsewhere; the one line that says where."""
    why = problem.strerror or type(problem).__name__
    saved = rescue(tokens, issued, rescue_folders())
    if saved is None:
        return (
            f"error: could not write {destination} ({why}), nor a copy in the working or home"
            " folder: the new token is lost; fix the folder and run python -m gexbot.auth again"
        )
    move = f", or move it to {destination}" if is_token_file else ""
    return (
        f"error: could not write {destination} ({why}); the new token is saved in {saved}"
        f" (mode 600): set {TOKEN_FILE_ENV}={saved}{move}"
    )


def _eastern(moment: datetime) -> str:
    return f"{moment.astimezone(EASTERN):%Y-%m-%d %H:%M %Z}"


def show_status(environ: Mapping[str, str], out: TextIO, now: datetime) -> int:
    """Print where the refresh token is, its age and time left; 3 when missing or expired."""
    path = token_file_path(environ)
    from_file = TokenFile(path).read() if path is not None else None
    tokens = pick_tokens(from_file, env_tokens(environ))
    if tokens is None:
        print(
            f"no Schwab refresh token ({REFRESH_TOKEN_ENV} or {TOKEN_FILE_ENV}): run"
            " python -m gexbot.auth",
            file=out,
        )
        return EXIT_AUTH
    source = (
        f"token file {path}"
        if tokens is from_file
        else f"{REFRESH_TOKEN_ENV} (environment or .env)"
    )
    print(f"refresh token: from {source}", file=out)
    issued, expires = tokens.refresh_issued_at, tokens.refresh_expires_at
    if issued is None or expires is None:
        print(
            f"issued:        unknown ({ISSUED_AT_ENV} not set), so its expiry cannot be told;"
            " python -m gexbot.auth records it",
            file=out,
        )
        return EXIT_OK
    left = expires - now
    print(f"issued:        {_eastern(issued)} ({describe_span(now - issued)} ago)", file=out)
    if left <= timedelta(0):
        print(
            f"expired:       {_eastern(expires)} ({describe_span(left)} ago): re-authorize"
            " with python -m gexbot.auth",
            file=out,
        )
        return EXIT_AUTH
    print(f"expires:       {_eastern(expires)} (in {describe_span(left)})", file=out)
    if left <= WARN_WITHIN:
        print("re-authorize soon with python -m gexbot.auth (less than 24 hours left)", file=out)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
