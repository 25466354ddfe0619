"""Which market a run trades on: live Schwab, the simulated market, or recordings.

Shared by the daemon and the trainer so both read the market the same way; recording wraps
whichever source is chosen.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gexbot import __version__
from gexbot.core.hmm import HmmModel, model_from_dict, model_to_dict
from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.core.types import SessionTimes
from gexbot.errors import ConfigError, GexbotError, ModelError
from gexbot.market.sim import SimMarket
from gexbot.market.transport import ManagedTransport
from gexbot.model_io import read_model
from gexbot.settings import Preset, Secrets

if TYPE_CHECKING:
    from gexbot.market.replay import ReplayTransport

log = logging.getLogger("gexbot.sources")


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """The command-line choice of market."""

    source: str
    seed: int
    replay: Sequence[Path] | None
    record: Path | None
    model: Path | None = None
    """The HMM model file the run trades with (None: the preset's), named in recordings."""

    @property
    def live(self) -> bool:
        """True for live Schwab data (real clock, credentials)."""
        return not self.replay and self.source == "schwab"


@dataclass(frozen=True, slots=True, eq=False)
class Market:
    """The opened market: its transport, and the recordings when replaying."""

    transport: ManagedTransport
    replay: ReplayTransport | None

    def replay_sessions(self, calendar: TradingCalendar) -> list[SessionTimes]:
        """The recorded sessions, in order; days the exchange was closed are skipped (warned).

        Possibly none: a recorder left running over a holiday recorded nothing to trade.
        """
        if self.replay is None:
            raise ConfigError("no recordings to replay")
        sessions = []
        for day in self.replay.sessions():
            if calendar.is_session(day):
                sessions.append(calendar.session(day))
            else:
                log.warning("%s: the exchange was closed that day; recording skipped", day)
        return sessions


def recorded_model(replay: ReplayTransport) -> HmmModel | None:
    """The HMM model every recording names in its header, when they all name the same valid one.

    A replay trades with it by default, so that replaying a recorded day reproduces what the
    run that recorded it decided even after the shipped model was retrained. None (with the
    reason logged) when a header names none, names an invalid one, or the files disagree.
    """
    documents = [header.get("model") for header in replay.headers.values()]
    first = documents[0] if documents else None
    if not isinstance(first, dict) or any(not isinstance(d, dict) for d in documents):
        return None
    if any(document != first for document in documents[1:]):
        log.warning("the recordings name different HMM models; replaying with the preset's")
        return None
    try:
        return model_from_dict(first, source="the model named in the recordings' header")
    except ModelError as problem:
        log.warning("%s; replaying with the preset's model", problem)
        return None


def open_market(
    options: SourceOptions,
    preset: Preset,
    calendar: TradingCalendar,
    env: Mapping[str, str],
) -> Market:
    """The transport for the chosen market, wrapped in a recorder when asked.

    `env` is the command's `Environment` (a plain mapping in tests): Schwab's settings, and the
    secrets a recorder masks.
    """
    replay: ReplayTransport | None = None
    transport: ManagedTransport
    if options.replay:
        from gexbot.market.replay import ReplayTransport

        replay = ReplayTransport(options.replay)
        _check_variant(replay.variant, preset, options.replay)
        transport = replay
    elif options.source == "sim":
        transport = SimMarket(preset, calendar, options.seed)
    else:
        from gexbot.market.schwab import open_schwab

        transport = open_schwab(env)
    if options.record is not None:
        from gexbot.market.recording import RecordingTransport

        transport = RecordingTransport(
            transport,
            options.record,
            preset.variant,
            header_extra={
                "symbol": preset.symbol,
                "proxy": preset.proxy,
                "source": "replay" if options.replay else options.source,
                "seed": options.seed if options.source == "sim" else None,
                "gexbot_version": __version__,
                "preset": preset.model_dump(mode="json"),
                "model": _model_document(options.model or preset.model_file()),
            },
            session_of=lambda at: at.astimezone(EASTERN).date(),
            secrets=Secrets.from_env(env).values(),
        )
    return Market(transport=transport, replay=replay)


def _model_document(path: Path) -> dict[str, object] | None:
    """The model as its JSON document, so a replay can trade with the model the run used."""
    try:
        return model_to_dict(read_model(path))
    except GexbotError as problem:
        log.warning("recordings will not name the model: %s", problem)
        return None


def _check_variant(recorded: str, preset: Preset, paths: Sequence[Path]) -> None:
    if recorded != preset.variant:
        shown = ", ".join(str(p) for p in paths)
        raise ConfigError(
            f"{shown}: recorded for variant {recorded!r}, not {preset.variant!r};"
            f" pass --variant {recorded}"
        )
