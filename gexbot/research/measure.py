"""From the kernel's outputs to the sweep's rows and figures: statistics, best, overfitting.

Pure functions of arrays: the rows of a chunk (in-sample statistics of each combination), and
once every combination is in, the sweep's figures: the best combination by the metric, PBO
and the deflated Sharpe ratio of that best, the walk-forward's stitched out-of-sample result
beside the hindsight-best combination, and each combination's out-of-sample statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from gexbot.research import metrics
from gexbot.research.overfitting import (
    deflated_sharpe,
    probability_of_backtest_overfitting,
    sharpe_ratios,
)
from gexbot.research.walkforward import WalkForward

EXIT_COLUMNS = ("stop_loss", "target", "regime_flip", "eod_flatten")


def chunk_rows(
    combos: Sequence[str],
    table_key: str,
    parameters: dict[str, Sequence[Any]],
    daily: np.ndarray,
    trades: np.ndarray,
    counts: np.ndarray,
) -> pd.DataFrame:
    """One row per combination: its key, parameters and in-sample (every session) statistics."""
    total_trades = counts["trades"].astype(np.int64)
    wins = counts["wins"].astype(np.int64)
    decided = np.maximum(counts["decided_minutes"], 1)
    frame = pd.DataFrame({
        "combo": list(combos),
        "table_key": table_key,
        **{key: list(values) for key, values in parameters.items()},
        "is_sessions": daily.shape[1],
        "is_trades": total_trades,
        "is_wins": wins,
        "is_win_rate": np.where(total_trades > 0, wins / np.maximum(total_trades, 1), np.nan),
        "is_pnl": metrics.total_pnl(daily),
        "is_sharpe": metrics.sharpe(daily),
        "is_sortino": metrics.sortino(daily),
        "is_max_drawdown": metrics.max_drawdown(daily),
        "is_exposure": counts["held_minutes"] / decided,
        **{name: counts[name].astype(np.int64) for name in EXIT_COLUMNS},
    })
    if trades.shape != daily.shape:
        raise ValueError("daily PnL and trades per session differ in shape")
    return frame


@dataclass(frozen=True, slots=True)
class SweepFigures:
    """What a finished sweep reports: `summary` for the `sweeps` row, the frames for the
    out-of-sample columns of `sweep_results` and for `sweep_walk_forward` (empty without a
    walk-forward), and the logit of each PBO split for `sweep_pbo` (empty without PBO)."""

    best: int
    summary: dict[str, Any]
    out_of_sample: pd.DataFrame
    walk_forward_rows: pd.DataFrame
    pbo_note: str | None
    pbo_logits: np.ndarray


def sweep_figures(
    combos: Sequence[str],
    daily: np.ndarray,
    trades: np.ndarray,
    dates: Sequence[date],
    metric_name: str,
    metric: Callable[[np.ndarray], np.ndarray],
    walk: WalkForward | None,
) -> SweepFigures:
    """The figures of a sweep whose every combination's daily PnL is in `daily` (rows)."""
    best = int(np.argmax(metric(daily)))
    summary: dict[str, Any] = {
        "metric": metric_name,
        "best_combo": combos[best],
        "best_metric": float(metric(daily[best : best + 1])[0]),
        "best_pnl": float(daily[best].sum()),
        "best_sharpe": float(metrics.sharpe(daily[best : best + 1])[0]),
    }
    note = None
    logits = np.empty(0)
    try:
        pbo = probability_of_backtest_overfitting(daily.T)
        summary |= {"pbo": pbo.pbo, "pbo_blocks": pbo.blocks, "pbo_splits": pbo.splits,
                    "pbo_oos_loss": pbo.oos_loss_share}
        logits = pbo.logits
    except ValueError as problem:
        note = str(problem)
        summary |= {"pbo": math.nan, "pbo_blocks": None, "pbo_splits": None,
                    "pbo_oos_loss": math.nan}
    dsr = deflated_sharpe(daily[best], sharpe_ratios(daily.T))
    summary |= {"dsr": dsr.dsr, "dsr_sharpe_per_session": dsr.sharpe,
                "dsr_benchmark_per_session": dsr.benchmark, "dsr_skewness": dsr.skewness,
                "dsr_kurtosis": dsr.kurtosis}
    if walk is None:
        summary |= dict.fromkeys(
            ("wf_train_sessions", "wf_test_sessions", "wf_folds", "wf_oos_pnl", "wf_oos_sharpe",
             "wf_oos_trades", "wf_oos_max_drawdown", "wf_is_pnl", "wf_is_sharpe", "wf_is_trades",
             "wf_is_max_drawdown")
        )
        return SweepFigures(best, summary, pd.DataFrame({"combo": list(combos)}),
                            pd.DataFrame(), note, logits)
    oos = walk.oos_pnl[np.newaxis, :]
    hindsight = walk.hindsight_pnl[np.newaxis, :]
    summary |= {
        "wf_train_sessions": walk.train,
        "wf_test_sessions": walk.test,
        "wf_folds": len(walk.folds),
        "wf_oos_pnl": float(oos.sum()),
        "wf_oos_sharpe": float(metrics.sharpe(oos)[0]),
        "wf_oos_trades": int(walk.oos_trades.sum()),
        "wf_oos_max_drawdown": float(metrics.max_drawdown(oos)[0]),
        "wf_is_pnl": float(hindsight.sum()),
        "wf_is_sharpe": float(metrics.sharpe(hindsight)[0]),
        "wf_is_trades": int(walk.hindsight_trades.sum()),
        "wf_is_max_drawdown": float(metrics.max_drawdown(hindsight)[0]),
    }
    tested = daily[:, walk.first_test :]
    out_of_sample = pd.DataFrame({
        "combo": list(combos),
        "oos_sessions": tested.shape[1],
        "oos_trades": trades[:, walk.first_test :].sum(axis=1).astype(np.int64),
        "oos_pnl": metrics.total_pnl(tested),
        "oos_sharpe": metrics.sharpe(tested),
        "oos_sortino": metrics.sortino(tested),
        "oos_max_drawdown": metrics.max_drawdown(tested),
        "wf_picked": walk.picks(len(combos)),
    })
    picked = walk.picked_of_session()
    rows = pd.DataFrame({
        "session": np.array(dates[walk.first_test :], dtype="datetime64[D]"),
        "fold": walk.fold_of_session(),
        "combo": [combos[i] for i in picked],
        "pnl": walk.oos_pnl,
        "cum_pnl": np.cumsum(walk.oos_pnl),
        "hindsight_combo": combos[walk.hindsight],
        "hindsight_pnl": walk.hindsight_pnl,
        "hindsight_cum_pnl": np.cumsum(walk.hindsight_pnl),
    })
    return SweepFigures(best, summary, out_of_sample, rows, note, logits)
