"""Scripted markets for the engine's rule tests: a few choices per minute, real sessions.

A scenario is a list of `Snapshot`s built from per-minute spots, order-flow samples and a GEX
sign, on a real XNYS session (holidays and early closes from the exchange calendar), then fed
through `step`. Prices are deterministic shapes whose features are known in advance: a
mean-reverting zigzag (Hurst far below 0.5), a slow wave (Hurst above 0.5), a calm or a wild
tape of 1-minute closes (HMM LOW or HIGH). The parameters are the shipped ES preset's, with an
HMM planted here so the tests do not depend on a trained model file.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from typing import Any

from gexbot.core.engine import EngineParams, initial_state, step
from gexbot.core.hmm import HmmModel, model_from_dict
from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.core.types import (
    Chain,
    Decided,
    Direction,
    Event,
    GexRegime,
    SessionTimes,
    Snapshot,
    State,
    frozen_array,
)
from gexbot.settings import StrategySettings, load_variant

PRESET = load_variant("es")
STRATEGY = PRESET.strategy
CALENDAR = TradingCalendar(PRESET.calendar, STRATEGY.flatten_minutes_before_close)

LEVEL = 6800.0
DAY = date(2026, 11, 17)
"""An ordinary Tuesday session, 09:30 to 16:00 ET."""
NEXT_DAY = date(2026, 11, 18)
EARLY_DAY = date(2026, 11, 27)
"""The day after Thanksgiving: closes at 13:00 ET, flattens at 12:45."""
NEUTRAL_OFI = 1.0
"""An order-flow sample that agrees with neither side (SHORT needs < 0.5, LONG > 2.0)."""
WARM = 40
"""Minutes of zigzag before the minute under test: enough for Hurst (21) and a full band (20)."""


def hmm_model() -> HmmModel:
    """A planted model over basis-point returns: state 0 calm (sd 1 bp), state 1 wild (sd 10 bp)."""
    return model_from_dict(
        {
            "format": "gexbot-hmm",
            "version": 1,
            "start_prob": [0.5, 0.5],
            "transmat": [[0.99, 0.01], [0.01, 0.99]],
            "means": [0.0, 0.0],
            "variances": [1.0, 100.0],
            "return_scale": 1e4,
            "return_kind": "log",
            "low_state": 0,
            "metadata": {},
        }
    )


def engine_params(strategy: StrategySettings = STRATEGY) -> EngineParams:
    """The ES variant's engine parameters with the planted HMM."""
    return EngineParams.from_preset(PRESET, hmm_model(), strategy)


PARAMS = engine_params()


def tweak(section: str, **changes: Any) -> StrategySettings:
    """The ES strategy with some values of one section changed (to isolate a single rule)."""
    inner = getattr(STRATEGY, section)
    return STRATEGY.model_copy(update={section: inner.model_copy(update=changes)})


CLOSES_BANDS = engine_params(tweak("bands", min_live_prices=1000))
"""The ES parameters with bands always from the 1-minute closes, never from the live spots."""


def chain(regime: GexRegime) -> Chain:
    """Four contracts around the money whose net GEX has the sign of `regime`.

    Calls carry 1,000 contracts of open interest each; puts 400 (POSITIVE) or 3,000 (NEGATIVE),
    all with the same gamma, so the sign is obvious by inspection.
    """
    put_oi = 400.0 if regime is GexRegime.POSITIVE else 3000.0
    return Chain(
        is_call=frozen_array([True, True, False, False], dtype=bool),
        strike=frozen_array([6795.0, 6805.0, 6795.0, 6805.0]),
        gamma=frozen_array([0.002, 0.002, 0.002, 0.002]),
        open_interest=frozen_array([1000.0, 1000.0, put_oi, put_oi]),
    )


def reverting(n: int, level: float = LEVEL, swing: float = 1.0) -> list[float]:
    """A zigzag around `level` with an irregular amplitude: strongly mean-reverting, H ≈ 0.15.

    The irregularity keeps every lagged difference from being constant (a pure zigzag has
    zero spread at even lags, which the Hurst estimator rightly calls degenerate).
    """
    return [level + swing * (-1) ** i * (1.0 + 0.3 * math.sin(1.7 * i)) for i in range(n)]


def trending(n: int, level: float = LEVEL, amplitude: float = 8.0, period: int = 80) -> list[float]:
    """A slow wave with a little noise: long persistent runs, H well above 0.5."""
    return [
        level + amplitude * math.sin(2 * math.pi * i / period) + 0.3 * math.sin(1.7 * i)
        for i in range(n)
    ]


def beyond_band(path: Sequence[float], direction: Direction, k: float = 3.0) -> float:
    """A next spot `k` population sigmas of the path's last 19 prices past their mean.

    With the spot itself among the 20 band prices, a spot d from the mean of the other 19
    breaches the 2-sigma band exactly when d > 2.31·sigma_19, so k = 3 is a clear breach.
    LONG gives a spot below the band, SHORT above it.
    """
    window = list(path[-(STRATEGY.bands.window - 1) :])
    mean = statistics.fmean(window)
    sigma = statistics.pstdev(window)
    return mean - direction.sign * k * sigma


def calm_tape(n: int = 390, level: float = LEVEL) -> list[float]:
    """1-minute closes whose returns alternate ±0.6 bp: decoded LOW by the planted HMM."""
    return [level * (1.0 + 3e-5 * (-1) ** i) for i in range(n)]


def wild_tape(n: int = 390, level: float = LEVEL) -> list[float]:
    """1-minute closes whose returns alternate ±60 bp: decoded HIGH by the planted HMM."""
    return [level * (1.0 + 3e-3 * (-1) ** i) for i in range(n)]


def wave_tape(n: int = 390, level: float = LEVEL, amplitude: float = 1.5) -> list[float]:
    """1-minute closes on a 20-minute sine: σ ≈ 1.06 over 20 closes, returns under 0.7 bp (LOW).

    With `CLOSES_BANDS` the bands come from these closes, not from the spots, so a test can put
    the spot exactly on a band: the minute's own spot does not move the band.
    """
    return [level + amplitude * math.sin(2 * math.pi * i / 20) for i in range(n)]


def _per_minute(value: Any, n: int) -> list[Any]:
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ValueError(f"expected {n} per-minute values, got {len(value)}")
        return list(value)
    return [value] * n


@dataclass(frozen=True)
class Market:
    """One session's scripted market: which day, from which minute, gap and closes tape.

    `gap` is the session-open gap the previous close implies (previous close = first spot /
    (1 + gap)); None means the price history had no previous close. `tape` lists the closes
    of the session's 1-minute bars from the open on; at minute t the snapshot carries the bars
    that opened before t, as the parser keeps them.
    """

    day: date = DAY
    start: time | None = None
    gap: float | None = 0.0
    tape: Sequence[float] = field(default_factory=calm_tape)

    @property
    def session(self) -> SessionTimes:
        """The session's open, close and flatten times from the exchange calendar."""
        return CALENDAR.session(self.day)

    def first_minute(self) -> datetime:
        """The first scripted minute: `start` on the day, else the open."""
        if self.start is None:
            return self.session.open
        return datetime.combine(self.day, self.start, tzinfo=EASTERN)

    def snapshots(
        self,
        spots: Sequence[float],
        ofi: float | Sequence[float | None] | None = NEUTRAL_OFI,
        gex: GexRegime | Sequence[GexRegime] = GexRegime.POSITIVE,
    ) -> list[Snapshot]:
        """One snapshot per spot, a minute apart; `ofi` and `gex` per minute or for all."""
        session = self.session
        first = self.first_minute()
        previous_close = None if self.gap is None else spots[0] / (1.0 + self.gap)
        samples = _per_minute(ofi, len(spots))
        regimes = _per_minute(gex, len(spots))
        out = []
        for i, spot in enumerate(spots):
            at = first + timedelta(minutes=i)
            bars = int((at - session.open) / timedelta(minutes=1))
            out.append(
                Snapshot(
                    at=at,
                    session=session,
                    spot=float(spot),
                    ofi_sample=samples[i],
                    chain=chain(regimes[i]),
                    closes=frozen_array(self.tape[:bars]),
                    previous_close=previous_close,
                )
            )
        return out


def run(
    snapshots: Sequence[Snapshot], params: EngineParams = PARAMS, state: State | None = None
) -> tuple[State, list[list[Event]]]:
    """Fold `step` over the snapshots; the final state and each minute's events."""
    current = initial_state(params) if state is None else state
    minutes: list[list[Event]] = []
    for snapshot in snapshots:
        current, events = step(current, snapshot, params)
        minutes.append(events)
    return current, minutes


def decided(events: Sequence[Event]) -> Decided:
    """The minute's `Decided` row, checking there is exactly one and it comes last."""
    rows = [e for e in events if isinstance(e, Decided)]
    assert len(rows) == 1, f"expected one Decided, got {len(rows)}"
    assert events[-1] is rows[0], "Decided must be the minute's last event"
    return rows[0]


def of_type(events: Sequence[Event], kind: type) -> list[Any]:
    """The events of one kind, in order."""
    return [e for e in events if isinstance(e, kind)]


def state_fields(state: State) -> dict[str, Any]:
    """A State as a plain dict with arrays as lists, for equality checks (State has no __eq__)."""
    out: dict[str, Any] = {}
    for f in fields(state):
        value = getattr(state, f.name)
        out[f.name] = value.tolist() if hasattr(value, "tolist") else value
    return out


def warm_then(
    last_spot: float | None = None,
    direction: Direction = Direction.LONG,
    *,
    market: Market | None = None,
    path: Sequence[float] | None = None,
    ofi: float | None = NEUTRAL_OFI,
    gex: GexRegime = GexRegime.POSITIVE,
) -> list[Snapshot]:
    """`WARM` minutes of zigzag (or `path`) then one minute at `last_spot` (default: a breach).

    The common shape of an entry test: everything warmed up and calm, and the minute under test
    breaching the band on `direction`'s side unless a spot is given. `gex` applies to the last
    minute only, so an earlier minute never decides for it.
    """
    market = market if market is not None else Market()
    warm = list(path) if path is not None else reverting(WARM)
    spot = beyond_band(warm, direction) if last_spot is None else last_spot
    regimes = [GexRegime.POSITIVE] * len(warm) + [gex]
    return market.snapshots([*warm, spot], ofi=ofi, gex=regimes)
