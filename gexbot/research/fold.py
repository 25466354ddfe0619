"""One session's feature rows, produced by folding the engine's own `step` over its minutes.

Features never depend on positions (the buffers, bands, Hurst, HMM and GEX are computed before
any exit or entry is looked at), so the features that `step` computes while trading the preset
are the features of every strategy that shares its feature parameters. Taking them from `step`
itself, rather than from a second implementation, is what keeps the table and the daemon on
one meaning. Band width is the one number applied after the statistics: the table keeps μ and
σ, so any `width_sigma` can be applied later in the kernel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from gexbot.core.engine import EngineParams, initial_state, step
from gexbot.core.rules import session_gap
from gexbot.core.types import Decided, SessionTimes, Snapshot
from gexbot.errors import DataError
from gexbot.research.enums import HMM_CODES, REGIME_CODES, UNKNOWN

MinuteData = tuple[datetime, Snapshot | DataError]
"""A session minute and what the market gave for it: a snapshot, or why it was unusable."""

COLUMN_DTYPES: dict[str, type] = {
    "minute": np.int64,
    "skipped": np.bool_,
    "spot": np.float64,
    "ofi_sample": np.float64,
    "ofi": np.float64,
    "net_gex": np.float64,
    "regime": np.int8,
    "excluded_contracts": np.int32,
    "hurst": np.float64,
    "hmm": np.int8,
    "band_mid": np.float64,
    "band_sigma": np.float64,
    "band_live": np.bool_,
    "n_prices": np.int32,
    "gap": np.float64,
}
"""The numeric columns of a feature table (plus `skip_reason`, text); NaN or -1: unknown."""


def epoch_minute(at: datetime) -> int:
    """Whole minutes since the Unix epoch of a timezone-aware minute."""
    return int(at.timestamp()) // 60


@dataclass(frozen=True, slots=True, eq=False)
class SessionFeatures:
    """One session's rows (`columns`, `skip_reason`) and its facts (`facts`, JSON-ready)."""

    session: SessionTimes
    columns: dict[str, npt.NDArray[Any]]
    skip_reason: list[str | None]
    facts: dict[str, Any]

    @property
    def minutes(self) -> int:
        """Rows in the table: every minute of the session, skipped ones included."""
        return int(self.columns["minute"].shape[0])


def _none_nan(value: float | None) -> float:
    return math.nan if value is None else value


def fold_session(
    session: SessionTimes, minutes: Iterable[MinuteData], params: EngineParams
) -> SessionFeatures:
    """Fold `step` over one session's minutes from a fresh state and keep what the rules read.

    Every session starts with empty buffers in `step`, so a session folded on its own gives the
    same features as one folded after its predecessors: days can be built in any order.
    """
    rows: dict[str, list[Any]] = {name: [] for name in COLUMN_DTYPES}
    reasons: list[str | None] = []
    state = initial_state(params)
    min_live = params.strategy.bands.min_live_prices
    for at, data in minutes:
        rows["minute"].append(epoch_minute(at))
        if isinstance(data, DataError):
            reasons.append(f"{data.kind}: {data}")
            _append_skipped(rows)
            continue
        state, events = step(state, data, params)
        decided = events[-1]
        if not isinstance(decided, Decided) or decided.features is None:
            raise TypeError("step must end a minute with a Decided event that has features")
        feats = decided.features
        reasons.append(None)
        n_prices = int(state.prices.shape[0])
        rows["skipped"].append(False)
        rows["spot"].append(data.spot)
        rows["ofi_sample"].append(_none_nan(data.ofi_sample))
        rows["ofi"].append(_none_nan(feats.ofi))
        rows["net_gex"].append(_none_nan(feats.net_gex))
        rows["regime"].append(UNKNOWN if feats.gex_regime is None
                              else REGIME_CODES[feats.gex_regime])
        rows["excluded_contracts"].append(feats.excluded_contracts)
        rows["hurst"].append(_none_nan(feats.hurst))
        rows["hmm"].append(UNKNOWN if feats.hmm_state is None else HMM_CODES[feats.hmm_state])
        rows["band_mid"].append(_none_nan(feats.band_mid))
        rows["band_sigma"].append(_none_nan(feats.band_sigma))
        rows["band_live"].append(n_prices >= min_live)
        rows["n_prices"].append(n_prices)
        rows["gap"].append(_none_nan(session_gap(state)))
    columns: dict[str, npt.NDArray[Any]] = {
        name: np.array(values, dtype=COLUMN_DTYPES[name]) for name, values in rows.items()
    }
    decided_any = state.session_date == session.date
    facts = {
        "date": session.date.isoformat(),
        "open": session.open.isoformat(),
        "close": session.close.isoformat(),
        "open_minute": epoch_minute(session.open),
        "close_minute": epoch_minute(session.close),
        "flatten_minute": epoch_minute(session.flatten),
        "early_close": session.early_close,
        "first_spot": state.first_spot if decided_any else None,
        "previous_close": state.previous_close if decided_any else None,
        "gap": session_gap(state) if decided_any else None,
        "skipped_minutes": sum(reason is not None for reason in reasons),
    }
    return SessionFeatures(session=session, columns=columns, skip_reason=reasons, facts=facts)


def _append_skipped(rows: dict[str, list[Any]]) -> None:
    """A skipped minute: nothing is known, nothing is decided (the buffers do not move)."""
    for name in COLUMN_DTYPES:
        if name == "minute":
            continue
        if name == "skipped":
            rows[name].append(True)
        elif name in ("regime", "hmm"):
            rows[name].append(UNKNOWN)
        elif name in ("excluded_contracts", "n_prices"):
            rows[name].append(0)
        elif name == "band_live":
            rows[name].append(False)
        else:
            rows[name].append(math.nan)
