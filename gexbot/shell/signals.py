"""Stop signals, handled from the first instant of a command.

SIGINT (Ctrl-C), SIGTERM (`docker stop`) and SIGHUP (a closed terminal or ssh session) all ask
the daemon to finish its minute, flush and exit 0; a second one stops it at once. Starting the
daemon imports pandas, DuckDB and the exchange calendars, about a second in which Python's
default action would kill it without a word (SIGTERM, SIGHUP): so the handlers go in before
those imports, and a request received then is carried to the run and said once logging is up.
This module imports nothing heavy for that reason.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequest:
    """A stop asked for by a signal: the event the loop watches, and which signal asked."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None
        self._announce: Callable[[str], object] | None = None

    def install(self, announce: Callable[[str], object] | None = None) -> None:
        """Handle the stop signals from now on; `announce` says which one came (also one that
        came before it was given)."""
        self._announce = announce
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)
        if announce is not None and self.signal_name is not None:
            announce(self.signal_name)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        self.event.set()
        if self._announce is not None:
            self._announce(self.signal_name)


_early: StopRequest | None = None


def install_early() -> None:
    """Handle the stop signals before a command's heavy imports (its `__main__` calls this)."""
    global _early
    _early = StopRequest()
    _early.install()


def stop_request() -> StopRequest:
    """The request installed at the process's start (handed out once), else a fresh one, with
    its handlers installed."""
    global _early
    request, _early = _early, None
    if request is None:
        request = StopRequest()
        request.install()
    return request


def interrupt_on_stop_signals() -> None:
    """For one-shot commands: SIGTERM and SIGHUP interrupt like Ctrl-C, so cleanups run."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    for sig in STOP_SIGNALS:
        signal.signal(sig, interrupt)


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold the stop signals back while child processes are started, then deliver any that came.

    Ctrl-C reaches the whole process group: a child that gets it before it has set itself up
    prints a traceback, and a parent interrupted between starting children and the code that
    stops them leaves them running. A child started in here begins with the signals blocked.
    """
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
