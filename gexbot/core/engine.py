"""The whole strategy: `step(state, snapshot, params) -> (state', events)`.

One pure function decides every minute, whatever feeds it (live, simulated, recorded), so a
replay or a backtest is a fold of `step` over snapshots and gives the live run's trades bit for
bit. Every minute yields exactly one `Decided` event saying what held and what blocked an entry;
`Opened`, `Closed` and the session events come along when they happen. The conditions
themselves are in `rules.py`.

Rule order within a minute (docs/design.md, "The rules within a minute"):
1. a new session date resets the session's buffers and facts;
2. the spot and order-flow sample enter the bounded buffers, features are computed;
3. an open position is checked for exits, first match wins: STOP_LOSS, TARGET, REGIME_FLIP,
   EOD_FLATTEN (a position left from an earlier session is flattened at once);
4. only when the minute started flat is an entry considered; every failed condition is named.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np

from gexbot.core import features as ft
from gexbot.core.broker import EntryPlan, realized_pnl
from gexbot.core.hmm import decode_last_state
from gexbot.core.params import EngineParams
from gexbot.core.rules import entry_blockers, exit_reason, gap_suspended, session_gap
from gexbot.core.types import (
    EMPTY,
    Action,
    Blocker,
    Closed,
    Decided,
    Direction,
    Event,
    ExitReason,
    Features,
    FloatArray,
    GexRegime,
    Opened,
    Position,
    SessionEnded,
    SessionStarted,
    Snapshot,
    State,
    Trade,
)
from gexbot.settings import StrategySettings

__all__ = ["EngineParams", "end_session", "initial_state", "skip", "step"]


def initial_state(params: EngineParams) -> State:
    """The state of a fresh run: the starting balance, flat, no session yet."""
    balance = params.strategy.starting_balance
    return State(
        balance=balance,
        position=None,
        cooldown_until=None,
        session_date=None,
        prices=EMPTY,
        ofi_samples=EMPTY,
        first_spot=None,
        previous_close=None,
        day_start_balance=balance,
        day_trades=0,
        last_minute=None,
    )


def step(state: State, snapshot: Snapshot, params: EngineParams) -> tuple[State, list[Event]]:
    """Decide minute `snapshot.at`: exits, then entries, one `Decided` event always."""
    events: list[Event] = []
    at = snapshot.at
    if state.session_date != snapshot.session.date:
        state = _start_session(state, snapshot)
        events.append(_session_started(state, snapshot, params))
    state = _absorb(state, snapshot, params.strategy)
    feats = compute_features(state, snapshot, params)

    started_with_position = state.position is not None
    closed: Closed | None = None
    if state.position is not None:
        reason = exit_reason(state.position, snapshot, feats.gex_regime)
        if reason is not None:
            state, closed = _close(state, state.position, snapshot, feats, reason, params)
            events.append(closed)

    blockers, plan = entry_blockers(state, snapshot, feats, params, started_with_position)
    opened: Opened | None = None
    # No blocker implies a known regime (an unknown one is `warmup`); the test names it for
    # the type checker, so `_open` needs no guard of its own.
    if not blockers and plan is not None and feats.gex_regime is not None:
        state, opened = _open(state, snapshot, feats, feats.gex_regime, plan, params)
        events.append(opened)

    if closed is not None:
        action, reason_text = Action.CLOSE, str(closed.trade.exit_reason)
    elif opened is not None:
        action, reason_text = Action(opened.position.direction.value), None
    elif started_with_position:
        action, reason_text = Action.HOLD, None
    else:
        action, reason_text = Action.WAIT, None
    events.append(_decided(state, snapshot.spot, feats, action, reason_text, blockers, params, at))
    return state, events


def skip(
    state: State, at: datetime, reason: str, params: EngineParams
) -> tuple[State, list[Event]]:
    """Record a minute whose data was unusable: no feature, no entry, no exit, one SKIP row."""
    state = replace(state, last_minute=at)
    decided = _decided(state, None, None, Action.SKIP, reason, (), params, at)
    return state, [decided]


def end_session(state: State, params: EngineParams) -> tuple[State, list[Event]]:
    """Close the books of the current session: one `SessionEnded` with the day's PnL."""
    if state.session_date is None:
        return state, []
    ended = SessionEnded(
        variant=params.variant,
        session_date=state.session_date,
        trades=state.day_trades,
        pnl=state.balance - state.day_start_balance,
        balance=state.balance,
    )
    return state, [ended]


def compute_features(state: State, snapshot: Snapshot, params: EngineParams) -> Features:
    """All regime features of the minute from the (already updated) buffers and the snapshot."""
    strategy = params.strategy
    net_gex, excluded = ft.net_gex(
        snapshot.chain, snapshot.spot, params.multiplier, params.strike_count
    )
    regime = ft.gex_regime(net_gex) if net_gex is not None else None
    hurst = ft.hurst(state.prices, strategy.hurst.min_lag, strategy.hurst.max_lag)
    returns = ft.log_returns(snapshot.closes, strategy.hmm.returns)
    hmm_state = decode_last_state(params.model, returns) if returns is not None else None
    band_prices = _band_prices(state.prices, snapshot.closes, strategy)
    bands = ft.bands(band_prices, strategy.bands.width_sigma)
    mid, upper, lower, sigma = bands if bands is not None else (None, None, None, None)
    return Features(
        net_gex=net_gex,
        gex_regime=regime,
        excluded_contracts=excluded,
        ofi=ft.mean_ofi(state.ofi_samples),
        hurst=hurst,
        hmm_state=hmm_state,
        band_mid=mid,
        band_upper=upper,
        band_lower=lower,
        band_sigma=sigma,
    )


def _band_prices(prices: FloatArray, closes: FloatArray, strategy: StrategySettings) -> FloatArray:
    """The last `window` live prices once the buffer holds enough, else intraday closes."""
    window = strategy.bands.window
    source = prices if prices.shape[0] >= strategy.bands.min_live_prices else closes
    return source[-window:]


def _start_session(state: State, snapshot: Snapshot) -> State:
    """Empty the session buffers and facts; balance, position and cooldown carry over."""
    return replace(
        state,
        session_date=snapshot.session.date,
        prices=EMPTY,
        ofi_samples=EMPTY,
        first_spot=snapshot.spot,
        previous_close=None,
        day_start_balance=state.balance,
        day_trades=0,
    )


def _session_started(state: State, snapshot: Snapshot, params: EngineParams) -> SessionStarted:
    with_close = replace(state, previous_close=snapshot.previous_close)
    return SessionStarted(
        variant=params.variant,
        session=snapshot.session,
        at=snapshot.at,
        first_spot=snapshot.spot,
        previous_close=snapshot.previous_close,
        gap=session_gap(with_close),
        gap_suspends=gap_suspended(with_close, params.strategy),
        balance=state.balance,
    )


def _absorb(state: State, snapshot: Snapshot, strategy: StrategySettings) -> State:
    """Append the minute's spot and OFI sample to the bounded buffers; learn the prior close.

    The minute becomes `last_minute` here too, so the common minute (no trade) costs a single
    copy of the state: `dataclasses.replace` is a sizeable share of a minute's work.
    """
    prices = _bounded_append(state.prices, snapshot.spot, strategy.price_buffer)
    samples = state.ofi_samples
    if snapshot.ofi_sample is not None:
        samples = _bounded_append(samples, snapshot.ofi_sample, strategy.ofi.window)
    previous_close = state.previous_close
    if previous_close is None:
        previous_close = snapshot.previous_close
    return replace(
        state,
        prices=prices,
        ofi_samples=samples,
        previous_close=previous_close,
        last_minute=snapshot.at,
    )


def _bounded_append(buffer: FloatArray, value: float, limit: int) -> FloatArray:
    keep = buffer[-(limit - 1) :] if limit > 1 else buffer[:0]
    out = np.empty(keep.shape[0] + 1, dtype=np.float64)
    out[:-1] = keep
    out[-1] = value
    out.flags.writeable = False
    return out


def _close(
    state: State,
    position: Position,
    snapshot: Snapshot,
    feats: Features,
    reason: ExitReason,
    params: EngineParams,
) -> tuple[State, Closed]:
    pnl = realized_pnl(position.direction, position.size_usd, position.entry_price, snapshot.spot)
    trade = Trade(
        variant=params.variant,
        symbol=params.symbol,
        direction=position.direction,
        bucket=position.bucket,
        entry_time=position.entry_time,
        entry_price=position.entry_price,
        exit_time=snapshot.at,
        exit_price=snapshot.spot,
        size_usd=position.size_usd,
        exit_regime=feats.gex_regime,
        exit_reason=reason,
        pnl=pnl,
    )
    cooldown_until = state.cooldown_until
    if reason is ExitReason.STOP_LOSS:
        cooldown_until = snapshot.at + timedelta(minutes=params.strategy.cooldown_minutes)
    balance = state.balance + pnl
    state = replace(
        state,
        balance=balance,
        position=None,
        cooldown_until=cooldown_until,
        day_trades=state.day_trades + 1,
    )
    return state, Closed(trade=trade, balance=balance)


def _open(
    state: State,
    snapshot: Snapshot,
    feats: Features,
    regime: GexRegime,
    plan: EntryPlan,
    params: EngineParams,
) -> tuple[State, Opened]:
    position = Position(
        direction=plan.direction,
        bucket=params.strategy.sizing.bucket,
        entry_time=snapshot.at,
        entry_price=plan.fill,
        size_usd=plan.size_usd,
        target=plan.target,
        stop=plan.stop,
        entry_regime=regime,
        session_date=snapshot.session.date,
    )
    side = "above the upper band" if plan.direction is Direction.SHORT else "below the lower band"
    why = (
        f"spot {snapshot.spot:.2f} {side}, OFI {feats.ofi:.2f}, Hurst {feats.hurst:.2f}, "
        f"GEX {regime}, HMM {feats.hmm_state}, b {plan.reward_risk:.2f}"
    )
    opened = Opened(
        variant=params.variant,
        symbol=params.symbol,
        position=position,
        kelly_fraction=plan.kelly,
        features=feats,
        spot=snapshot.spot,
        why=why,
    )
    return replace(state, position=position), opened


def _decided(
    state: State,
    spot: float | None,
    feats: Features | None,
    action: Action,
    reason: str | None,
    blockers: tuple[Blocker, ...],
    params: EngineParams,
    at: datetime,
) -> Decided:
    position = state.position
    return Decided(
        variant=params.variant,
        at=at,
        spot=spot,
        features=feats,
        position=position.direction if position is not None else None,
        target=position.target if position is not None else None,
        stop=position.stop if position is not None else None,
        action=action,
        reason=reason,
        blocked_by=blockers,
        balance=state.balance,
    )
