"""The numbers of the sweep section, computed from a `Sweep`; no drawing, no I/O.

A heatmap over two parameters has one cell per pair of their values, and a sweep of more
parameters holds many combinations per cell. Each cell shows ONE combination: the best by the
metric among those sharing the cell's two values (the other parameters at whatever values did
best), so the map reads "the best this pair can do". The in-sample and out-of-sample maps use
the same rule with the choice made in sample: the out-of-sample cell shows what the
combination chosen in sample did afterwards, never the best out of sample (that would choose
with hindsight). A parameter with more values than a map has room for (a random grid) is cut
into equal-width bins.

In sample and out of sample, after a walk-forward TRAIN:TEST: the first TRAIN sessions (the
walk-forward's first training window) and the sessions after them (every session it traded out
of sample), so the two periods share no session. The stored `is_*` columns cover every session
and are what the whole-period map shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gexbot.errors import ConfigError
from gexbot.report.source import printable
from gexbot.report.sweepsource import METRIC_NAMES, Sweep
from gexbot.research import metrics
from gexbot.research.overfitting import (
    DsrResult,
    PboResult,
    deflated_sharpe,
    probability_of_backtest_overfitting,
    sharpe_ratios,
)

METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = dict(zip(
    METRIC_NAMES, (metrics.sharpe, metrics.sortino, metrics.total_pnl, metrics.max_drawdown),
    strict=True))
"""Each metric a map can show, as the sweep computes it from daily PnL."""
LOWER_IS_BETTER = frozenset({"max_drawdown"})
RANKING_DEFAULT = "sharpe"
MAX_LABELS = 30
"""Cells along a map's axis at most; more distinct values are binned."""


@dataclass(frozen=True)
class Axes:
    """The parameters on the maps' x and y axes; y is None when only one parameter varies."""

    x: str
    y: str | None


def distinct(results: pd.DataFrame, key: str) -> int:
    """How many values the sweep gave `key` (a missing value counts as one)."""
    return int(results[key].nunique(dropna=False))


def choose_axes(sweep: Sweep, x: str | None, y: str | None) -> Axes:
    """The parameters asked for; otherwise those with the most distinct values (ties: the
    grid's order). A parameter the sweep did not vary is refused in one line."""
    for option, name in (("--x", x), ("--y", y)):
        if name is not None and name not in sweep.keys:
            known = ", ".join(printable(k) for k in sweep.keys)
            raise ConfigError(f"{option} {printable(name)}: sweep {printable(sweep.key)} has no"
                              f" such parameter (it varied {known})")
    if x is not None and x == y:
        raise ConfigError(f"--x and --y both name {printable(x)}: choose two parameters")
    ranked = sorted((k for k in sweep.keys if distinct(sweep.results, k) > 1),
                    key=lambda k: -distinct(sweep.results, k))
    if x is None:
        x = next((k for k in ranked if k != y), None)
        if x is None:
            return Axes(y if y is not None else sweep.keys[0], None)
    if y is None:
        y = next((k for k in ranked if k != x), None)
    return Axes(x, y)


@dataclass(frozen=True)
class Labels:
    """An axis: each row's cell index, the cells' labels in order, and their numeric position
    (None for words)."""

    codes: np.ndarray
    names: list[str]
    positions: np.ndarray | None


def axis_labels(values: pd.Series, limit: int = MAX_LABELS) -> Labels:
    """Cells of one parameter: its values in order, or `limit` equal-width bins of them."""
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        text = values.map(lambda v: "n/a" if v is None or v != v else str(v))
        names = sorted(set(text))
        where = {name: i for i, name in enumerate(names)}
        return Labels(text.map(where).to_numpy(dtype=np.int64), names, None)
    numbers = values.to_numpy(dtype=np.float64)
    known = np.isfinite(numbers)
    unique = np.unique(numbers[known])
    if len(unique) <= limit:
        codes = np.searchsorted(unique, numbers)
        names, centres = _shortest(unique), unique
    else:
        edges = np.linspace(unique[0], unique[-1], limit + 1)
        codes = np.clip(np.searchsorted(edges, numbers, side="right") - 1, 0, limit - 1)
        low, high = _shortest(edges[:-1]), _shortest(edges[1:])
        names = [f"{a}–{b}" for a, b in zip(low, high, strict=True)]
        centres = (edges[:-1] + edges[1:]) / 2
    if not known.all():
        codes = np.where(known, codes, len(names))
        names = [*names, "n/a"]
        centres = np.append(centres, np.nan)
    return Labels(np.asarray(codes, dtype=np.int64), names, centres)


def _shortest(values: np.ndarray) -> list[str]:
    """The fewest significant digits (3 to 15) that keep distinct values apart."""
    for digits in range(3, 16):
        names = [f"{v:.{digits}g}" for v in values]
        if len(set(names)) == len(set(values.tolist())):
            return names
    return [repr(float(v)) for v in values]


@dataclass(frozen=True)
class Cells:
    """A map: the results row shown in each cell (-1 for none), and how many rows share it."""

    x: Labels
    y: Labels
    row: np.ndarray
    count: np.ndarray

    def values(self, column: np.ndarray) -> np.ndarray:
        """`column` (one value per results row) laid out on the map, NaN where no row is."""
        out = np.full(self.row.shape, np.nan)
        filled = self.row >= 0
        out[filled] = column[self.row[filled]]
        return out


def cells(results: pd.DataFrame, axes: Axes, score: np.ndarray, metric: str,
          limit: int = MAX_LABELS) -> Cells:
    """Each cell's combination: the best `score` (the metric) among the rows in it; ties go
    to the earlier row (the grid's order)."""
    x = axis_labels(results[axes.x], limit)
    y = (axis_labels(results[axes.y], limit) if axes.y is not None
         else Labels(np.zeros(len(results), dtype=np.int64), [""], None))
    worst = np.where(np.isfinite(score), score if metric in LOWER_IS_BETTER else -score, np.inf)
    flat = y.codes * len(x.names) + x.codes
    order = np.lexsort((worst, flat))
    first = np.ones(len(order), dtype=bool)
    first[1:] = flat[order][1:] != flat[order][:-1]
    row = np.full(len(y.names) * len(x.names), -1, dtype=np.int64)
    row[flat[order][first]] = order[first]
    count = np.bincount(flat, minlength=len(row))
    shape = (len(y.names), len(x.names))
    return Cells(x, y, row.reshape(shape), count.reshape(shape))


def stored(results: pd.DataFrame, column: str) -> np.ndarray:
    """A statistic column as floats, NaN where missing or not finite."""
    if column not in results:
        return np.full(len(results), np.nan)
    values = pd.to_numeric(results[column], errors="coerce").to_numpy(dtype=np.float64)
    return np.where(np.isfinite(values), values, np.nan)


@dataclass(frozen=True)
class Split:
    """In sample (the first `train` sessions) and out of sample (the rest): the metric of
    every combination over each."""

    train: int
    sessions: int
    inside: np.ndarray
    outside: np.ndarray


def split(sweep: Sweep, metric: str) -> Split | None:
    """The metric before and after the walk-forward's first out-of-sample session; None for a
    sweep without a walk-forward."""
    train = sweep.about.get("wf_train_sessions")
    if sweep.walk_forward.empty or train is None or train != train:
        return None
    train = int(train)
    if not 0 < train < len(sweep.dates):
        return None
    measure = METRICS[metric]
    return Split(train, len(sweep.dates), measure(sweep.daily[:, :train]),
                 measure(sweep.daily[:, train:]))


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of the pairs where both are known (ties at their average
    rank); NaN when fewer than two pairs or either side is constant."""
    known = np.isfinite(a) & np.isfinite(b)
    ranks_a = pd.Series(a[known]).rank().to_numpy()
    ranks_b = pd.Series(b[known]).rank().to_numpy()
    if known.sum() < 2 or np.ptp(ranks_a) == 0 or np.ptp(ranks_b) == 0:
        return math.nan
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def ranking_metric(sweep: Sweep) -> str:
    """What the sweep ranked its combinations by (sharpe when it did not get that far)."""
    name = sweep.about.get("metric")
    return str(name) if isinstance(name, str) and name in metrics.METRICS else RANKING_DEFAULT


def best_row(sweep: Sweep) -> int:
    """The sweep's best combination: the one it stored, else the best by its metric."""
    combos = sweep.results["combo"].astype(str).tolist()
    stored_best = sweep.about.get("best_combo")
    if isinstance(stored_best, str) and stored_best in combos:
        return int(combos.index(stored_best))
    score = metrics.METRICS[ranking_metric(sweep)](sweep.daily)
    return int(np.argmax(score))


@dataclass(frozen=True)
class Overfitting:
    """PBO with the logit of each split (None, and why, when it cannot be measured) and the
    deflated Sharpe ratio of the best, with every combination's Sharpe ratio per session."""

    pbo: PboResult | None
    pbo_note: str | None
    dsr: DsrResult
    trial_sharpes: np.ndarray
    best: int


def overfitting(sweep: Sweep) -> Overfitting:
    """The sweep's PBO with the logits it stored; measured again from the daily PnL, as the
    sweep measures it, only when it stored none (a sweep stopped before its figures)."""
    best = best_row(sweep)
    returns = sweep.daily.T
    pbo, note = stored_pbo(sweep), None
    if pbo is None:
        try:
            pbo = probability_of_backtest_overfitting(returns)
        except ValueError as problem:
            note = str(problem)
    trials = sharpe_ratios(returns)
    return Overfitting(pbo, note, deflated_sharpe(sweep.daily[best], trials), trials, best)


def stored_pbo(sweep: Sweep) -> PboResult | None:
    """PBO as the finished sweep stored it; None unless its figures and logits all agree."""
    about, logits = sweep.about, sweep.logits
    found = [_finite(about.get(k)) for k in ("pbo", "pbo_blocks", "pbo_splits", "pbo_oos_loss")]
    figures = [f for f in found if f is not None]
    complete = _finite(about.get("combinations")) == len(sweep.results)
    if logits is None or len(figures) < len(found) or not complete:
        return None
    pbo, blocks, splits, loss = figures
    if splits != len(logits) or abs(float(np.mean(logits <= 0.0)) - pbo) > 1e-9:
        return None
    return PboResult(pbo=pbo, logits=logits, blocks=int(blocks), splits=int(splits),
                     oos_loss_share=loss)


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def histogram(values: np.ndarray, bins: int = 40) -> tuple[np.ndarray, np.ndarray, float]:
    """Bin centres, counts and the bins' width, of the finite values; a single value gets one
    bar (as wide as a tenth of its size, at least 0.01, so it shows as a bar, not a band)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.array([]), np.array([], dtype=np.int64), 1.0
    low, high = float(finite.min()), float(finite.max())
    if high - low < 1e-12 * max(1.0, abs(low)):
        return np.array([low]), np.array([finite.size]), max(abs(low) / 10, 0.01)
    counts, edges = np.histogram(finite, bins=bins, range=(low, high))
    return (edges[:-1] + edges[1:]) / 2, counts, float(edges[1] - edges[0])


def setting(results: pd.DataFrame, keys: tuple[str, ...], row: int,
            leave_out: tuple[str | None, ...] = ()) -> str:
    """`key=value` of each parameter of one combination (the ones in `leave_out` left out)."""
    parts = []
    for key in keys:
        if key in leave_out:
            continue
        value = results[key].iloc[row]
        parts.append(f"{key}={value:.6g}" if isinstance(value, float) else f"{key}={value}")
    return ", ".join(parts)
