"""Undo what a command's `main` does to the process, so in-process runs leave no trace."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def process_state_restored() -> Iterator[None]:
    """Restore the root logger (handlers, their filters, level) and the signal handlers."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            handler.filters.clear()
        root.setLevel(level)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
