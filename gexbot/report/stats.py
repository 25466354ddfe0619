"""The numbers a report shows, computed from decision and trade frames; no drawing, no I/O.

Frames have the columns of `gexbot.report.source` (times in New York). Each function takes one
variant's rows and returns plain values or a small frame, so the figures and the page only
arrange what is computed here, and the tests check the numbers without a browser.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from gexbot.core.types import Action, Blocker
from gexbot.shell.notify import skip_kind

TRADING_DAYS_PER_YEAR = 252
ENTERED = frozenset({Action.LONG.value, Action.SHORT.value})
FEATURE_STAGE_PASS = frozenset({Blocker.BAND.value, Blocker.OFI.value, Blocker.KELLY.value})
BAND_STAGE_PASS = frozenset({Blocker.OFI.value, Blocker.KELLY.value})
FLOW_STAGE_PASS = frozenset({Blocker.KELLY.value})
FUNNEL_STAGES = ("minutes", "features allowed", "band breached", "order flow agreed", "entered")
"""The entry funnel, each stage a subset of the one before (see `funnel`)."""


@dataclass(frozen=True)
class Summary:
    """The headline figures of one variant over the period."""

    minutes: int
    days: int
    trades: int
    wins: int
    total_pnl: float
    start_balance: float | None
    end_balance: float | None
    max_drawdown_usd: float
    max_drawdown_pct: float
    sharpe: float | None
    skipped: int
    skipped_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def win_rate(self) -> float | None:
        """Share of trades with a positive PnL; None without trades."""
        return self.wins / self.trades if self.trades else None


def day_keys(times: pd.Series) -> np.ndarray:
    """The New York date of each time as numpy days (vectorized: `.dt.date` builds a Python
    object per row, seconds for a year of minutes)."""
    keys: np.ndarray = times.dt.tz_localize(None).to_numpy().astype("datetime64[D]")
    return keys


def as_dates(keys: np.ndarray) -> list[date]:
    """numpy days as `datetime.date` values."""
    return [key.item() for key in keys.astype("datetime64[D]")]


def summarize(decisions: pd.DataFrame, trades: pd.DataFrame) -> Summary:
    """Headline figures; drawdown on the balance after each minute (it moves only on exits)."""
    curve = equity_curve(decisions)
    daily = daily_returns(decisions, trades)
    skipped = decisions.loc[decisions["action"] == Action.SKIP.value, "reason"]
    kinds = skipped.map(lambda reason: skip_kind(reason if isinstance(reason, str) else None))
    pnl = trades["pnl"].astype(float)
    balance = decisions["balance"].dropna()
    return Summary(
        minutes=len(decisions),
        days=len(np.unique(day_keys(decisions["at"]))),
        trades=len(trades),
        wins=int((pnl > 0).sum()),
        total_pnl=float(pnl.sum()),
        start_balance=_day_start(decisions, trades),
        end_balance=float(balance.iloc[-1]) if not balance.empty else None,
        max_drawdown_usd=float((curve["peak"] - curve["balance"]).max()) if len(curve) else 0.0,
        # abs: drawdowns are ≤ 0, and the negation of a zero one would print as -0.00%
        max_drawdown_pct=float(abs(curve["drawdown"].min())) if len(curve) else 0.0,
        sharpe=sharpe(daily["return"]) if not daily.empty else None,
        skipped=len(skipped),
        skipped_by_kind={str(k): int(n) for k, n in kinds.value_counts().sort_index().items()},
    )


def _day_start(decisions: pd.DataFrame, trades: pd.DataFrame) -> float | None:
    """The balance before the period's first minute: its balance less what that minute closed."""
    rows = decisions.dropna(subset=["balance"])
    if rows.empty:
        return None
    first = rows.iloc[0]
    closed_then = trades.loc[trades["timestamp"] == first["at"], "pnl"].astype(float).sum()
    return float(first["balance"]) - float(closed_then)


def equity_curve(decisions: pd.DataFrame) -> pd.DataFrame:
    """Balance, running peak and drawdown (≤ 0, a fraction of the peak) where the balance moves.

    The balance changes only when a trade closes, so the minutes where it changes (plus the
    first and the last) describe the curve exactly, drawn as steps, in a few hundred points
    instead of a point per minute.
    """
    rows = decisions.dropna(subset=["balance"])
    if rows.empty:
        return pd.DataFrame({"at": [], "balance": [], "peak": [], "drawdown": []})
    balance = rows["balance"].to_numpy(dtype=float)
    keep = np.ones(len(balance), dtype=bool)
    keep[1:] = balance[1:] != balance[:-1]
    keep[-1] = True
    at = rows["at"].to_numpy()[keep]
    kept = balance[keep]
    peak = np.maximum.accumulate(kept)
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = np.where(peak > 0, kept / peak - 1.0, 0.0)
    return pd.DataFrame({"at": at, "balance": kept, "peak": peak, "drawdown": drawdown})


def daily_returns(decisions: pd.DataFrame, trades: pd.DataFrame) -> pd.DataFrame:
    """PnL and return of each session day present in `decisions` (0 on a day without trades).

    A day's return is its PnL over the balance it started with (its last balance less its PnL).
    """
    if decisions.empty:
        return pd.DataFrame({"date": [], "pnl": [], "return": []})
    closing = decisions["balance"].groupby(day_keys(decisions["at"]), sort=True).last()
    pnl = trades["pnl"].astype(float).groupby(day_keys(trades["timestamp"])).sum()
    frame = pd.DataFrame({"date": as_dates(closing.index.to_numpy()),
                          "closing": closing.to_numpy(dtype=float)})
    frame["pnl"] = pnl.reindex(closing.index, fill_value=0.0).to_numpy(dtype=float)
    opening = frame["closing"] - frame["pnl"]
    frame["return"] = np.where(opening > 0, frame["pnl"] / opening, np.nan)
    return frame[["date", "pnl", "return"]]


def sharpe(returns: pd.Series) -> float | None:
    """Annualized Sharpe ratio of daily returns (√252 × mean / std), None when undefined."""
    values = returns.dropna().to_numpy(dtype=float)
    if len(values) < 2:
        return None
    spread = float(np.std(values, ddof=1))
    if not spread > 0 or not math.isfinite(spread):
        return None
    return math.sqrt(TRADING_DAYS_PER_YEAR) * float(np.mean(values)) / spread


def _listed(decisions: pd.DataFrame) -> tuple[np.ndarray, list[frozenset[str]]]:
    """Each row's index into the distinct `blocked_by` texts, and those texts as name sets.

    A period holds a few hundred distinct lists among hundreds of thousands of minutes, so
    each is split once. Index -1: nothing listed (NULL or empty).
    """
    codes, texts = pd.factorize(decisions["blocked_by"].astype(object), use_na_sentinel=True)
    names = [frozenset(str(text).split(",")) if text else frozenset() for text in texts]
    return codes, names


def blockers(decisions: pd.DataFrame) -> pd.DataFrame:
    """Per condition of `blocked_by`: minutes it was among the blockers, and the sole blocker.

    Every row that lists blockers counts (a minute holding a position lists `position`).
    Conditions come in the engine's order; a name the engine does not use (a database written
    by something else) follows, as it was written.
    """
    codes, names = _listed(decisions)
    per_text = np.bincount(codes[codes >= 0], minlength=len(names))
    counts: dict[str, list[int]] = {b.value: [0, 0] for b in Blocker}
    for listed, minutes in zip(names, per_text, strict=True):
        for name in sorted(listed):
            entry = counts.setdefault(name, [0, 0])
            entry[0] += int(minutes)
            if len(listed) == 1:
                entry[1] += int(minutes)
    rows = [(name, any_, only) for name, (any_, only) in counts.items() if any_]
    return pd.DataFrame(rows, columns=["blocker", "minutes", "alone"])


def funnel(decisions: pd.DataFrame) -> list[tuple[str, int]]:
    """How many minutes reached each stage of an entry, from every minute to an entry.

    - minutes: every decided minute, skipped ones included;
    - features allowed: data usable and `blocked_by` lists nothing but band, ofi or kelly
      (flat, no cooldown, gap or flatten time, HMM LOW, GEX POSITIVE, Hurst below its
      threshold, every feature known);
    - band breached: of those, `band` not listed (spot outside the bands);
    - order flow agreed: of those, `ofi` not listed either (only `kelly` may remain);
    - entered: of those, the minute entered (action LONG or SHORT).
    """
    codes, names = _listed(decisions)

    def within(allowed: frozenset[str]) -> np.ndarray:
        passes = np.array([listed <= allowed for listed in names] + [True], dtype=bool)
        reached: np.ndarray = passes[codes]  # index -1 (nothing listed) reads the final True
        return reached

    action = decisions["action"].astype(object)
    usable = (action != Action.SKIP.value).to_numpy()
    features = usable & within(FEATURE_STAGE_PASS)
    band = features & within(BAND_STAGE_PASS)
    flow = band & within(FLOW_STAGE_PASS)
    entered = flow & action.isin(ENTERED).to_numpy()
    counts = [len(decisions), features.sum(), band.sum(), flow.sum(), entered.sum()]
    return [(stage, int(n)) for stage, n in zip(FUNNEL_STAGES, counts, strict=True)]


def trades_by(trades: pd.DataFrame, key: str) -> pd.DataFrame:
    """Trades grouped by `exit_reason`, `action` (the side) or `hour` (entry hour, New York):
    count, wins and PnL per group, in a stable order."""
    if key == "hour":
        groups = trades["entry_time"].dt.hour
    else:
        groups = trades[key].astype(object).where(trades[key].notna(), "n/a").astype(str)
    pnl = trades["pnl"].astype(float)
    frame = pd.DataFrame({"group": groups.to_numpy(), "pnl": pnl.to_numpy()})
    out = frame.groupby("group", sort=True).agg(
        trades=("pnl", "size"), wins=("pnl", lambda s: int((s > 0).sum())), pnl=("pnl", "sum")
    )
    return out.reset_index()


def envelope(x: np.ndarray, y: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """At most about 4 × `buckets` points that draw like the whole series (min/max downsampling).

    `y` holds no NaN (an equity curve never does).

    Each bucket of consecutive points keeps its first, lowest, highest and last point, in time
    order, so every peak and trough survives while a line never holds more points than the
    pixels it is drawn on.
    """
    n = len(y)
    if n <= 4 * buckets:
        return x, y
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep: list[int] = []
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        part = y[lo:hi]
        picks = {lo, hi - 1, lo + int(np.argmin(part)), lo + int(np.argmax(part))}
        keep.extend(sorted(picks))
    index = np.asarray(keep)
    return x[index], y[index]
