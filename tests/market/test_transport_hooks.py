"""The run's hooks on a transport: declared once, callable on every transport a run can open.

A run gives whatever transport it opened the log redactor, an alert line and the remembered
token wait, and closes it at the end, without asking what the transport supports; the recorder
passes each hook on to a transport that has them and skips one that only answers.
"""

from __future__ import annotations

import gzip
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.market.recording import RecordingTransport
from gexbot.market.refusal import RefusalWait, first_wait
from gexbot.market.sim import SimMarket
from gexbot.market.transport import Endpoint, Exchange, ManagedTransport
from gexbot.settings import load_variant
from gexbot.sources import SourceOptions, open_market

AT = datetime(2026, 11, 20, 10, 31, tzinfo=EASTERN)
LEARNT = "a-token-learnt-at-run-time-7Qx"
ENV = {"SCHWAB_APP_KEY": "hooks-app-key-Q7x2Lm", "SCHWAB_APP_SECRET": "hooks-app-secret-Zr9P",
       "SCHWAB_REFRESH_TOKEN": "hooks-refresh-token-R3f"}  # fmt: skip


class Spy(ManagedTransport):
    """A transport that supports every hook and remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.secret_listeners: list[Any] = []

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        return Exchange(at, endpoint, dict(params), 200, {"echo": LEARNT})

    def register_redactor(self, add: Any) -> None:
        self.secret_listeners.append(add)

    def set_alerter(self, alert: Any) -> None:
        self.calls.append(("alerter", alert))

    def watch_refusals(self, resume: RefusalWait | None, listener: Any) -> None:
        self.calls.append(("watch", resume))

    def close(self) -> None:
        self.calls.append(("close", None))


class AnswersOnly:
    """A transport with nothing but `get` (a test fake, a benchmark's wrapper)."""

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        return Exchange(at, endpoint, dict(params), 200, {"ok": True})


@pytest.mark.parametrize("source", ["sim", "schwab", "replay", "recorded sim"])
def test_every_transport_a_run_opens_takes_every_hook(tmp_path: Path, source: str) -> None:
    preset = load_variant("es")
    calendar = TradingCalendar(preset.calendar, 15, start=date(2026, 10, 1))
    replay = None
    if source == "replay":
        recorder = RecordingTransport(SimMarket(preset, calendar, 1), tmp_path / "rec", "es")
        recorder.get("quotes", {"symbols": "$SPX,SPY", "fields": "quote,reference"}, AT)
        recorder.close()
        replay = [tmp_path / "rec"]
    options = SourceOptions(
        source="schwab" if source == "schwab" else "sim", seed=1, replay=replay,
        record=tmp_path / "out" if source == "recorded sim" else None,
    )
    transport = open_market(options, preset, calendar, ENV).transport
    assert isinstance(transport, ManagedTransport)
    masked: list[str] = []
    alerts: list[tuple[str, str]] = []
    transport.register_redactor(masked.append)
    transport.set_alerter(lambda title, message: alerts.append((title, message)))
    transport.watch_refusals(None, lambda _wait: None)
    transport.close()
    # Only Schwab holds secrets of its own: the app key among them, told at once.
    assert (ENV["SCHWAB_APP_KEY"] in masked) == (source == "schwab")
    assert alerts == []


def test_the_recorder_passes_every_hook_on_and_learns_the_secrets(tmp_path: Path) -> None:
    inner = Spy()
    recorder = RecordingTransport(inner, tmp_path, "es")
    logged: list[str] = []
    wait = first_wait(AT - timedelta(hours=1), "refused")
    recorder.register_redactor(logged.append)
    recorder.set_alerter(None)
    recorder.watch_refusals(wait, lambda _wait: None)
    assert len(inner.secret_listeners) == 1
    inner.secret_listeners[0](LEARNT)  # the wrapped transport learns a token...
    recorder.get("quotes", {"symbols": "$SPX"}, AT)
    recorder.close()
    assert logged == [LEARNT]  # ...the log redactor hears of it...
    text = gzip.decompress((tmp_path / "es" / "2026-11-20.jsonl.gz").read_bytes()).decode()
    assert LEARNT not in text  # ...and the recording masks it
    assert inner.calls == [("alerter", None), ("watch", wait), ("close", None)]


def test_the_recorder_skips_the_hooks_of_a_transport_that_only_answers(tmp_path: Path) -> None:
    recorder = RecordingTransport(AnswersOnly(), tmp_path, "es")
    logged: list[str] = []
    recorder.register_redactor(logged.append)
    recorder.set_alerter(lambda _title, _message: None)
    recorder.watch_refusals(None, lambda _wait: None)
    recorder.get("quotes", {"symbols": "$SPX"}, AT)
    recorder.close()
    assert logged == []
    assert (tmp_path / "es" / "2026-11-20.jsonl.gz").stat().st_size > 0
