"""The report page: one self-contained HTML file, every script and style inside it.

`build_page` lays out what `stats` computes and `figures` and `days` draw: the summary, equity
and drawdown, the session days, why it did not trade and the trades, one column per variant
(ES and NQ side by side when both are there, one under the other on a phone). plotly.js is
inlined once, so the file opens offline and can be mailed. Each figure travels as JSON and
`charts.js` draws them all after the last section, when every card has its final width, and
refits a chart when its card changes width. Text from the database reaches the page escaped
(`html.escape` in the markup, `plain` in figures, `\\u003c` in embedded JSON).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from gexbot.report import days, figures, stats
from gexbot.report.source import Ledger
from gexbot.shell.notify import signed_usd, usd

NO_ICON = '<link rel="icon" href="data:,">'
"""An empty icon, so a browser asks nobody for /favicon.ico (the page needs no request)."""
PLOT_CONFIG = {"responsive": True, "displaylogo": False}
STYLE = """
:root { color-scheme: light; --ink: #2c3e50; --muted: #7f8c8d; --line: #e3e7ea; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #f6f8f9; }
header, section, footer { max-width: 1500px; margin: 0 auto; padding: 12px 16px; }
header h1 { margin: 8px 0 2px; font-size: 1.5rem; }
h2 { font-size: 1.15rem; margin: 18px 0 8px; border-bottom: 1px solid var(--line); }
.muted { color: var(--muted); }
.grid { display: grid; gap: 14px;
        grid-template-columns: repeat(auto-fit, minmax(min(100%, 460px), 1fr)); }
.grid > * { min-width: 0; }
.pair { display: grid; gap: 14px; margin-bottom: 14px;
        grid-template-columns: repeat(auto-fill, minmax(min(100%, 560px), 1fr)); }
.pair > * { min-width: 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px;
        min-width: 0; }
.note { padding: 16px; color: var(--muted); }
table { border-collapse: collapse; background: #fff; width: 100%; }
td, th { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; }
th:first-child, td:first-child { text-align: left; }
.scroll { overflow-x: auto; }
.controls { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin: 6px 0; }
.controls select, .controls button { font: inherit; padding: 4px 8px; }
.legend span { display: inline-block; margin-right: 14px; white-space: nowrap; }
.legend i { display: inline-block; width: 14px; height: 10px; margin-right: 4px;
            vertical-align: middle; border-radius: 2px; }
.banner { background: #fff8e1; border: 1px solid #f0d58c; border-radius: 6px; padding: 8px 12px; }
"""


@dataclass(frozen=True)
class Variant:
    """One variant's rows, its name in the database and the label the page gives it."""

    name: str
    label: str
    decisions: pd.DataFrame
    trades: pd.DataFrame


def split(ledger: Ledger) -> list[Variant]:
    """The ledger's variants, each with its own rows."""
    out = []
    for name in ledger.variants:
        decisions = ledger.decisions[ledger.decisions["variant"].astype(str) == name]
        trades = ledger.trades[ledger.trades["variant"].astype(str) == name]
        out.append(Variant(name, name.upper(), decisions.reset_index(drop=True),
                           trades.reset_index(drop=True)))
    return out


def script_json(value: object) -> str:
    """JSON that cannot end or break out of the <script> element it is embedded in."""
    return script_safe(json.dumps(value, separators=(",", ":"), allow_nan=False))


def script_safe(text: str) -> str:
    """JSON text with the characters that could end its <script> element written as escapes
    (they can only stand inside JSON strings, where an escape means the same)."""
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def figure_html(fig: go.Figure | None, div_id: str, empty: str) -> str:
    """A figure's <div> and the figure as JSON for `charts.js` to draw once the page is laid
    out, or a note in words when there is no figure. The <div> already has the figure's
    height, so the page is as tall before the charts draw as after."""
    if fig is None:
        return f'<div class="card note">{html.escape(empty)}</div>'
    figure = json.loads(pio.to_json(fig, validate=False))
    height = figure["layout"].get("height")
    size = f' style="height:{int(height)}px"' if height else ""
    return (
        f'<div class="card"><div id="{html.escape(div_id)}" class="plotly-graph-div"{size}>'
        f'</div><script type="application/json" class="gexbot-figure"'
        f' data-chart="{html.escape(div_id)}">{script_json({**figure, "config": PLOT_CONFIG})}'
        "</script></div>"
    )


def build_page(
    ledger: Ledger,
    *,
    title: str,
    generated: datetime,
    refresh_s: int | None = None,
    banner: str | None = None,
    extra_sections: Sequence[str] = (),
) -> str:
    """The whole HTML page of `ledger`; `refresh_s` reloads it that often (the live page)."""
    variants = split(ledger)
    first = ledger.decisions["at"].min()
    last = ledger.decisions["at"].max()
    period = f"{first:%Y-%m-%d} to {last:%Y-%m-%d}" if len(ledger.decisions) else "no minutes"
    sections = [
        _summary_section(variants),
        _grid_section("Equity and drawdown", variants, _equity_cards),
        _days_section(variants),
        _grid_section("Why it did not trade", variants, _blocked_cards, _FUNNEL_NOTE),
        _grid_section("Trades by exit reason, side and hour", variants, _trade_cards),
        *extra_sections,
    ]
    return html_page(
        title,
        f"{period} · {ledger.source} · generated {generated:%Y-%m-%d %H:%M:%S %Z}",
        sections,
        tail=[
            f'<script type="application/json" id="gexbot-days">{_days_book(variants)}</script>',
            f"<script>{files('gexbot.report').joinpath('days.js').read_text('utf-8')}</script>",
        ],
        refresh_s=refresh_s,
        banner=banner,
    )


def html_page(
    title: str,
    subtitle: str,
    sections: Sequence[str],
    *,
    tail: Sequence[str] = (),
    refresh_s: int | None = None,
    banner: str | None = None,
) -> str:
    """A page of `sections` (markup) with plotly.js inlined and `charts.js` drawing their
    figures once they are all in place; `title`, `subtitle` and `banner` are text, `tail`
    scripts that run after it."""
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_s)}">' if refresh_s else ""
    note = f'<p class="banner">{html.escape(banner)}</p>' if banner else ""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        NO_ICON,
        refresh,
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head><body>",
        f"<header><h1>{html.escape(title)}</h1>",
        f'<p class="muted">{html.escape(subtitle)}</p>{note}</header>',
        *sections,
        '<footer class="muted">gexbot: paper trading only; no order ever reaches a broker.'
        "</footer>",
        f"<script>{files('gexbot.report').joinpath('charts.js').read_text('utf-8')}</script>",
        *tail,
        "</body></html>",
    ])


def _grid_section(
    heading: str,
    variants: Sequence[Variant],
    cards: Callable[[int, Variant], list[str]],
    intro: str = "",
) -> str:
    columns = "".join(
        f'<div><h3>{html.escape(v.label)}</h3>{"".join(cards(i, v))}</div>'
        for i, v in enumerate(variants)
    )
    return (f"<section><h2>{html.escape(heading)}</h2>{intro}"
            f'<div class="grid">{columns}</div></section>')


def _summary_section(variants: Sequence[Variant]) -> str:
    summaries = [stats.summarize(v.decisions, v.trades) for v in variants]
    rows: list[tuple[str, list[str]]] = [
        ("session days", [str(s.days) for s in summaries]),
        ("minutes decided", [f"{s.minutes:,}" for s in summaries]),
        ("trades", [str(s.trades) for s in summaries]),
        ("win rate", [_share(s.win_rate) for s in summaries]),
        ("total PnL", [signed_usd(s.total_pnl) for s in summaries]),
        ("max drawdown", [f"{usd(s.max_drawdown_usd)} ({s.max_drawdown_pct:.2%})"
                          for s in summaries]),
        ("Sharpe of daily PnL", ["n/a" if s.sharpe is None else f"{s.sharpe:.2f}"
                                 for s in summaries]),
        ("skipped minutes", [_skips(s) for s in summaries]),
        ("balance", [_balances(s) for s in summaries]),
    ]
    head = "".join(f"<th>{html.escape(v.label)}</th>" for v in variants)
    body = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{html.escape(value)}</td>" for value in values)
        + "</tr>"
        for name, values in rows
    )
    return (
        '<section><h2>Summary</h2><div class="scroll"><table id="summary">'
        f"<thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        '<p class="muted">Drawdown on the balance, which moves when a trade closes; Sharpe:'
        " √252 × mean ÷ standard deviation of daily returns (PnL over the day's opening"
        " balance), days without trades counted as 0.</p></section>"
    )


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _skips(summary: stats.Summary) -> str:
    kinds = ", ".join(f"{kind} {n}" for kind, n in summary.skipped_by_kind.items())
    return f"{summary.skipped}" + (f" ({kinds})" if kinds else "")


def _balances(summary: stats.Summary) -> str:
    if summary.start_balance is None or summary.end_balance is None:
        return "n/a"
    return f"{usd(summary.start_balance)} → {usd(summary.end_balance)}"


def _equity_cards(i: int, v: Variant) -> list[str]:
    curve = stats.equity_curve(v.decisions)
    daily = stats.daily_returns(v.decisions, v.trades)
    return [
        figure_html(figures.equity_figure(curve, v.label), f"equity-{i}",
                    "No balance recorded in this period."),
        figure_html(figures.daily_pnl_figure(daily, v.label), f"daily-{i}",
                    "No session day in this period."),
    ]


_FUNNEL_NOTE = (
    '<p class="muted">Minutes blocked: every minute whose <code>blocked_by</code> lists the'
    " condition (a minute holding a position lists <em>position</em>), and those where it was"
    " the only one. Funnel: <b>minutes</b> every decided minute, skipped ones included;"
    " <b>features allowed</b> data usable and nothing blocking but band, ofi or kelly (flat,"
    " no cooldown, gap or flatten time, HMM LOW, GEX POSITIVE, Hurst under its threshold,"
    " every feature known); <b>band breached</b> of those, <em>band</em> not listed;"
    " <b>order flow agreed</b> of those, <em>ofi</em> not listed either; <b>entered</b> of"
    " those, the minute entered (LONG or SHORT; only Kelly sizing can refuse).</p>"
)


def _blocked_cards(i: int, v: Variant) -> list[str]:
    return [
        figure_html(figures.blockers_figure(stats.blockers(v.decisions), v.label),
                    f"blockers-{i}", "No minute was blocked in this period."),
        figure_html(figures.funnel_figure(stats.funnel(v.decisions), v.label), f"funnel-{i}",
                    "No minute decided in this period."),
    ]


def _trade_cards(i: int, v: Variant) -> list[str]:
    none = "No trade in this period."
    return [
        figure_html(figures.exit_reason_figure(stats.trades_by(v.trades, "exit_reason"),
                                               v.label), f"reasons-{i}", none),
        figure_html(figures.side_figure(stats.trades_by(v.trades, "action"), v.label),
                    f"sides-{i}", none),
        figure_html(figures.hour_figure(v.trades, v.label), f"hours-{i}", none),
    ]


def _days_section(variants: Sequence[Variant]) -> str:
    shade = days.SHADES
    legend = "".join(
        f'<span><i style="background:{color}"></i>{text}</span>'
        for color, text in (
            (shade["gex"][1], "GEX positive"), (shade["gex"][2], "GEX negative"),
            (shade["hmm"][1], "HMM low volatility"), (shade["hmm"][2], "HMM high volatility"),
        )
    )
    charts = "".join(
        f'<div class="card"><p id="day-{i}-head"></p><p id="day-{i}-note" class="note" hidden>'
        f'</p><div id="day-{i}" class="plotly-graph-div day-chart"></div></div>'
        for i, _ in enumerate(variants)
    )
    return (
        '<section><h2>Session days</h2><div class="controls">'
        '<button id="day-prev" type="button">◀ earlier</button>'
        '<label>day <select id="day-select"></select></label>'
        '<button id="day-next" type="button">later ▶</button></div>'
        f'<p class="legend muted">{legend}<span>▲ long entry</span><span>▼ short entry</span>'
        "<span>● exit, coloured by exit reason</span></p>"
        f'<div class="grid">{charts}</div></section>'
    )


def _days_book(variants: Sequence[Variant]) -> str:
    charts = []
    every_day: set[str] = set()
    for i, v in enumerate(variants):
        template = days.day_figure(days.shipped_thresholds(v.name))
        packed = days.variant_days(v.decisions, v.trades)
        every_day.update(packed)
        charts.append({"div": f"day-{i}", "label": v.label, "days": packed,
                       "figure": json.loads(pio.to_json(template, validate=False))})
    return script_json({"days": sorted(every_day), "charts": charts, "shades": days.SHADES,
                        "slots": list(days.REASON_SLOTS)})


def waiting_page(title: str, message: str, refresh_s: int) -> str:
    """A page with nothing to draw yet, saying so, that reloads itself."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'{NO_ICON}<meta http-equiv="refresh" content="{int(refresh_s)}">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<header><h1>{html.escape(title)}</h1><p class="banner">{html.escape(message)}</p>'
        "</header></body></html>"
    )
