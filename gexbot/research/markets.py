"""Where research reads market data: the one place that opens a market and asks it for minutes.

The market is opened as the daemon's run opens it (`gexbot.run.open_run_market`, from the
`RunPlan` of `python -m gexbot.live` over the same data): the same calendar, sessions, model and
`MarketFeed`, which makes and parses the minute's three requests. Minutes are read one by one as
the loop asks for them on a simulated clock, so a table holds what the daemon's run over the
same data would have seen.

The simulated market's snapshots are made from its numbers (`SimSnapshots`) rather than from
its JSON, which would cost most of the build; the tests hold them equal to the parser's,
minute for minute, and any minute in doubt goes through the parser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from gexbot.core.hmm import HmmModel
from gexbot.core.session import session_minutes
from gexbot.core.types import SessionTimes
from gexbot.errors import ConfigError, DataError
from gexbot.market.sim import SimMarket
from gexbot.market.sim_snapshot import SimSnapshots
from gexbot.research.fold import MinuteData
from gexbot.run.market import open_run_market
from gexbot.run.plan import RunPlan
from gexbot.settings import Preset

NO_ENVIRONMENT: dict[str, str] = {}
"""Research reads neither Schwab nor records: no setting or secret of the environment is used."""


@dataclass(frozen=True, slots=True)
class DataSpec:
    """Which sessions a table is built from: the simulated market or recordings.

    `seed`, `start` and `days` describe the simulated market's sessions; `replay` the recording
    files or folders (as `python -m gexbot.live --replay` takes them).
    """

    source: str
    seed: int = 1
    start: date | None = None
    days: int = 0
    replay: tuple[Path, ...] = field(default=())

    @classmethod
    def sim(cls, seed: int, start: date, days: int) -> DataSpec:
        """`days` simulated sessions from `start` on, market seed `seed`."""
        return cls(source="sim", seed=seed, start=start, days=days)

    @classmethod
    def recordings(cls, paths: tuple[Path, ...] | list[Path]) -> DataSpec:
        """The sessions recorded in `paths` (files or folders)."""
        return cls(source="replay", replay=tuple(Path(p) for p in paths))

    def check(self) -> None:
        """ConfigError for a spec that names no data."""
        if self.source == "sim":
            if self.start is None:
                raise ConfigError("--start is needed with --source sim (the first session)")
            if self.days < 1:
                raise ConfigError("--days must be at least 1")
            if self.seed < 0:
                raise ConfigError(f"--seed must be a non-negative integer (got {self.seed})")
        elif self.source == "replay":
            if not self.replay:
                raise ConfigError("--replay needs at least one recording file or folder")
        else:
            raise ConfigError(f"unknown data source {self.source!r} (sim or replay)")

    def describe(self) -> dict[str, Any]:
        """The spec as JSON-ready data, kept in each table so it can be rebuilt from it."""
        if self.source == "sim":
            # The seed and a table's date identify its data; which run built it does not.
            return {"source": "sim", "seed": self.seed}
        return {"source": "replay", "replay": [str(p.resolve()) for p in self.replay]}

    def plan(self, variant: str, model: Path | None = None) -> RunPlan:
        """The daemon's run over this data (`python -m gexbot.live --source sim --seed N
        --start DATE --days N`, or `--replay PATH ...`), with `model` as `--model`."""
        if self.source == "sim":
            return RunPlan(variant=variant, source="sim", seed=self.seed, start=self.start,
                           days=self.days, model=model, discord=False)
        return RunPlan(variant=variant, replay=self.replay, model=model, discord=False)


class MarketData:
    """An opened market: its sessions, each session's minutes, and what identifies its data.

    `model` is a model file to trade instead of the one the daemon would choose (`--model`).
    """

    def __init__(self, spec: DataSpec, preset: Preset, model: Path | None = None) -> None:
        spec.check()
        self.spec = spec
        self.preset = preset
        self.model_file = model
        opened = open_run_market(spec.plan(preset.variant, model), preset, NO_ENVIRONMENT)
        self.calendar = opened.calendar
        self.model: HmmModel = opened.model
        """The model the daemon's run over this data trades with (`--model`, else the
        recordings', else the preset's)."""
        self._sessions = opened.sessions
        self._market = opened.market
        self._feed = opened.feed
        transport = self._market.transport
        self._direct = (SimSnapshots(transport, self._feed, preset)
                        if isinstance(transport, SimMarket) else None)
        self._data_ids: dict[date, str] = {}

    def sessions(self) -> list[SessionTimes]:
        """The sessions of the data, oldest first, as the daemon's run trades them (recorded
        days the exchange was closed are left out with a warning; simulated days the market
        cannot make were refused when it opened)."""
        return list(self._sessions)

    def minutes(self, session: SessionTimes) -> Iterator[MinuteData]:
        """Each minute of `session` as the daemon's loop fetches it on a simulated clock."""
        for minute in session_minutes(session):
            try:
                if self._direct is not None:
                    yield minute, self._direct.snapshot(session, minute)
                else:
                    yield minute, self._feed.snapshot(session, minute, minute)
            except DataError as problem:
                yield minute, problem

    def label(self) -> str:
        """A folder name for this data: the sim seed, or a hash of the recordings' paths."""
        if self._market.replay is None:
            return f"sim-seed{self.spec.seed}"
        names = sorted(str(path.resolve()) for path in self._market.replay.headers)
        return f"replay-{hashlib.sha256(chr(10).join(names).encode()).hexdigest()[:12]}"

    def data_id(self, session: SessionTimes) -> str:
        """What identifies one session's data: the sim seed, or a hash of its recordings."""
        if self._market.replay is None:
            return f"sim seed {self.spec.seed}"
        known = self._data_ids.get(session.date)
        if known is None:
            digest = hashlib.sha256()
            for path in self._market.replay.files(session.date):
                digest.update(_file_digest(path))
            known = self._data_ids[session.date] = f"recordings sha256 {digest.hexdigest()}"
        return known


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as problem:
        raise ConfigError(f"{path}: cannot read recording ({problem.strerror})") from None
    return digest.digest()
