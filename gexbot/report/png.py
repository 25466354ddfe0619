"""The session day as a PNG for Discord: price, bands and trades, drawn with matplotlib.

Plotly's own image export needs a browser, which the daemon's image has not; matplotlib's Agg
backend draws in-process. The figure is built with the object API (no pyplot and its global
state), so drawing on the Discord thread while the loop runs is safe.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from gexbot.core.types import GexRegime, SessionEnded
from gexbot.report.figures import LINE, reason_color
from gexbot.report.source import Ledger
from gexbot.shell.notify import signed_usd

SIZE_IN = (10.0, 5.0)
DPI = 100
NEGATIVE_TINT = "#e74c3c"


def day_png(ledger: Ledger, ended: SessionEnded) -> bytes:
    """A 1000 × 500 PNG of the day in `ledger`: spot, bands, GEX-negative stretches tinted,
    entries (▲ long, ▼ short) and exits (●) in their exit reason's colour."""
    rows = ledger.decisions
    day = ended.session_date
    if not np.isfinite(rows["spot"].to_numpy(dtype=float)).any():
        raise ValueError(f"no price recorded on {day}: nothing to draw")
    times = rows["at"].dt.tz_localize(None).to_numpy()
    fig = Figure(figsize=SIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.fill_between(times, rows["band_lower"].to_numpy(dtype=float),
                    rows["band_upper"].to_numpy(dtype=float), color="#95a5a6", alpha=0.18,
                    linewidth=0, label="bands")
    ax.plot(times, rows["band_mid"].to_numpy(dtype=float), color="#95a5a6", linewidth=0.8)
    ax.plot(times, rows["spot"].to_numpy(dtype=float), color=LINE, linewidth=1.3, label="spot")
    negative = (rows["gex_regime"] == GexRegime.NEGATIVE.value).to_numpy()
    if negative.any():
        ymin, ymax = ax.get_ylim()
        ax.fill_between(times, ymin, ymax, where=negative, color=NEGATIVE_TINT, alpha=0.08,
                        linewidth=0, label="GEX negative")
        ax.set_ylim(ymin, ymax)
    for trade in ledger.trades.to_dict("records"):
        color = reason_color(trade["exit_reason"])
        if trade["entry_time"].date() == day:
            marker = "v" if trade["action"] == "SHORT" else "^"
            ax.plot(trade["entry_time"].tz_localize(None), trade["entry_price"], marker=marker,
                    color=color, markersize=9, markeredgecolor="white")
        if trade["timestamp"].date() == day:
            ax.plot(trade["timestamp"].tz_localize(None), trade["price"], marker="o",
                    color=color, markersize=8, markeredgecolor="white")
    title = (f"{ended.variant.upper()} {day:%Y-%m-%d}: {ended.trades} trades,"
             f" day PnL {signed_usd(ended.pnl)}")
    ax.set_title(title.replace("$", r"\$"), loc="left", fontsize=12)
    ax.grid(True, color="#ecf0f1")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()

