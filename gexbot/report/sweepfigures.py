"""One plotly figure per chart of the sweep section; each takes what `sweepstats` computed.

Parameter names, their word values, sweep and combination keys come from the results file and
are data: they go through `plain` before plotly sees them (it reads a small HTML dialect in
labels and hover texts). Columns of numbers go in as numpy arrays, which plotly writes as
packed binary, so a sweep of 10,000 combinations stays a small page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from gexbot.report.figures import ACCENT, LINE, LOSS, PROFIT, plain, style
from gexbot.report.sweepstats import LOWER_IS_BETTER, Cells, histogram

NAMES = {"sharpe": "Sharpe", "sortino": "Sortino", "pnl": "PnL $", "max_drawdown":
         "max drawdown $"}
"""How each metric is named on a chart."""
TEXT_CELLS = 300
"""Maps with at most this many cells print each value in its cell."""
BEST = {"color": "black", "size": 13, "symbol": "star", "line": {"color": "white", "width": 1}}


def metric_format(metric: str) -> str:
    """d3 format of a metric's values: dollars without cents, ratios with two decimals."""
    return ",.0f" if metric in ("pnl", "max_drawdown") else ".2f"


TICKS = ",~r"
"""d3 format of axis ticks: as many digits as the tick needs (a fixed number of decimals
labels the ticks of a narrow range alike, e.g. 0.5 and 1 both as 1)."""


def value_range(metric: str, *grids: np.ndarray) -> tuple[float, float]:
    """One colour range for maps shown side by side: symmetric about 0 for ratios and PnL (so
    white is breaking even), from 0 for drawdown."""
    finite = np.concatenate([g[np.isfinite(g)].ravel() for g in grids] + [np.zeros(1)])
    if metric in LOWER_IS_BETTER:
        return 0.0, float(finite.max()) or 1.0
    bound = float(np.abs(finite).max()) or 1.0  # every value 0: a scale of ±1, not of ±0
    return -bound, bound


def _hover(cells: Cells, texts: Mapping[int, str]) -> list[list[str]]:
    """Each cell's hover text: its combination's other parameters and how many it stood for."""
    rows, columns = cells.row.shape
    return [[f"{plain(texts[cells.row[i, j]])}<br>best of {cells.count[i, j]:,} combination(s)"
             if cells.row[i, j] >= 0 else "no combination" for j in range(columns)]
            for i in range(rows)]


def heatmap_figure(cells: Cells, grid: np.ndarray, x: str, y: str, metric: str, title: str,
                   texts: Mapping[int, str], best: tuple[int, int] | None,
                   zrange: tuple[float, float]) -> go.Figure:
    """`grid` (a value per cell, NaN for none) over two parameters; the cell holding the
    sweep's best combination is outlined."""
    size = grid.size
    fmt = metric_format(metric)
    fig = go.Figure(go.Heatmap(
        x=[plain(n) for n in cells.x.names], y=[plain(n) for n in cells.y.names],
        z=[[None if not math.isfinite(v) else float(v) for v in row] for row in grid],
        zmin=zrange[0], zmax=zrange[1],
        colorscale="RdYlGn_r" if metric in LOWER_IS_BETTER else "RdYlGn",
        colorbar={"title": {"text": NAMES[metric]}, "thickness": 12},
        text=_hover(cells, texts), texttemplate=f"%{{z:{fmt}}}" if size <= TEXT_CELLS else None,
        hovertemplate=f"{plain(x)} %{{x}}<br>{plain(y)} %{{y}}<br>{NAMES[metric]}"
        f" %{{z:{fmt}}}<br>%{{text}}<extra></extra>", hoverongaps=False, xgap=1, ygap=1,
    ))
    if best is not None:  # category axes place cell j at j, so its edges are j ± 0.5
        row, column = best
        fig.add_shape(type="rect", x0=column - 0.5, x1=column + 0.5, y0=row - 0.5,
                      y1=row + 0.5, line={"color": "black", "width": 3})
    fig.update_xaxes(title_text=plain(x), type="category", showgrid=False)
    fig.update_yaxes(title_text=plain(y), type="category", showgrid=False)
    fig.update_layout(hovermode="closest")
    return style(fig, title, 440)


def line_figure(cells: Cells, lines: dict[str, np.ndarray], x: str, metric: str, title: str,
                texts: Mapping[int, str]) -> go.Figure:
    """The one-parameter map: the metric of each value's best combination, one line a period."""
    numeric = cells.x.positions is not None and np.isfinite(cells.x.positions).all()
    xs = cells.x.positions if numeric else [plain(n) for n in cells.x.names]
    hover = [row[0] for row in zip(*_hover(cells, texts), strict=True)]
    fig = go.Figure()
    colours = [LINE, ACCENT, "#e67e22"]
    for (name, values), colour in zip(lines.items(), colours, strict=False):
        fig.add_trace(go.Scatter(
            x=xs, y=[None if not math.isfinite(v) else float(v) for v in values[0]],
            name=name, mode="lines+markers", line={"color": colour}, text=hover,
            hovertemplate=f"%{{x}}: %{{y:{metric_format(metric)}}}<br>%{{text}}"
            f"<extra>{name}</extra>",
        ))
    fig.update_xaxes(title_text=plain(x), type="linear" if numeric else "category")
    fig.update_yaxes(title_text=NAMES[metric], tickformat=TICKS)
    fig.update_layout(hovermode="closest")
    return style(fig, title, 400)


def in_out_figure(inside: np.ndarray, outside: np.ndarray, metric: str, title: str,
                  customdata: np.ndarray, hover: str, picked: np.ndarray,
                  best: int) -> go.Figure:
    """Each combination's in-sample against its out-of-sample metric, with the diagonal
    (as good out of sample as in), the walk-forward's picks and the sweep's best marked."""
    fmt = metric_format(metric)
    template = (f"in sample %{{x:{fmt}}}<br>out of sample %{{y:{fmt}}}<br>{hover}"
                "<extra>%{fullData.name}</extra>")
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=inside, y=outside, mode="markers", name="combinations", customdata=customdata,
        marker={"color": ACCENT, "size": 5, "opacity": 0.55}, hovertemplate=template,
    ))
    chosen = np.flatnonzero(picked > 0)
    if chosen.size:
        fig.add_trace(go.Scatter(
            x=inside[chosen], y=outside[chosen], mode="markers", customdata=customdata[chosen],
            name="picked by the walk-forward", hovertemplate=template,
            marker={"color": "#e67e22", "size": 7 + 2 * np.minimum(picked[chosen], 8),
                    "symbol": "diamond", "line": {"color": "white", "width": 1}},
        ))
    fig.add_trace(go.Scatter(x=inside[best : best + 1], y=outside[best : best + 1],
                             customdata=customdata[best : best + 1], mode="markers",
                             marker=BEST, name="the sweep's best", hovertemplate=template))
    finite = np.concatenate([inside[np.isfinite(inside)], outside[np.isfinite(outside)]])
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", hoverinfo="skip",
                                 name="out = in", line={"color": "#bdc3c7", "dash": "dash"}))
    fig.update_xaxes(title_text=f"in sample: {NAMES[metric]}", tickformat=TICKS)
    fig.update_yaxes(title_text=f"out of sample: {NAMES[metric]}", tickformat=TICKS)
    fig.update_layout(hovermode="closest")
    return style(fig, title, 460)


def walk_forward_figure(walk: pd.DataFrame, traded: list[str]) -> go.Figure | None:
    """The stitched out-of-sample equity beside the hindsight-best combination's over the same
    sessions; dashed lines where a new training window chose again."""
    if walk.empty:
        return None
    days = [f"{d:%Y-%m-%d}" for d in pd.to_datetime(walk["session"])]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=days, y=walk["cum_pnl"].to_numpy(dtype=float), name="walk-forward, out of sample",
        line={"color": LINE, "width": 2}, text=[plain(t) for t in traded],
        customdata=walk[["fold", "pnl"]].to_numpy(dtype=float),
        hovertemplate="%{x}: $%{y:,.2f} (session $%{customdata[1]:,.2f}, fold"
        " %{customdata[0]})<br>%{text}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=days, y=walk["hindsight_cum_pnl"].to_numpy(dtype=float),
        name="best with hindsight (in sample)", line={"color": PROFIT, "dash": "dot"},
        hovertemplate="%{x}: $%{y:,.2f}<extra>hindsight</extra>",
    ))
    folds = walk["fold"].to_numpy()
    fig.update_layout(shapes=[  # one by one, add_vline costs a fortieth of a second each
        {"type": "line", "xref": "x", "yref": "paper", "x0": days[i], "x1": days[i], "y0": 0,
         "y1": 1, "line": {"color": "#bdc3c7", "width": 1, "dash": "dash"}}
        for i in np.flatnonzero(folds[1:] != folds[:-1]) + 1
    ])
    fig.update_xaxes(type="date", rangebreaks=[{"bounds": ["sat", "mon"]}])
    fig.update_yaxes(title_text="cumulative PnL $", tickformat=TICKS)
    return style(fig, "Walk-forward equity: out of sample, stitched", 420)


def pbo_figure(logits: np.ndarray, pbo: float, splits: int) -> go.Figure:
    """The distribution of the logit λ of the in-sample best's out-of-sample rank over the
    splits: PBO is the share at or left of 0 (the best in sample ranked in the lower half)."""
    centres, counts, width = histogram(logits)
    colours = [LOSS if c <= 0 else PROFIT for c in centres]
    fig = go.Figure(go.Bar(x=centres, y=counts, width=width, marker_color=colours, name="splits",
                           hovertemplate="λ %{x:.2f}: %{y} splits<extra></extra>"))
    fig.add_vline(x=0, line={"color": LINE, "width": 1, "dash": "dash"})
    fig.update_xaxes(title_text="λ = logit of the in-sample best's out-of-sample rank")
    fig.update_yaxes(title_text="splits")
    fig.update_layout(hovermode="closest", bargap=0.05)
    return style(fig, f"PBO {pbo:.2f}: λ ≤ 0 in {pbo:.0%} of {splits:,} splits", 340)


def dsr_figure(trial_sharpes: np.ndarray, best: float, benchmark: float,
               dsr: float) -> go.Figure:
    """Every combination's Sharpe ratio per session, the best's, and SR₀: what the best of as
    many luck-only trials would show (each label on the outer side of its line, so two close
    lines do not print one label over the other)."""
    centres, counts, width = histogram(trial_sharpes)
    fig = go.Figure(go.Bar(x=centres, y=counts, width=width, marker_color=ACCENT,
                           name="combinations",
                           hovertemplate="Sharpe %{x:.3f}: %{y}<extra></extra>"))
    fig.add_vline(x=benchmark, line={"color": LOSS, "width": 2, "dash": "dash"},
                  annotation_text=f"SR₀ {benchmark:.3f}",
                  annotation_position="top right" if benchmark > best else "top left")
    fig.add_vline(x=best, line={"color": LINE, "width": 2},
                  annotation_text=f"best {best:.3f}",
                  annotation_position="top left" if benchmark > best else "top right")
    fig.update_xaxes(title_text="Sharpe ratio per session (not annualised)")
    fig.update_yaxes(title_text="combinations")
    fig.update_layout(hovermode="closest", bargap=0.05)
    verdict = "n/a (the best never traded)" if not math.isfinite(dsr) else f"{dsr:.2f}"
    return style(fig, f"Deflated Sharpe ratio of the best: {verdict}", 340)
