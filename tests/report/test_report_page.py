"""The page's parts: packed days that unpack to the rows, text kept as text, empty charts named."""

from __future__ import annotations

import base64
import calendar
import json
import re
from datetime import date, datetime

import numpy as np
import pytest
from report_rows import HOSTILE, at, decision, ledger, session, trade

from gexbot.core.session import EASTERN
from gexbot.report import days, figures, stats
from gexbot.report.page import build_page, script_json, split

D1, D2 = date(2026, 10, 5), date(2026, 10, 6)
NOW = datetime(2026, 10, 6, 17, 0, tzinfo=EASTERN)


def unpack(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def embedded_days(page: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="gexbot-days">(.*?)</script>', page)
    assert found is not None
    book: dict[str, object] = json.loads(found.group(1))
    return book


def test_a_packed_day_unpacks_to_its_rows() -> None:
    rows = [
        decision("es", at(D1, 0), spot=6800.25, hurst=None, gex_regime="NEGATIVE",
                 hmm_state=None),
        decision("es", at(D1, 1), spot=6801.5, hurst=0.42, gex_regime="NEGATIVE",
                 hmm_state="HIGH"),
        decision("es", at(D1, 2), spot=6799.75, hurst=0.47, hmm_state="LOW"),
        decision("es", at(D1, 5), spot=6802.0, hurst=0.45, hmm_state="LOW"),
    ]
    book = ledger(rows, [trade("es", at(D1, 1), at(D1, 5), pnl=4.25)])
    packed = days.variant_days(book.decisions, book.trades)["2026-10-05"]
    assert packed["t0"] == calendar.timegm((2026, 10, 5, 9, 30, 0)) * 1000  # wall clock as UTC
    assert unpack(packed["off"], "<u2").tolist() == [0, 1, 2, 5]  # a gap: offsets are sent
    assert unpack(packed["spot"], "<f4").tolist() == [6800.25, 6801.5, 6799.75, 6802.0]
    hurst = unpack(packed["hurst"], "<f4")
    assert np.isnan(hurst[0])
    assert hurst[1:] == pytest.approx([0.42, 0.47, 0.45])
    assert packed["gex"] == [[0, 1, 2], [2, 3, 1]]
    assert packed["hmm"] == [[1, 1, 2], [2, 3, 1]]
    (marks,) = packed["trades"]
    assert marks[0] == days.REASON_SLOTS.index("TARGET")
    assert marks[1] == packed["t0"] + 60_000
    assert marks[3] == packed["t0"] + 5 * 60_000
    assert (marks[2], marks[4], marks[5]) == (6795.0, 6805.0, 1)
    assert "TARGET +$4.25" in marks[7]
    assert packed["head"].startswith("Mon 2026-10-05: 4 minutes, 1 trade closed")
    assert packed["note"] is None


def test_consecutive_minutes_send_no_offsets() -> None:
    book = ledger(session("es", D1, 12))
    assert days.variant_days(book.decisions, book.trades)["2026-10-05"]["off"] is None


def test_an_overnight_trade_shows_its_entry_on_one_day_and_its_exit_on_the_next() -> None:
    book = ledger([*session("es", D1, 3), *session("es", D2, 3)],
                  [trade("es", at(D1, 2), at(D2, 0), exit_reason="EOD_FLATTEN")])
    packed = days.variant_days(book.decisions, book.trades)
    first = packed["2026-10-05"]["trades"][0]
    second = packed["2026-10-06"]["trades"][0]
    assert first[1] is not None
    assert first[3] is None
    assert second[1] is None
    assert second[3] is not None


def test_runs_of_regime_codes() -> None:
    assert days.runs(np.array([0, 1, 1, 2, 2, 2, 0, 1], dtype=np.int8)) == [
        [1, 2, 1], [3, 5, 2], [7, 7, 1],
    ]
    assert days.runs(np.array([], dtype=np.int8)) == []


def test_script_json_cannot_close_its_script_element() -> None:
    text = script_json({"reason": "</script><script>alert(1)</script>&\u2028"})
    assert "<" not in text
    assert ">" not in text
    assert "&" not in text
    assert "\u2028" not in text
    assert json.loads(text) == {"reason": "</script><script>alert(1)</script>&\u2028"}


def test_database_text_reaches_the_page_escaped_everywhere() -> None:
    rows = [
        *session(HOSTILE, D1, 5, reason=HOSTILE, blocked_by=f"band,{HOSTILE}"),
        decision(HOSTILE, at(D1, 6), action="SKIP", reason=f"quote_missing: {HOSTILE}"),
    ]
    trades = [trade(HOSTILE, at(D1, 1), at(D1, 3), exit_reason=HOSTILE, symbol=HOSTILE,
                    action=HOSTILE)]
    page = build_page(ledger(rows, trades), title=f"report {HOSTILE}", generated=NOW)
    body = page.split("<body>", 1)[1]
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", body, flags=re.S)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", body, flags=re.S)
    assert "<script>window" not in markup
    assert "<img" not in markup
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in markup
    assert all("<script>window" not in s and "<img src=x" not in s for s in scripts)
    book = embedded_days(page)
    charts = book["charts"]
    assert isinstance(charts, list)
    exit_text = charts[0]["days"]["2026-10-05"]["trades"][0][7]
    assert "&lt;script&gt;" in exit_text  # plotly shows entities as the characters


def test_charts_wait_for_the_whole_page_before_they_draw() -> None:
    rows = [*session("es", D1, 30), *session("nq", D1, 30, level=24_000.0)]
    trades = [trade("es", at(D1, 1), at(D1, 3)), trade("nq", at(D1, 2), at(D1, 9))]
    page = build_page(ledger(rows, trades), title="t", generated=NOW)
    body = page.split("</head>", 1)[1]
    sections, tail = body.split("<footer", 1)
    assert "Plotly." not in sections  # drawn in a half-built grid, a chart keeps its width
    carried = re.findall(r'<div id="([^"]+)" class="plotly-graph-div" style="height:(\d+)px">'
                         r'</div><script type="application/json" class="gexbot-figure"'
                         r' data-chart="\1">(.*?)</script>', sections)
    assert {"equity-0", "equity-1", "reasons-0", "hours-1"} <= {c[0] for c in carried}
    for _, height, text in carried:
        figure = json.loads(text)
        assert figure["layout"]["height"] == int(height)  # the page is as tall before drawing
        assert "width" not in figure["layout"]
        assert figure["config"]["responsive"] is True
    assert "new ResizeObserver" in tail


def test_a_chart_with_nothing_to_draw_is_a_sentence() -> None:
    book = ledger(session("es", D1, 5))
    variant = split(book)[0]
    assert figures.exit_reason_figure(stats.trades_by(variant.trades, "exit_reason"), "ES") is None
    assert figures.hour_figure(variant.trades, "ES") is None
    page = build_page(book, title="t", generated=NOW)
    assert page.count("No trade in this period.") == 3


def test_reason_colours_are_discords() -> None:
    assert figures.reason_color("TARGET") == "#2ecc71"
    assert figures.reason_color("STOP_LOSS") == "#e74c3c"
    assert figures.reason_color("REGIME_FLIP") == "#e67e22"
    assert figures.reason_color("EOD_FLATTEN") == "#607d8b"
    assert figures.reason_color("anything else") == "#95a5a6"


def test_thresholds_come_from_the_shipped_presets_only() -> None:
    es = days.shipped_thresholds("es")
    assert es is not None
    assert es.hurst == 0.5
    assert (es.ofi_short_below, es.ofi_long_above) == (0.5, 2.0)
    assert days.shipped_thresholds("../es") is None
