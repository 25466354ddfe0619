"""Log setup: readable lines for people, JSON lines for log shippers, secrets never shown.

Every line goes to stdout (what `docker logs` shows). A `Redactor` filter sits on the handler and
rewrites each record before any formatter sees it, so a secret in a message, in its arguments, in
a structured extra or in a traceback comes out as ``***``. Secrets learnt at run time (a fresh
access token) are registered with `Redactor.add`.

Text lines read ``2026-11-20 10:31:00 WARNING message``: the time in New York, the level only
when it is not INFO; a control character in a message is written as an escape, so no input can
forge a line. A record carrying an ``event_at`` extra is an event line whose message
already starts with its own (possibly simulated) minute, so no wall-clock time is put before it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from gexbot.cli import escape_controls
from gexbot.core.session import EASTERN
from gexbot.errors import ConfigError
from gexbot.redaction import Masker

LEVEL_ENV = "GEXBOT_LOG_LEVEL"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EVENT_AT = "event_at"

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
) | {"message", "asctime", "taskName"}


class Redactor(logging.Filter):
    """A logging filter that replaces every registered secret, in any spelling, with ``***``.

    It rewrites the record in place (message with arguments merged, exception and stack text,
    string extras), so every handler and formatter after it sees only the redacted record.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.masker = Masker(secrets)

    def add(self, secret: str | None) -> None:
        """Register one more secret (and its spellings, see `gexbot.redaction`)."""
        self.masker.add(secret)

    def redact(self, text: str) -> str:
        """`text` with every registered secret replaced by ``***``."""
        return self.masker.mask(text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        if not self.masker.active:
            return True
        try:
            message = record.getMessage()
        except Exception:
            # A malformed call: logging would print msg and args raw in its error report.
            message = f"{record.msg} {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


class TextFormatter(logging.Formatter):
    """``YYYY-MM-DD HH:MM:SS [LEVEL ]message`` in New York time; event lines bring their own."""

    def format(self, record: logging.LogRecord) -> str:
        """One human line (plus the traceback, when there is one)."""
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        if getattr(record, EVENT_AT, None) is not None:
            head = level
        else:
            at = datetime.fromtimestamp(record.created, EASTERN)
            head = f"{at:%Y-%m-%d %H:%M:%S} {level}"
        text = head + escape_controls(record.getMessage())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC), level, logger, msg, any extras, exc when raised."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single-line JSON object."""
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in payload:
                payload[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exc"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class _GexbotHandler(logging.StreamHandler[TextIO]):
    """Marks the handler `setup_logging` installed, so a second call replaces it."""


def resolve_level(level: str | None, env: Mapping[str, str]) -> int:
    """The log level from the argument, else GEXBOT_LOG_LEVEL in `env`, else INFO; ConfigError
    if bad."""
    if level is not None:
        text, origin = level, "--log-level"
    else:
        text, origin = env.get(LEVEL_ENV, "").strip() or "INFO", LEVEL_ENV
    name = text.strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in LEVELS:
        raise ConfigError(f"{origin}: unknown log level {text!r} (use one of {', '.join(LEVELS)})")
    return logging.getLevelNamesMapping()[name]


def setup_logging(
    level: str | None,
    fmt: Literal["text", "json"],
    secrets: Iterable[str],
    *,
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> Redactor:
    """Send every log record to stdout in `fmt`, redacting `secrets`; returns the redactor.

    The level is `level`, else `GEXBOT_LOG_LEVEL` in `env` (the command's `Environment`), else
    INFO.
    The redactor also goes on every other handler of the root logger (replacing one a previous
    call put there), and a second call replaces the handler the first one installed.
    """
    formatters: dict[str, logging.Formatter] = {"text": TextFormatter(), "json": JsonFormatter()}
    if fmt not in formatters:
        raise ConfigError(f"--log-format: unknown format {fmt!r} (use text or json)")
    numeric = resolve_level(level, env if env is not None else {})
    redactor = Redactor(secrets)
    handler = _GexbotHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(formatters[fmt])
    handler.addFilter(redactor)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _GexbotHandler)]:
        root.removeHandler(old)
        old.close()
    for other in root.handlers:
        for stale in [f for f in other.filters if isinstance(f, Redactor)]:
            other.removeFilter(stale)
        other.addFilter(redactor)
    root.addHandler(handler)
    root.setLevel(numeric)
    return redactor
