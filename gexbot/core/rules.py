"""The strategy's conditions: when an open position exits, and what blocks an entry.

Each function reads one minute's state, snapshot and features and says what the strategy's
rules make of them (README, "The strategy"; where their wording leaves a choice, the reading
taken is in docs/design.md, "Readings of the rules"); `engine.step` applies the verdicts. Kept
apart from the fold so that each rule reads as written, beside its neighbours.
"""

from __future__ import annotations

from gexbot.core.broker import EntryPlan, plan_entry
from gexbot.core.params import EngineParams
from gexbot.core.types import (
    Blocker,
    Direction,
    ExitReason,
    Features,
    GexRegime,
    HmmState,
    Position,
    Snapshot,
    State,
)
from gexbot.settings import StrategySettings

_BLOCKER_ORDER = tuple(Blocker)
"""The order of `decisions.blocked_by` (iterating a tuple is much cheaper than the enum)."""


def exit_reason(
    position: Position, snapshot: Snapshot, regime: GexRegime | None
) -> ExitReason | None:
    """The first exit rule that fires for `position` at this minute, or None to hold."""
    spot = snapshot.spot
    sign = position.direction.sign
    if sign * (spot - position.stop) <= 0.0:
        return ExitReason.STOP_LOSS
    if sign * (spot - position.target) >= 0.0:
        return ExitReason.TARGET
    if regime is not None and regime != position.entry_regime:
        return ExitReason.REGIME_FLIP
    if position.session_date != snapshot.session.date or snapshot.at >= snapshot.session.flatten:
        return ExitReason.EOD_FLATTEN
    return None


def entry_blockers(
    state: State,
    snapshot: Snapshot,
    feats: Features,
    params: EngineParams,
    had_position: bool,
) -> tuple[tuple[Blocker, ...], EntryPlan | None]:
    """Every entry condition that fails this minute, in `Blocker` order, and the entry plan.

    A condition whose input is unknown for lack of data (too few prices, returns or samples)
    counts as `warmup`; a known input that fails (or is degenerate, like σ = 0) counts under
    its own name. The OFI and Kelly conditions only mean something once a band is breached, so
    they are judged for the breached side only. `had_position` is whether the minute began with
    a position: an exit and a new entry never happen in the same minute.
    """
    strategy = params.strategy
    at = snapshot.at
    blocked: set[Blocker] = set()
    if had_position:
        blocked.add(Blocker.POSITION)
    if state.cooldown_until is not None and at < state.cooldown_until:
        blocked.add(Blocker.COOLDOWN)
    if gap_suspended(state, strategy):
        blocked.add(Blocker.GAP)
    if at >= snapshot.session.flatten:
        blocked.add(Blocker.FLATTEN)

    if feats.hmm_state is None:
        blocked.add(Blocker.WARMUP)
    elif feats.hmm_state is not HmmState.LOW:
        blocked.add(Blocker.HMM)
    if feats.gex_regime is None:
        blocked.add(Blocker.WARMUP)
    elif feats.gex_regime is not GexRegime.POSITIVE:
        blocked.add(Blocker.GEX)
    if feats.hurst is None:
        enough = state.prices.shape[0] >= strategy.hurst.max_lag + 2
        blocked.add(Blocker.HURST if enough else Blocker.WARMUP)
    elif not feats.hurst < strategy.hurst.threshold:
        blocked.add(Blocker.HURST)

    direction = _breach(snapshot.spot, feats)
    plan: EntryPlan | None = None
    if feats.band_mid is None or feats.band_sigma is None:
        blocked.add(Blocker.WARMUP)
    elif direction is None:
        blocked.add(Blocker.BAND)
    else:
        if feats.ofi is None:
            blocked.add(Blocker.WARMUP)
        elif not _ofi_agrees(direction, feats.ofi, strategy):
            blocked.add(Blocker.OFI)
        plan = plan_entry(
            direction,
            snapshot.spot,
            feats.band_mid,
            feats.band_sigma,
            stop_sigma=strategy.stop_sigma,
            slippage=strategy.sizing.slippage_points,
            win_rate=strategy.sizing.win_rate,
            kelly_scale=strategy.sizing.kelly_fraction,
            max_fraction=strategy.sizing.max_fraction,
            balance=state.balance,
        )
        if not plan.tradable:
            blocked.add(Blocker.KELLY)
    return tuple(b for b in _BLOCKER_ORDER if b in blocked), plan


def gap_suspended(state: State, strategy: StrategySettings) -> bool:
    """True while an opening gap above the threshold suspends entries (buffer still short).

    A gap that cannot be measured (no previous close yet) is not above the threshold, so it
    suspends nothing; once the price history supplies the previous close, the gap of the
    session's first spot is judged from then on.
    """
    if state.prices.shape[0] >= strategy.gap.suspend_until_prices:
        return False
    gap = session_gap(state)
    return gap is not None and gap > strategy.gap.threshold


def session_gap(state: State) -> float | None:
    """|first spot − previous close| / previous close of the current session, None if unknown."""
    if state.first_spot is None or state.previous_close is None or state.previous_close <= 0:
        return None
    return abs(state.first_spot - state.previous_close) / state.previous_close


def _breach(spot: float, feats: Features) -> Direction | None:
    """SHORT above the upper band, LONG below the lower band; None inside or when σ = 0."""
    upper, lower, sigma = feats.band_upper, feats.band_lower, feats.band_sigma
    if upper is None or lower is None or sigma is None or sigma <= 0.0:
        return None
    if spot > upper:
        return Direction.SHORT
    if spot < lower:
        return Direction.LONG
    return None


def _ofi_agrees(direction: Direction, ofi: float, strategy: StrategySettings) -> bool:
    if direction is Direction.SHORT:
        return ofi < strategy.ofi.short_below
    return ofi > strategy.ofi.long_above
