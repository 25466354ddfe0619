"""The recording wrapper: a `Transport` that writes every market-data exchange as it passes.

It sits on the one seam all market data goes through, so what it sees is exactly what the
parser sees: the endpoint, the query parameters, the status, the decoded body and the
transport's error words. Token requests happen inside the Schwab transport and never cross
this seam; headers are not part of an `Exchange`. As a second guard, every secret the process
knows (from the environment, and each token the live transport registers as it gets one) is
masked in a line before it is written, in every spelling (`gexbot.redaction`): a secret holding
a quote or a backslash is JSON-escaped in the line.

A recorder never stops the daemon: if its disk fails it says so once and trading goes on.
While it writes a day's file it holds a lock on it, so that a second recorder of the same day
(another daemon given the same folder) leaves the file alone instead of cutting its lines.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from gexbot.core.session import EASTERN
from gexbot.documents import load_json
from gexbot.errors import ConfigError
from gexbot.market import recfile
from gexbot.market.refusal import RefusalWait, WaitListener
from gexbot.market.transport import (
    ENDPOINTS,
    Alert,
    Endpoint,
    Exchange,
    ManagedTransport,
    SecretListener,
    Transport,
)
from gexbot.redaction import Masker

log = logging.getLogger("gexbot.recording")


def eastern_date(at: datetime) -> date:
    """The New York calendar date of a clock time: which session day a request belongs to."""
    return at.astimezone(EASTERN).date()


def encode_at(at: datetime) -> str:
    """A clock time as the format wants it: New York time, milliseconds, UTC offset."""
    if at.tzinfo is None:
        raise ValueError("a recorded clock time must be timezone-aware")
    return at.astimezone(EASTERN).isoformat(timespec="milliseconds")


def exchange_line(exchange: Exchange, at: datetime, params: Mapping[str, str]) -> dict[str, Any]:
    """The JSON object of one exchange line, keys in the format's order."""
    return {
        "at": encode_at(at),
        "endpoint": exchange.endpoint,
        "params": dict(params),
        "status": exchange.status,
        "body": exchange.body,
        "error": exchange.error,
    }


class RecordingTransport(ManagedTransport):
    """Answers through `transport` and appends each exchange to DIR/<variant>/<day>.jsonl.gz.

    Parameters
    ----------
    directory : the recordings folder; a file per session day goes in its `variant` subfolder.
    header_extra : more header keys (the preset, the gexbot version, the source).
    session_of : the session day a clock time belongs to (New York date by default).
    secrets : values that must never reach a file; masked if they ever appear in a line.
    """

    def __init__(
        self,
        transport: Transport,
        directory: Path,
        variant: str,
        header_extra: Mapping[str, Any] | None = None,
        session_of: Callable[[datetime], date] = eastern_date,
        secrets: Iterable[str] = (),
    ) -> None:
        self.transport = transport
        self.directory = Path(directory)
        self.variant = variant
        self._extra = dict(header_extra or {})
        self._session_of = session_of
        self._masker = Masker(secrets)
        self._lock = threading.Lock()
        self._day: date | None = None
        self._writer: recfile.MemberWriter | None = None
        self._held: int | None = None
        self._failed: set[date] = set()
        self.lines_written = 0

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        """Ask the wrapped transport, record the exchange, return it unchanged."""
        exchange = self.transport.get(endpoint, params, at)
        if endpoint not in ENDPOINTS:
            log.warning("%s: not a market-data endpoint; not recorded", endpoint)
            return exchange
        line = self._encode(exchange, at, params)
        if line is not None:
            with self._lock:
                self._write(self._session_of(at), line)
        return exchange

    @property
    def _inner(self) -> ManagedTransport | None:
        """The wrapped transport, when it has the run's hooks (a bare `get` has none)."""
        return self.transport if isinstance(self.transport, ManagedTransport) else None

    def register_redactor(self, add: SecretListener) -> None:
        """Pass the log redactor on to the wrapped transport, and learn its secrets too."""
        inner = self._inner
        if inner is None:
            return

        def both(secret: str) -> None:
            add(secret)
            self._masker.add(secret)

        inner.register_redactor(both)

    def set_alerter(self, alert: Alert | None) -> None:
        """Pass the operator-alert callback on to the wrapped transport (token expiry)."""
        inner = self._inner
        if inner is not None:
            inner.set_alerter(alert)

    def watch_refusals(self, resume: RefusalWait | None, listener: WaitListener) -> None:
        """Pass the remembered token wait and its listener on to the wrapped transport."""
        inner = self._inner
        if inner is not None:
            inner.watch_refusals(resume, listener)

    def close(self) -> None:
        """Finish the open file (gzip trailer) and close the wrapped transport."""
        with self._lock:
            self._finish()
        inner = self._inner
        if inner is not None:
            inner.close()

    def _encode(self, exchange: Exchange, at: datetime, params: Mapping[str, str]) -> bytes | None:
        try:
            text = json.dumps(exchange_line(exchange, at, params), separators=(",", ":"),
                              ensure_ascii=False)
        except (TypeError, ValueError) as problem:
            log.error("%s exchange at %s not recorded: %s", exchange.endpoint, at, problem)
            return None
        if self._masker.active:
            masked = self._masker.mask(text)
            if masked != text:
                log.warning("a secret appeared in a %s exchange; masked in the recording",
                            exchange.endpoint)
                text = masked
        return text.encode()

    def _write(self, day: date, line: bytes) -> None:
        if day in self._failed:
            return
        try:
            if day != self._day or self._writer is None:
                self._finish()
                self._writer = self._open(day)
                self._day = day
            if self._writer is not None:
                self._writer.write_line(line)
                self.lines_written += 1
        except OSError as problem:
            self._fail(day, problem)

    def _open(self, day: date) -> recfile.MemberWriter | None:
        """A writer appending to the day's file, after closing what a killed process left."""
        path = recfile.day_path(self.directory, self.variant, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._held = recfile.hold(path)
        if self._held is None:
            log.error("%s is being recorded by another process; not recording %s there", path, day)
            self._failed.add(day)
            return None
        fresh = path.stat().st_size == 0
        orphans: list[bytes] = []
        if not fresh:
            decoded = recfile.read(path)
            if not self._same_recording(path, decoded.lines[:1], day):
                self._failed.add(day)
                self._let_go()
                return None
            cut = recfile.close_open_member(path, decoded)
            if decoded.cut_at is not None:
                log.warning("%s: the last process writing it did not finish; closed it"
                            " (%d bytes cut, %d complete lines written again)", path, cut,
                            len(decoded.orphans))
            orphans = decoded.orphans
            fresh = path.stat().st_size == 0
        writer = recfile.MemberWriter(path)
        if fresh and not (orphans and recfile.is_header_line(orphans[0])):
            header = recfile.header_line(self.variant, day, self._extra)
            text = json.dumps(header, separators=(",", ":"), ensure_ascii=False)
            writer.write_line(self._masker.mask(text).encode())
        for line in orphans:
            writer.write_line(line)
        log.info("recording %s to %s", day, path)
        return writer

    def _same_recording(self, path: Path, first: list[bytes], day: date) -> bool:
        """Whether the existing file is this variant's recording of `day` (else leave it be)."""
        try:
            document = load_json(first[0], strict_numbers=False) if first else None
            header = recfile.check_header(document, path)
        except (ValueError, ConfigError) as problem:
            log.error("%s; not recording %s there", problem, day)
            return False
        if header["variant"] != self.variant or header["session"] != day.isoformat():
            log.error("%s: a recording of %s %s, not %s %s; not recording there", path,
                      header["variant"], header["session"], self.variant, day)
            return False
        return True

    def _finish(self) -> None:
        writer, self._writer, self._day = self._writer, None, None
        try:
            if writer is not None:
                writer.close()
        except OSError as problem:
            log.error("recording: could not finish a file: %s", problem.strerror)
        finally:
            self._let_go()

    def _let_go(self) -> None:
        """Release the day's file for another recorder (after the member is finished)."""
        held, self._held = self._held, None
        if held is not None:
            os.close(held)

    def _fail(self, day: date, problem: OSError) -> None:
        self._failed.add(day)
        writer, self._writer, self._day = self._writer, None, None
        if writer is not None:
            try:
                writer.close()
            except OSError:
                log.debug("recording: closing after a failure failed too")
        self._let_go()
        log.error("recording of %s stopped: %s; trading goes on without it", day,
                  problem.strerror or problem)
