"""What a run is: one frozen, typed plan that every way of starting a run fills in.

The daemon's command line, reconcile's replays, the benchmarks and the research commands all
describe the run they want as a `RunPlan` and hand it to `gexbot.run.run`, so they get the same
assembly of market, feed, clock, store, loop and sinks. The defaults are the daemon's:
`RunPlan(variant="es")` is `python -m gexbot.live --variant es`. A plan that cannot be run is
refused when it is made, in the words of the command line a user would have typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from gexbot.errors import ConfigError

SOURCES = ("schwab", "sim")
SPEEDS = (0.01, 100_000.0)
"""Multiples of real time a simulated clock may run at: slower is a stopped clock, faster is
--speed max."""


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything that decides what a run does; no object, no open file, no secret.

    Parameters
    ----------
    variant : `es` or `nq`, the shipped preset unless `preset` names a file.
    source : `schwab` (live data, credentials from the environment) or `sim`; ignored by a
        replay.
    seed : which simulated market.
    replay : recording files or folders to replay instead of a live or simulated market.
    record : a folder to record every market-data exchange in.
    start, days : the first simulated session and how many (without `start`, the `days`
        sessions ending with the last completed one); with `source="schwab"`, `start` reads
        Schwab (or a local stand-in) on a simulated clock.
    speed : None for a simulated clock as fast as it goes, else a multiple of real time.
    minutes : stop after this many session minutes.
    db : the DuckDB file (None: the default file, or a fresh one beside the recordings).
    preset, model : a preset file and an HMM model file instead of the shipped ones.
    http_port, http_host : serve /healthz and /metrics there (None: no server).
    discord : post to the webhook the environment names (a replay never does).
    """

    variant: str
    source: str = "schwab"
    seed: int = 1
    replay: tuple[Path, ...] = ()
    record: Path | None = None
    start: date | None = None
    days: int = 5
    speed: float | None = None
    minutes: int | None = None
    db: Path | None = None
    preset: Path | None = None
    model: Path | None = None
    http_port: int | None = None
    http_host: str = "127.0.0.1"
    discord: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "replay", tuple(Path(path) for path in self.replay))
        if self.source not in SOURCES:
            raise ConfigError(f"--source must be one of {', '.join(SOURCES)}, not {self.source!r}")
        if self.days < 1:
            raise ConfigError("--days must be at least 1")
        if self.minutes is not None and self.minutes < 1:
            raise ConfigError("--minutes must be at least 1")
        if self.speed is not None and not self.speed > 0:
            raise ConfigError(f"--speed must be positive, got {self.speed!r}")
        if self.speed is not None and not SPEEDS[0] <= self.speed <= SPEEDS[1]:
            raise ConfigError(f"--speed must be 'max' or a number of times real time from"
                              f" {SPEEDS[0]:g} to {SPEEDS[1]:g}, got {self.speed!r}")
        if self.replay and self.source == "sim" and self.seed != 1:
            raise ConfigError("--seed applies to --source sim, not to --replay")
        if self.http_port is not None and not 0 <= self.http_port <= 65535:
            raise ConfigError(f"--http-port: {self.http_port} is not a TCP port (0-65535)")
        if self.record is not None and self.record.exists() and not self.record.is_dir():
            raise ConfigError(f"--record: {self.record} is not a folder")

    @property
    def live(self) -> bool:
        """Live Schwab data (credentials needed), on the wall clock or a simulated one."""
        return not self.replay and self.source == "schwab"

    @property
    def realtime(self) -> bool:
        """On the wall clock: live Schwab data without `start`.

        With `start`, Schwab (or a local fake standing in for it) is read on a simulated clock,
        which is how a fake server is driven through whole sessions in minutes.
        """
        return self.live and self.start is None

    @property
    def fast(self) -> bool:
        """On a simulated clock as fast as it goes (the store then writes minutes in batches)."""
        return self.speed is None and not self.realtime

    @property
    def source_name(self) -> str:
        """`schwab`, `sim` or `replay`: where the minutes come from, as /healthz names it."""
        return "replay" if self.replay else self.source

    def describe_source(self) -> str:
        """The market and clock in words, for the run's first log line."""
        if self.replay:
            return f"replay of {len(self.replay)} path(s)"
        if self.live:
            clock = "wall clock" if self.realtime else "simulated clock"
            return f"live Schwab data on the {clock}"
        speed = "max speed" if self.speed is None else f"{self.speed:g}x speed"
        return f"simulated market seed {self.seed} at {speed}"
