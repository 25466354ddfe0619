"""One exception tree; each branch is a reaction of the loop.

    GexbotError
    ├── ConfigError      bad preset, CLI argument or environment  -> one line, exit 2
    ├── ModelError       HMM model file missing, corrupt, invalid -> one line, exit 2
    ├── CalendarError    a date outside the exchange calendar     -> one line, exit 2
    ├── StorageError     a full disk, a read-only folder          -> one line, exit 2
    ├── AuthError        Schwab refused our credentials           -> alert once, stop (exit 3)
    ├── Interrupted      a one-shot command stopped before its end -> one line, exit 2
    └── DataError        one minute's market data is unusable     -> skip the minute
        └── TransientError  timeout, 429, 5xx after retries      -> skip the minute

Anything else is a bug: a traceback and a non-zero exit; a restart resumes from the store.
`exit_code_of` maps the tree to exit codes for every command, so the reactions live in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

EXIT_OK = 0
EXIT_BUG = 1
EXIT_CONFIG = 2
EXIT_AUTH = 3


class GexbotError(Exception):
    """Root of every error gexbot raises on purpose; its message is one line a user can act on."""

    exit_code = EXIT_BUG


class ConfigError(GexbotError):
    """A preset, CLI argument or environment variable is missing or invalid."""

    exit_code = EXIT_CONFIG


class ModelError(GexbotError):
    """The HMM model file is missing, unreadable or fails validation."""

    exit_code = EXIT_CONFIG


class CalendarError(GexbotError):
    """A date lies outside what the installed exchange calendar knows."""

    exit_code = EXIT_CONFIG


class StorageError(GexbotError):
    """The database or a file beside it cannot be written (no space left, a read-only folder).

    Nothing of the minute in hand was written; a restart once the cause is gone resumes after
    the last minute the database holds.
    """

    exit_code = EXIT_CONFIG


class AuthError(GexbotError):
    """Schwab refused the credentials (refresh token expired, revoked or wrong app key)."""

    exit_code = EXIT_AUTH


class Interrupted(GexbotError):
    """Ctrl-C (or SIGTERM, SIGHUP) stopped a one-shot command before it finished its work.

    Not exit 0: `features build && backtest` must not go on from half-built tables; the message
    says what was kept and that the same command goes on from there.
    """

    exit_code = EXIT_CONFIG


class DataError(GexbotError):
    """One minute's market data is unusable; the loop skips the minute.

    `kind` is a short stable label (e.g. ``quote_missing``, ``chain_status``) used for counting
    and metrics; the message says what was wrong in words.
    """

    def __init__(self, message: str, kind: str = "bad_data") -> None:
        super().__init__(message)
        self.kind = kind


class TransientError(DataError):
    """A request failed in a way that may heal by itself (timeout, 429, 5xx)."""


def exit_code_of(command: Callable[[], int], log: logging.Logger) -> int:
    """Run a command's body and turn what it raised into its exit code.

    A `GexbotError` is one critical line (its message says what to do) and its branch's code;
    Ctrl-C is a clean stop; anything else is a bug, logged with its traceback.
    """
    try:
        return command()
    except GexbotError as problem:
        log.critical("%s", problem)
        return problem.exit_code
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception:
        log.exception("unexpected error: this is a bug; a restart resumes from the database")
        return EXIT_BUG
