"""The sweep sections of the report: the grid, in sample against out of sample, the
walk-forward, and how far to trust the best (PBO, deflated Sharpe ratio).

`sweep_sections` lays out what `sweepstats` computes and `sweepfigures` draws; a chart with
nothing to draw (a sweep without a walk-forward, too few sessions for PBO) is a sentence saying
why. Text from the results file reaches the page through `html.escape` (markup) and `plain`
(plotly), never as markup.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gexbot.report import sweepfigures as draw
from gexbot.report import sweepstats as calc
from gexbot.report.figures import plain
from gexbot.report.page import figure_html
from gexbot.report.sweepsource import Sweep
from gexbot.shell.notify import signed_usd, usd

NO_WALK_FORWARD = ("No out-of-sample period: this sweep ran without --walk-forward"
                   " TRAIN:TEST. PBO below still measures overfitting, over every way of"
                   " splitting the sessions in halves.")
UNFINISHED = ("No out-of-sample period yet: the sweep stopped before its walk-forward (if it"
              " was asked for one). PBO below is measured over the combinations stored.")


def sweep_sections(sweep: Sweep, x: str | None, y: str | None, metric: str | None) -> list[str]:
    """The page's sections of `sweep`; `x`, `y` and `metric` as the command line gave them."""
    axes = calc.choose_axes(sweep, x, y)
    metric = metric if metric is not None else calc.ranking_metric(sweep)
    fit = calc.overfitting(sweep)
    return [
        _about_section(sweep),
        _grid_section(sweep, axes, metric, fit.best),
        _in_out_section(sweep, axes, metric, fit.best),
        _trust_section(sweep, fit),
    ]


def sweep_title(sweep: Sweep) -> str:
    """The page title of a report of a sweep alone."""
    return f"gexbot sweep {sweep.key}: {str(sweep.about.get('variant') or '').upper()}"


def _text(value: object) -> str:
    """A cell of the results file as text: missing values are n/a."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    try:
        if value != value:  # NaT, pd.NA
            return "n/a"
    except (TypeError, ValueError):
        return "n/a"
    return str(value)


def _number(value: object, fmt: str = ".2f") -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "n/a"
    return f"{number:{fmt}}" if math.isfinite(number) else "n/a"


def _dollars(value: object, *, signed: bool = True) -> str:
    text = _number(value)
    if text == "n/a":
        return text
    return signed_usd(float(text)) if signed else usd(float(text))


def _day(value: object) -> str:
    return _text(value)[:10]


def _data(text: object) -> str:
    """The sweep's data in words (the `data` column is JSON)."""
    try:
        data = json.loads(str(text))
    except ValueError:
        return _text(text)
    if not isinstance(data, dict):
        return _text(text)
    if data.get("source") == "sim":
        return (f"simulated market, seed {_text(data.get('seed'))}, {_text(data.get('days'))}"
                f" sessions from {_text(data.get('start'))}")
    replay = data.get("replay")
    if isinstance(replay, list):
        return "recordings " + ", ".join(_text(p) for p in replay)
    return _text(text)


def _table(table_id: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return (f'<div class="scroll"><table id="{table_id}"><thead><tr>{header}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def finished(sweep: Sweep) -> bool:
    """Whether the sweep stored every combination and then its figures (the ranking metric
    is the last thing it writes, with the summary)."""
    return (_number(sweep.about.get("combinations"), ".0f") == str(len(sweep.results))
            and sweep.about.get("metric") is not None)


def _about_section(sweep: Sweep) -> str:
    about = sweep.about
    stored, total = len(sweep.results), about.get("combinations")
    lines = [
        f"{_text(about.get('variant')).upper()} over {len(sweep.dates)} sessions,"
        f" {_day(sweep.dates[0])} to {_day(sweep.dates[-1])}: {_data(about.get('data'))}.",
        f"Grid {_text(about.get('grid'))}: {', '.join(sweep.keys)};"
        f" {stored:,} combinations; ranked by {calc.ranking_metric(sweep)}.",
    ]
    banner = ""
    if _number(total, ".0f") != str(stored):
        banner = (f"Only {stored:,} of {_number(total, ',.0f')} combinations are stored (the"
                  " sweep was stopped, or is still running); everything below is of those. The same"
                  " python -m gexbot.sweep command computes the rest.")
    elif not finished(sweep):
        banner = ("The sweep stored every combination but not yet its figures (it was stopped"
                  " at the end, or is finishing); run the same python -m gexbot.sweep command"
                  " again to complete them.")
    rows = [
        ("▶ shown" if str(row["sweep"]) == sweep.key else "", _text(row["sweep"]),
         _text(row["variant"]).upper(), _text(row["grid"]), _keys_of(row["keys"]),
         f"{int(row['stored']):,} of {_number(row['combinations'], ',.0f')}",
         _text(row["sessions"]),
         f"{_day(row['first_session'])} to {_day(row['last_session'])}", _text(row["metric"]),
         _number(row["best_metric"]), _number(row["pbo"]), _number(row["dsr"]))
        for row in sweep.listing.to_dict("records")
    ]
    listing = _table("sweeps", ["", "sweep", "variant", "grid", "parameters", "combinations",
                                "sessions", "period", "ranked by", "best", "PBO", "DSR"], rows)
    pick = (" <code>--sweep-id KEY</code> (or the start of it) shows another one."
            if len(rows) > 1 else "")
    return (
        f"<section><h2>Parameter sweep {html.escape(sweep.key)}</h2>"
        + "".join(f'<p class="muted">{html.escape(line)}</p>' for line in lines)
        + (f'<p class="banner">{html.escape(banner)}</p>' if banner else "")
        + f'<p class="muted">Sweeps in {html.escape(str(sweep.path))}, oldest first;'
        f" the latest is shown unless asked.{pick}</p>{listing}</section>"
    )


def _keys_of(text: object) -> str:
    try:
        keys = json.loads(str(text))
    except ValueError:
        return _text(text)
    return ", ".join(_text(k) for k in keys) if isinstance(keys, list) else _text(text)


def _hover_texts(sweep: Sweep, cells: calc.Cells, axes: calc.Axes) -> dict[int, str]:
    rows = {int(r) for r in cells.row.ravel() if r >= 0}
    return {r: calc.setting(sweep.results, sweep.keys, r, (axes.x, axes.y)) for r in rows}


def _best_cell(cells: calc.Cells, best: int) -> tuple[int, int]:
    return int(cells.y.codes[best]), int(cells.x.codes[best])


def _rule(sweep: Sweep, axes: calc.Axes, metric: str) -> str:
    others = [k for k in sweep.keys if k not in (axes.x, axes.y)]
    word = "lowest" if metric in calc.LOWER_IS_BETTER else "highest"
    rule = (f"Each cell shows one combination: of those with the cell's {axes.x}"
            + (f" and {axes.y}" if axes.y else "") + f", the one with the {word} {metric}"
            + (f" whatever its {', '.join(others)}." if others else "."))
    options = (" --x and --y choose the parameters (default: the two with the most values),"
               " --metric the statistic"
               + ("; the outlined cell holds the sweep's best combination." if axes.y else "."))
    return f'<p class="muted">{html.escape(rule + options)}</p>'


def _grid_section(sweep: Sweep, axes: calc.Axes, metric: str, best: int) -> str:
    column = calc.stored(sweep.results, f"is_{metric}")
    cells = calc.cells(sweep.results, axes, column, metric)
    texts = _hover_texts(sweep, cells, axes)
    title = f"{draw.NAMES[metric]} over every session"
    if len(sweep.results) == 1:
        card = figure_html(None, "sweep-grid", "The sweep holds a single combination: there is"
                           " no grid to map.")
    elif not np.isfinite(column).any():
        card = figure_html(None, "sweep-grid", f"No combination has a {metric} in the results"
                           f" file (is_{metric} is missing or not a number in every row):"
                           " nothing to map.")
    elif axes.y is None:
        note = f"Only {axes.x} varies in this sweep: a line instead of a map."
        card = (f'<p class="muted">{html.escape(note)}</p>' + figure_html(draw.line_figure(
            cells, {"every session": cells.values(column)}, axes.x, metric, title, texts),
            "sweep-grid", ""))
    else:
        grid = cells.values(column)
        card = figure_html(draw.heatmap_figure(
            cells, grid, axes.x, axes.y, metric, title, texts, _best_cell(cells, best),
            draw.value_range(metric, grid)), "sweep-grid", "")
    return f"<section><h2>The grid</h2>{_rule(sweep, axes, metric)}{card}</section>"


def _in_out_section(sweep: Sweep, axes: calc.Axes, metric: str, best: int) -> str:
    head = "<section><h2>In sample against out of sample</h2>"
    parts = calc.split(sweep, metric)
    if parts is None:
        why = NO_WALK_FORWARD if finished(sweep) else UNFINISHED
        return f'{head}<div class="card note">{html.escape(why)}</div></section>'
    outside_n = parts.sessions - parts.train
    intro = (f"In sample: the first {parts.train} sessions (the walk-forward's first training"
             f" window); out of sample: the {outside_n} sessions after them, which the"
             " walk-forward traded. The out-of-sample map shows, in each cell, the"
             " combination chosen in sample, not the best out of sample.")
    maps = "".join(_pair(sweep, axes, metric, parts, best))
    cards = _scatter(sweep, metric, parts, best) + _walk_card(sweep)
    return (f'{head}<p class="muted">{html.escape(intro)}</p><div class="pair">{maps}</div>'
            f'<div class="pair">{cards}</div>{_walk_table(sweep)}</section>')


def _pair(sweep: Sweep, axes: calc.Axes, metric: str, parts: calc.Split,
          best: int) -> list[str]:
    if len(sweep.results) == 1:
        return []
    cells = calc.cells(sweep.results, axes, parts.inside, metric)
    texts = _hover_texts(sweep, cells, axes)
    inside, outside = cells.values(parts.inside), cells.values(parts.outside)
    name = draw.NAMES[metric]
    if axes.y is None:
        return [figure_html(draw.line_figure(
            cells, {"in sample": inside, "out of sample": outside}, axes.x, metric,
            f"{name}: in sample and out of sample", texts), "sweep-is", "")]
    zrange = draw.value_range(metric, inside, outside)
    where = _best_cell(cells, best)
    return [
        figure_html(draw.heatmap_figure(cells, inside, axes.x, axes.y, metric,
                                        f"{name} in sample", texts, where, zrange),
                    "sweep-is", ""),
        figure_html(draw.heatmap_figure(cells, outside, axes.x, axes.y, metric,
                                        f"{name} out of sample, as chosen in sample", texts,
                                        where, zrange), "sweep-oos", ""),
    ]


def _scatter(sweep: Sweep, metric: str, parts: calc.Split, best: int) -> str:
    columns: list[Any] = []
    lines = []
    for j, key in enumerate(sweep.keys):
        values = sweep.results[key]
        if values.dtype.kind == "f":
            columns.append(values.to_numpy(dtype=np.float64))
            lines.append(f"{plain(key)} %{{customdata[{j}]:.6g}}")
        else:
            columns.append(np.array([plain(v) for v in values], dtype=object))
            lines.append(f"{plain(key)} %{{customdata[{j}]}}")
    customdata = np.column_stack(columns)
    picked = calc.stored(sweep.results, "wf_picked")
    rho = calc.rank_correlation(parts.inside, parts.outside)
    title = f"Each combination in and out of sample (rank correlation {_number(rho)})"
    return figure_html(draw.in_out_figure(
        parts.inside, parts.outside, metric, title, customdata, "<br>".join(lines),
        np.nan_to_num(picked).astype(np.int64), best), "sweep-scatter", "")


def _walk_card(sweep: Sweep) -> str:
    where = {c: i for i, c in enumerate(sweep.results["combo"].astype(str))}
    traded = [calc.setting(sweep.results, sweep.keys, where[str(c)]) if str(c) in where
              else f"combination {c} (not stored)" for c in sweep.walk_forward["combo"]]
    return figure_html(draw.walk_forward_figure(sweep.walk_forward, traded), "sweep-walk",
                       "No walk-forward rows in this sweep.")


def _walk_table(sweep: Sweep) -> str:
    a = sweep.about
    rows = [
        ("walk-forward, out of sample (stitched)", _dollars(a.get("wf_oos_pnl")),
         _number(a.get("wf_oos_sharpe")), _number(a.get("wf_oos_trades"), ",.0f"),
         _dollars(a.get("wf_oos_max_drawdown"), signed=False)),
        ("best with hindsight, same sessions", _dollars(a.get("wf_is_pnl")),
         _number(a.get("wf_is_sharpe")), _number(a.get("wf_is_trades"), ",.0f"),
         _dollars(a.get("wf_is_max_drawdown"), signed=False)),
    ]
    windows = (f"Walk-forward {_text(a.get('wf_train_sessions'))}:"
               f"{_text(a.get('wf_test_sessions'))}, {_text(a.get('wf_folds'))} test windows"
               f" chosen by {calc.ranking_metric(sweep)}; dashed lines mark a new choice.")
    return (f'<p class="muted">{html.escape(windows)}</p>'
            + _table("walk-forward", ["", "PnL", "Sharpe", "trades", "max drawdown"], rows))


def _trust_section(sweep: Sweep, fit: calc.Overfitting) -> str:
    dsr = fit.dsr
    cards = []
    if fit.pbo is None:
        cards.append(figure_html(None, "sweep-pbo", f"No PBO: {fit.pbo_note}."))
    else:
        cards.append(figure_html(draw.pbo_figure(fit.pbo.logits, fit.pbo.pbo, fit.pbo.splits),
                                 "sweep-pbo", ""))
    cards.append(figure_html(draw.dsr_figure(fit.trial_sharpes, dsr.sharpe, dsr.benchmark,
                                             dsr.dsr), "sweep-dsr", ""))
    pbo = fit.pbo
    rows = [
        ("best combination", calc.setting(sweep.results, sweep.keys, fit.best)),
        ("PBO: probability of backtest overfitting", _number(pbo.pbo if pbo else None)),
        ("blocks, splits", f"{pbo.blocks}, {pbo.splits:,}" if pbo else "n/a"),
        ("splits in which the in-sample best lost money out of sample",
         _number(pbo.oos_loss_share if pbo else None, ".0%")),
        ("deflated Sharpe ratio of the best", _number(dsr.dsr)),
        ("its Sharpe ratio per session, against SR₀ of luck alone",
         f"{_number(dsr.sharpe, '.3f')} against {_number(dsr.benchmark, '.3f')}"),
        ("trials, sessions", f"{dsr.trials:,}, {dsr.observations:,}"),
        ("skewness, kurtosis of its daily PnL",
         f"{_number(dsr.skewness)}, {_number(dsr.kurtosis)}"),
    ]
    stored_pbo = _number(sweep.about.get("pbo"), ".6f")
    if pbo is not None and stored_pbo not in ("n/a", f"{pbo.pbo:.6f}"):
        rows.append(("PBO the sweep stored", f"{stored_pbo} (combinations that tie were"
                     " ranked in another order)"))
    intro = ("PBO (Bailey, Borwein, López de Prado and Zhu 2017): the share of the ways to split"
             " the sessions in halves in which the best combination of one half ranks in the"
             " lower half of the other (λ ≤ 0); noise scores about 0.5, a real edge near 0."
             " Deflated Sharpe ratio (Bailey and López de Prado 2014): the probability that the"
             " best's Sharpe ratio beats SR₀, what the best of as many luck-only trials would"
             " show.")
    return ("<section><h2>How far to trust the best</h2>"
            f'<p class="muted">{html.escape(intro)}</p><div class="pair">{"".join(cards)}</div>'
            + _table("overfitting", ["", ""], rows) + "</section>")
