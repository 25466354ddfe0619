"""The per-day chart: price with bands and trades, regime shading, Hurst and OFI beneath.

A year holds some 250 session days per variant, and a complete plotly figure per day would make
the page several times larger and slower to write. So the page carries one empty figure per
variant (`day_figure`, its traces named in `meta`) and each day's columns packed small: prices
and features as 32-bit floats, base64-encoded (about 12 kB a day), minute offsets as 16-bit
integers only when the day has a gap, regime changes as runs, trades as short lists. `days.js`
unpacks the day the selector names into the figure's traces; nothing is drawn for a day until
it is chosen. Each day holds at most a session's
minutes, fewer points than the chart has pixels, so nothing needs thinning.

Times are New York wall-clock times written as if they were UTC milliseconds: plotly draws
dates in UTC, and a session read in New York time is what a trader expects.
"""

from __future__ import annotations

import base64
import itertools
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gexbot.core.types import Action, ExitReason, GexRegime, HmmState
from gexbot.errors import ConfigError
from gexbot.report.figures import AMOUNT, LINE, MARGIN, OTHER_COLOR, REASON_COLORS, plain, style
from gexbot.report.stats import day_keys
from gexbot.settings import load_variant
from gexbot.shell.notify import price, signed_usd, skip_kind

REASON_SLOTS = (*(reason.value for reason in ExitReason), "other")
"""One trade trace per exit reason, in this order; any other text goes to the last."""
GEX_CODES = {GexRegime.POSITIVE.value: 1, GexRegime.NEGATIVE.value: 2}
HMM_CODES = {HmmState.LOW.value: 1, HmmState.HIGH.value: 2}
SHADES = {
    "tint": {1: "rgba(46, 204, 113, 0.10)", 2: "rgba(231, 76, 60, 0.13)"},
    "gex": {1: "rgba(46, 204, 113, 0.75)", 2: "rgba(231, 76, 60, 0.75)"},
    "hmm": {1: "rgba(52, 152, 219, 0.45)", 2: "rgba(52, 73, 94, 0.75)"},
}
"""Shading of a regime run by code: GEX tints the price panel (`tint`) and fills its lane,
HMM fills its own lane."""
SHIPPED_PRESETS = ("es", "nq")
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Thresholds:
    """Reference lines under Hurst and OFI: the entry thresholds of the variant's preset."""

    hurst: float
    ofi_short_below: float
    ofi_long_above: float


def shipped_thresholds(variant: str) -> Thresholds | None:
    """The shipped preset's thresholds for es and nq; None for any other variant name."""
    if variant not in SHIPPED_PRESETS:
        return None
    try:
        strategy = load_variant(variant).strategy
    except ConfigError:
        return None
    return Thresholds(strategy.hurst.threshold, strategy.ofi.short_below, strategy.ofi.long_above)


def day_figure(thresholds: Thresholds | None) -> go.Figure:
    """The empty per-day figure of a variant: four rows on one time axis, traces named by meta.

    Rows: price with the bands (tinted by GEX regime) and the trades; the regime lanes (GEX,
    HMM); Hurst; OFI. `days.js` fills in the traces and shapes of the chosen day.
    """
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.025,
                        row_heights=[0.56, 0.08, 0.18, 0.18])
    band = {"color": "#7f8c8d", "width": 1, "dash": "dot"}
    fig.add_trace(go.Scatter(name="upper band", meta="upper", line=band, hoverinfo="skip",
                             showlegend=False), row=1, col=1)
    fig.add_trace(go.Scatter(name="bands", meta="lower", line=band, fill="tonexty",
                             fillcolor="rgba(127, 140, 141, 0.12)", hoverinfo="skip"), row=1, col=1)
    fig.add_trace(go.Scatter(name="band mid", meta="mid", line={"color": "#95a5a6", "width": 1},
                             hovertemplate="mid %{y:,.2f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(name="spot", meta="spot", line={"color": LINE, "width": 1.6},
                             hovertemplate="%{y:,.2f}<extra>spot</extra>"), row=1, col=1)
    for slot in REASON_SLOTS:
        color = REASON_COLORS.get(slot, OTHER_COLOR)
        fig.add_trace(go.Scatter(
            name=slot, meta=f"trades:{slot}", mode="lines+markers",
            line={"color": color, "width": 1, "dash": "dash"},
            marker={"color": color, "size": 11, "line": {"color": "white", "width": 1}},
            hovertemplate="%{hovertext}<extra></extra>",
        ), row=1, col=1)
    fig.add_trace(go.Scatter(name="Hurst", meta="hurst", line={"color": "#8e44ad", "width": 1.2},
                             hovertemplate="Hurst %{y:.2f}<extra></extra>"), row=3, col=1)
    fig.add_trace(go.Scatter(name="OFI", meta="ofi", line={"color": "#16a085", "width": 1.2},
                             hovertemplate="OFI %{y:.2f}<extra></extra>"), row=4, col=1)
    if thresholds is not None:
        for row, level in ((3, thresholds.hurst), (4, thresholds.ofi_short_below),
                           (4, thresholds.ofi_long_above)):
            fig.add_hline(y=level, line={"color": "#bdc3c7", "width": 1, "dash": "dash"},
                          row=row, col=1)
    fig.update_yaxes(title_text="price", tickformat=AMOUNT, row=1, col=1)
    fig.update_yaxes(range=[0, 2], tickvals=[0.5, 1.5], ticktext=["HMM", "GEX"], showgrid=False,
                     fixedrange=True, zeroline=False, row=2, col=1)
    fig.update_yaxes(title_text="Hurst", row=3, col=1)
    fig.update_yaxes(title_text="OFI", row=4, col=1)
    fig.update_xaxes(type="date", tickformat="%H:%M", hoverformat="%H:%M")
    style(fig, "", 640)
    fig.update_layout(hovermode="x", margin={**MARGIN, "t": 56},
                      legend={"font": {"size": 11}, "yref": "paper", "y": 1.02,
                              "yanchor": "bottom"})
    return fig


def pack(values: np.ndarray, dtype: str) -> str:
    """Little-endian binary of `values` as `dtype`, base64: what days.js turns into typed arrays."""
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def wall_ms(times: pd.Series) -> np.ndarray:
    """New York wall-clock times as milliseconds since the epoch read as UTC (plotly's dates)."""
    naive = times.dt.tz_localize(None).astype("datetime64[ms]")
    ms: np.ndarray = naive.to_numpy().astype(np.int64)
    return ms


def runs(codes: np.ndarray) -> list[list[int]]:
    """[first index, last index, code] of each run of equal non-zero codes."""
    if len(codes) == 0:
        return []
    changes = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = np.concatenate(([0], changes))
    ends = np.concatenate((changes, [len(codes)])) - 1
    values = codes[starts]
    kept = values != 0
    return [[int(a), int(b), int(c)] for a, b, c in
            zip(starts[kept], ends[kept], values[kept], strict=True)]


COLUMNS = (("spot", "spot"), ("upper", "band_upper"), ("mid", "band_mid"),
           ("lower", "band_lower"), ("hurst", "hurst"), ("ofi", "ofi"))
"""Packed name and decision column of each line the day chart draws."""


def variant_days(decisions: pd.DataFrame, trades: pd.DataFrame) -> dict[str, dict[str, object]]:
    """Every session day of one variant (rows oldest first), packed, keyed by ISO date.

    The columns are converted once for the whole period and cut at the day boundaries: a year
    of minutes packs in a fraction of a second.
    """
    if decisions.empty:
        return {}
    ms = wall_ms(decisions["at"])
    dates = day_keys(decisions["at"])
    cuts = [0, *(np.flatnonzero(dates[1:] != dates[:-1]) + 1).tolist(), len(ms)]
    values = {name: decisions[column].to_numpy(dtype=np.float32) for name, column in COLUMNS}
    gex = decisions["gex_regime"].map(GEX_CODES).fillna(0).to_numpy(dtype=np.int8)
    hmm = decisions["hmm_state"].map(HMM_CODES).fillna(0).to_numpy(dtype=np.int8)
    skipped = (decisions["action"] == Action.SKIP.value).to_numpy()
    by_day = _trades_by_day(trades)
    packed: dict[str, dict[str, object]] = {}
    for lo, hi in itertools.pairwise(cuts):
        session: date = dates[lo].item()
        mine = by_day.get(session, [])
        t0 = int(ms[lo])
        offsets = (ms[lo:hi] - t0) // MINUTE_MS
        consecutive = bool(offsets[-1] == hi - lo - 1)
        day: dict[str, object] = {
            "t0": t0,
            "off": None if consecutive else pack(offsets, "<u2"),
            "gex": runs(gex[lo:hi]),
            "hmm": runs(hmm[lo:hi]),
            "trades": [_trade_marks(trade, session) for trade in mine],
            "head": _headline(hi - lo, int(skipped[lo:hi].sum()), mine, session),
            "note": _skipped_note(decisions["reason"].iloc[lo:hi])
            if bool(skipped[lo:hi].all())
            else None,
        }
        for name, column in values.items():
            day[name] = pack(column[lo:hi], "<f4")
        packed[session.isoformat()] = day
    return packed


def _trades_by_day(trades: pd.DataFrame) -> dict[date, list[dict[str, Any]]]:
    """Each trade under the day it entered and the day it exited (once when they are one)."""
    found: dict[date, list[dict[str, Any]]] = {}
    for trade in trades.to_dict("records"):
        for day in dict.fromkeys((trade["entry_time"].date(), trade["timestamp"].date())):
            found.setdefault(day, []).append(trade)
    return found


def _trade_marks(trade: dict[str, Any], session: date) -> list[object]:
    """[slot, entry ms, entry price, exit ms, exit price, side, entry text, exit text]; the
    entry or exit that falls on another day is null."""
    reason = str(trade["exit_reason"])
    slot = REASON_SLOTS.index(reason) if reason in REASON_SLOTS[:-1] else len(REASON_SLOTS) - 1
    side = str(trade["action"])
    entry_time: datetime = trade["entry_time"]
    exit_time: datetime = trade["timestamp"]
    entry_price, exit_price = float(trade["entry_price"]), float(trade["price"])
    pnl = float(trade["pnl"])
    entered_today = entry_time.date() == session
    exited_today = exit_time.date() == session
    return [
        slot,
        _ms(entry_time) if entered_today else None,
        _finite(entry_price) if entered_today else None,
        _ms(exit_time) if exited_today else None,
        _finite(exit_price) if exited_today else None,
        -1 if side == "SHORT" else 1,
        plain(f"{side} entry {entry_time:%H:%M} at {price(entry_price)}"),
        plain(f"{side} exit {exit_time:%H:%M} at {price(exit_price)}: {reason} {signed_usd(pnl)}"),
    ]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _ms(moment: datetime) -> int:
    return int(pd.Timestamp(moment).tz_localize(None).value // 1_000_000)


def _headline(minutes: int, skipped: int, trades: list[dict[str, Any]], session: date) -> str:
    closed = [t for t in trades if t["timestamp"].date() == session]
    pnl = sum(float(t["pnl"]) for t in closed)
    count = len(closed)
    return (
        f"{session:%a %Y-%m-%d}: {minutes} minutes, {count} trade{'s' if count != 1 else ''}"
        f" closed, day PnL {signed_usd(pnl)}, {skipped} skipped"
    )


def _skipped_note(reasons: pd.Series) -> str:
    kinds = reasons.map(lambda r: skip_kind(r if isinstance(r, str) else None))
    counts = ", ".join(f"{kind} {n}" for kind, n in kinds.value_counts().items())
    return f"Every minute of this day was skipped for bad market data ({counts}): no chart."
