"""One plotly figure per chart of the report; each takes a frame of `stats` and returns a figure.

A figure with nothing to draw is None, and the page says so in words instead of showing an
empty frame. Every text that comes from the database goes through `plain` first: plotly reads
a small HTML dialect in labels and hover texts, and a skip reason or a variant name is data,
never markup.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gexbot.core.types import ExitReason
from gexbot.report import stats
from gexbot.shell.discord import EXIT_COLORS, GREY

REASON_COLORS = {reason.value: f"#{color:06x}" for reason, color in EXIT_COLORS.items()}
"""The exit reasons' colours, the same as on Discord."""
OTHER_COLOR = f"#{GREY:06x}"
PROFIT, LOSS = REASON_COLORS[ExitReason.TARGET.value], REASON_COLORS[ExitReason.STOP_LOSS.value]
LINE = "#34495e"
ACCENT = "#3498db"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
MARGIN = {"l": 56, "r": 16, "t": 40, "b": 40}
AMOUNT = ",.2~f"
"""Tick labels of dollars and prices: thousands separators, and cents only where the ticks need
them (a whole-number format shows 100,000 twice on a balance that moved by a dollar)."""
_AXIS = {"gridcolor": "#ecf0f1", "linecolor": "#bdc3c7", "zerolinecolor": "#d5dbdf",
         "automargin": True}
LEAN = go.layout.Template(layout={
    "paper_bgcolor": "white", "plot_bgcolor": "white", "xaxis": _AXIS, "yaxis": _AXIS,
    "colorway": [LINE, ACCENT, "#e67e22", "#8e44ad", "#16a085"],
})
"""A small template: plotly's own ones are copied into every figure and cost a second a page."""


def plain(text: object) -> str:
    """Database text as plotly shows it literally (its tags and entities escaped)."""
    return html.escape(str(text), quote=False)


def reason_color(reason: object) -> str:
    """The Discord colour of an exit reason, grey for any other text."""
    return REASON_COLORS.get(str(reason), OTHER_COLOR)


def style(fig: go.Figure, title: str, height: int) -> go.Figure:
    """The report's look: light, compact, the legend at the foot of the figure (above the plot,
    it runs into the title once a card is narrow; at the foot plotly makes room for it)."""
    fig.update_layout(
        template=LEAN,
        title={"text": plain(title), "x": 0.01, "font": {"size": 15}},
        height=height,
        margin=MARGIN,
        font={"family": FONT, "size": 12},
        legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0,
                "xanchor": "left"},
        hovermode="x unified",
    )
    return fig


def equity_figure(curve: pd.DataFrame, label: str) -> go.Figure | None:
    """Balance (steps: it moves only when a trade closes) and drawdown from the running peak."""
    if curve.empty:
        return None
    x, balance = stats.envelope(
        curve["at"].to_numpy(), curve["balance"].to_numpy(dtype=float), buckets=600
    )
    dx, drawdown = stats.envelope(
        curve["at"].to_numpy(), curve["drawdown"].to_numpy(dtype=float), buckets=600
    )
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32],
                        vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=x, y=balance, name="balance", line={"color": LINE, "shape": "hv"},
                             hovertemplate="$%{y:,.2f}"), row=1, col=1)
    fig.add_trace(go.Scatter(x=dx, y=drawdown * 100, name="drawdown", fill="tozeroy",
                             line={"color": LOSS, "shape": "hv"}, hovertemplate="%{y:.3f}%"),
                  row=2, col=1)
    fig.update_yaxes(title_text="balance $", tickformat=AMOUNT, row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)
    fig.update_xaxes(rangebreaks=[{"bounds": ["sat", "mon"]}])
    return style(fig, f"{label}: equity and drawdown", 420)


def daily_pnl_figure(daily: pd.DataFrame, label: str) -> go.Figure | None:
    """PnL of each session day, green for a gain and red for a loss."""
    if daily.empty:
        return None
    colors = [PROFIT if pnl >= 0 else LOSS for pnl in daily["pnl"]]
    fig = go.Figure(go.Bar(x=[str(d) for d in daily["date"]], y=daily["pnl"], marker_color=colors,
                           name="day PnL", hovertemplate="%{x}: $%{y:,.2f}<extra></extra>"))
    fig.update_xaxes(type="category", nticks=12)
    fig.update_yaxes(title_text="PnL $", tickformat=AMOUNT)
    return style(fig, f"{label}: PnL per session day", 300)


def blockers_figure(counts: pd.DataFrame, label: str) -> go.Figure | None:
    """Minutes each entry condition blocked: among others, and as the only one."""
    if counts.empty:
        return None
    names = [plain(name) for name in counts["blocker"]]
    fig = go.Figure()
    fig.add_trace(go.Bar(y=names, x=counts["minutes"], orientation="h", name="blocked",
                         marker_color=ACCENT, hovertemplate="%{y}: %{x} minutes<extra></extra>"))
    fig.add_trace(go.Bar(y=names, x=counts["alone"], orientation="h", name="the only blocker",
                         marker_color=LINE, hovertemplate="%{y} alone: %{x}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title_text="minutes")
    fig.update_layout(barmode="group", hovermode="closest")
    return style(fig, f"{label}: minutes blocked, by condition", 80 + 34 * len(names))


def funnel_figure(stages: list[tuple[str, int]], label: str) -> go.Figure | None:
    """Minutes → features allowed → band breached → order flow agreed → entered."""
    if not stages or stages[0][1] == 0:
        return None
    fig = go.Figure(go.Funnel(y=[name for name, _ in stages], x=[n for _, n in stages],
                              textinfo="value+percent initial", marker_color=ACCENT,
                              hovertemplate="%{y}: %{x} minutes<extra></extra>"))
    fig.update_layout(hovermode="closest")
    return style(fig, f"{label}: from a minute to an entry", 300)


def exit_reason_figure(by_reason: pd.DataFrame, label: str) -> go.Figure | None:
    """Trades per exit reason, in the reason's colour, with their PnL."""
    if by_reason.empty:
        return None
    fig = go.Figure(go.Bar(
        x=[plain(g) for g in by_reason["group"]], y=by_reason["trades"],
        marker_color=[reason_color(g) for g in by_reason["group"]],
        customdata=by_reason["pnl"], name="trades",
        hovertemplate="%{x}: %{y} trades, PnL $%{customdata:,.2f}<extra></extra>",
    ))
    fig.update_xaxes(type="category")
    fig.update_layout(hovermode="closest")
    return style(fig, f"{label}: trades by exit reason", 300)


def side_figure(by_side: pd.DataFrame, label: str) -> go.Figure | None:
    """Trades per side: won and lost, with their PnL."""
    if by_side.empty:
        return None
    sides = [plain(g) for g in by_side["group"]]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=sides, y=by_side["wins"], name="won", marker_color=PROFIT,
                         customdata=by_side["pnl"],
                         hovertemplate="%{x}: %{y} won, PnL $%{customdata:,.2f}<extra></extra>"))
    fig.add_trace(go.Bar(x=sides, y=by_side["trades"] - by_side["wins"], name="lost or flat",
                         marker_color=LOSS, hovertemplate="%{x}: %{y} not won<extra></extra>"))
    fig.update_xaxes(type="category")
    fig.update_layout(barmode="stack", hovermode="closest")
    return style(fig, f"{label}: trades by side", 300)


def hour_figure(trades: pd.DataFrame, label: str) -> go.Figure | None:
    """Trades per hour of entry (New York), stacked by exit reason."""
    if trades.empty:
        return None
    hours = trades["entry_time"].dt.hour
    fig = go.Figure()
    for reason in dict.fromkeys(trades["exit_reason"].astype(str)):
        mine = hours[trades["exit_reason"].astype(str) == reason].value_counts().sort_index()
        fig.add_trace(go.Bar(x=[f"{h:02d}:00" for h in mine.index], y=mine.to_numpy(),
                             name=plain(reason), marker_color=reason_color(reason),
                             hovertemplate="%{x}: %{y}<extra>%{fullData.name}</extra>"))
    fig.update_xaxes(type="category", categoryorder="category ascending", title_text="entry hour")
    fig.update_layout(barmode="stack", hovermode="closest")
    return style(fig, f"{label}: trades by hour of entry", 300)
