"""Frozen values that flow through the pure core: inputs, state and events.

Arrays inside these values are numpy arrays marked read-only, so a frozen dataclass really is
immutable and the same `State` can be handed to `step` twice (tests, replay) without surprise.
All datetimes are timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def frozen_array(values: object, dtype: type = np.float64) -> npt.NDArray[Any]:
    """A read-only numpy copy of `values`, safe to keep inside a frozen value."""
    array: npt.NDArray[Any] = np.array(values, dtype=dtype)
    array.flags.writeable = False
    return array


EMPTY: FloatArray = frozen_array([])


class GexRegime(StrEnum):
    POSITIVE = "POSITIVE"
    NEGATIVE = "NEGATIVE"


class HmmState(StrEnum):
    LOW = "LOW"
    HIGH = "HIGH"


class Direction(StrEnum):
    LONG = "LONG"
    SHORT = "SHORT"

    @property
    def sign(self) -> int:
        """+1 for LONG, -1 for SHORT: the sign of PnL for a rising price."""
        return 1 if self is Direction.LONG else -1


class ExitReason(StrEnum):
    STOP_LOSS = "STOP_LOSS"
    TARGET = "TARGET"
    REGIME_FLIP = "REGIME_FLIP"
    EOD_FLATTEN = "EOD_FLATTEN"


class Action(StrEnum):
    """What a minute did, as recorded in `decisions.action`."""

    WAIT = "WAIT"
    LONG = "LONG"
    SHORT = "SHORT"
    HOLD = "HOLD"
    CLOSE = "CLOSE"
    SKIP = "SKIP"


class Blocker(StrEnum):
    """An entry condition that failed; `decisions.blocked_by` lists them in this order."""

    POSITION = "position"
    COOLDOWN = "cooldown"
    GAP = "gap"
    FLATTEN = "flatten"
    WARMUP = "warmup"
    HMM = "hmm"
    GEX = "gex"
    HURST = "hurst"
    BAND = "band"
    OFI = "ofi"
    KELLY = "kelly"


@dataclass(frozen=True, slots=True)
class SessionTimes:
    """One trading session: its date and instants (all in America/New_York)."""

    date: date
    open: datetime
    close: datetime
    flatten: datetime
    early_close: bool


@dataclass(frozen=True, slots=True, eq=False)
class Chain:
    """A near-the-money option chain as parallel arrays, one element per contract.

    `gamma` is per share per 1-point move of the underlying; `open_interest` is in contracts.
    Missing or sentinel values (-999, "NaN") are NaN here: the parser never invents numbers and
    the GEX feature leaves such contracts out and counts them. `strikes` (the distinct strike
    prices, ascending) is derived once when the chain is built, because the GEX feature asks
    for it every minute.
    """

    is_call: BoolArray
    strike: FloatArray
    gamma: FloatArray
    open_interest: FloatArray
    strikes: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        distinct = np.unique(self.strike)
        distinct.flags.writeable = False
        object.__setattr__(self, "strikes", distinct)

    def __len__(self) -> int:
        return int(self.is_call.shape[0])


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """Everything the engine may know at minute `at`, parsed and validated.

    `closes` are today's completed 1-minute closes of the index, oldest first, with bars that
    opened before `at` only (the bar of minute `at` has not finished when it is fetched).
    `ofi_sample` is the proxy ETF's bidSize / askSize, None when a size is missing or zero.
    `previous_close` is the price history's previousClose, None when absent.
    """

    at: datetime
    session: SessionTimes
    spot: float
    ofi_sample: float | None
    chain: Chain
    closes: FloatArray
    previous_close: float | None


@dataclass(frozen=True, slots=True)
class Position:
    """An open paper position. `entry_price` is the fill, slippage included."""

    direction: Direction
    bucket: str
    entry_time: datetime
    entry_price: float
    size_usd: float
    target: float
    stop: float
    entry_regime: GexRegime
    session_date: date


@dataclass(frozen=True, slots=True, eq=False)
class State:
    """Everything the next minute depends on; `step` returns a new one, never mutates.

    `prices` and `ofi_samples` are the session's bounded buffers (read-only arrays). The session
    facts (`first_spot`, `previous_close`) decide the opening-gap suspension. `day_*` fields feed
    the session summary. `last_minute` is the last minute decided (SKIPs included), so a restarted
    run knows where to continue.
    """

    balance: float
    position: Position | None
    cooldown_until: datetime | None
    session_date: date | None
    prices: FloatArray
    ofi_samples: FloatArray
    first_spot: float | None
    previous_close: float | None
    day_start_balance: float
    day_trades: int
    last_minute: datetime | None


@dataclass(frozen=True, slots=True)
class Features:
    """The regime features of one minute; None where a feature is unknown."""

    net_gex: float | None
    gex_regime: GexRegime | None
    excluded_contracts: int
    ofi: float | None
    hurst: float | None
    hmm_state: HmmState | None
    band_mid: float | None
    band_upper: float | None
    band_lower: float | None
    band_sigma: float | None


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed round trip, as written to the `trades` table."""

    variant: str
    symbol: str
    direction: Direction
    bucket: str
    entry_time: datetime
    entry_price: float
    exit_time: datetime
    exit_price: float
    size_usd: float
    exit_regime: GexRegime | None
    exit_reason: ExitReason
    pnl: float


@dataclass(frozen=True, slots=True)
class Decided:
    """One row of `decisions`: what minute `at` saw and did, and why.

    `position`, `target` and `stop` describe the position after the minute. `blocked_by` lists
    every entry condition that failed (empty when an entry was taken or the minute was skipped).
    """

    variant: str
    at: datetime
    spot: float | None
    features: Features | None
    position: Direction | None
    target: float | None
    stop: float | None
    action: Action
    reason: str | None
    blocked_by: tuple[Blocker, ...]
    balance: float


@dataclass(frozen=True, slots=True)
class SessionStarted:
    variant: str
    session: SessionTimes
    at: datetime
    first_spot: float
    previous_close: float | None
    gap: float | None
    gap_suspends: bool
    balance: float


@dataclass(frozen=True, slots=True)
class Opened:
    """A position was entered; `why` explains it in words for the log line."""

    variant: str
    symbol: str
    position: Position
    kelly_fraction: float
    features: Features
    spot: float
    why: str


@dataclass(frozen=True, slots=True)
class Closed:
    trade: Trade
    balance: float


@dataclass(frozen=True, slots=True)
class SessionEnded:
    variant: str
    session_date: date
    trades: int
    pnl: float
    balance: float


Event = Decided | SessionStarted | Opened | Closed | SessionEnded
