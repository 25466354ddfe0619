"""A real headless Chromium for the page tests (Debian's `chromium`, driven by Playwright).

`open_checked` loads a page and fails on any console error, uncaught exception, failed request
or HTTP error; `charts_drawn` checks that every chart on it holds data and drew something
other than a blank rectangle; `overflows` lists every chart wider than its card and a page
wider than its window, `crowded` every legend drawn outside its chart or over its title or
axis labels, and `repeated_ticks` every axis that shows one tick label twice. Screenshots go
to tests/output/screenshots (not committed).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

OUTPUT = Path(__file__).resolve().parents[1] / "output" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
WIDE = ({"width": 1400, "height": 900}, {"width": 1920, "height": 1080})
"""The desktop widths where two variants sit side by side."""
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def find_chromium() -> str | None:
    """GEXBOT_CHROMIUM, else a chromium on the PATH or where Debian puts it."""
    for candidate in (os.environ.get("GEXBOT_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A browser context with a fresh profile, or a skip that says why there is none."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright: pip install -e '.[dev]'")
    executable = find_chromium()
    if executable is None:
        pytest.skip("browser tests need Chromium and none was found: apt-get install chromium"
                    " (./scripts/check does it when run as root) or set GEXBOT_CHROMIUM")
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=FLAGS,
            viewport=DESKTOP,
        )
        try:
            yield context
        finally:
            context.close()


class Problems(list[str]):
    """Everything that went wrong while a page was open."""


def open_checked(
    context: Any, url: str, viewport: dict[str, int] = DESKTOP
) -> tuple[Any, Problems]:
    """A new tab on `url`, loaded, with its problems collected as they happen."""
    page = context.new_page()
    page.set_viewport_size(viewport)
    problems = Problems()
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 else None)
    page.goto(url, wait_until="load")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.plotly-graph-div'))"
        ".filter(d => d.offsetParent !== null).every(d => d._fullLayout)",
        timeout=60_000,
    )
    return page, problems


def charts_drawn(page: Any) -> list[str]:
    """Ids of the visible charts, each checked to hold data and to draw a non-blank image."""
    charts = page.evaluate(
        """Array.from(document.querySelectorAll('.plotly-graph-div'))
             .filter(d => d.offsetParent !== null)
             .map(d => ({id: d.id, points: (d._fullData || []).reduce(
                 (n, t) => n + Math.max((t.y || []).length, (t.x || []).length), 0)}))"""
    )
    assert charts, "no chart on the page"
    for chart in charts:
        assert chart["points"] > 0, f"chart {chart['id']} holds no data"
        shot = page.locator(f"#{chart['id']}").screenshot()
        colours = Image.open(io.BytesIO(shot)).convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None
        assert len(colours) > 8, f"chart {chart['id']} drew a blank image"
    return [str(chart["id"]) for chart in charts]


FITS = """() => {
  const charts = Array.from(document.querySelectorAll('.plotly-graph-div'))
    .filter(d => d.offsetParent !== null);
  const root = document.documentElement;
  const out = charts.map(d => {
    const card = d.closest('.card') || d.parentElement;
    const style = getComputedStyle(card);
    const room = card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const svg = d.querySelector('.main-svg');
    const plot = svg ? svg.getBoundingClientRect().width : Infinity;
    return {id: d.id, plot: plot, room: room, fits: plot <= room + 0.5};
  });
  return {charts: out, page: root.scrollWidth, window: root.clientWidth};
}"""


def overflows(page: Any, settle_ms: int = 10_000) -> list[str]:
    """Each visible chart drawn wider than the inside of its card, and the page when it is
    wider than its window (it would scroll sideways), once the charts had `settle_ms` to fit."""
    from playwright.sync_api import TimeoutError as Unsettled

    with suppress(Unsettled):  # what still does not fit is listed below
        page.wait_for_function(  # plotly fits a chart a moment after its card changes width
            f"(() => {{ const m = ({FITS})(); return m.charts.every(c => c.fits)"
            " && m.page <= m.window; })()",
            timeout=settle_ms,
        )
    measured = page.evaluate(FITS)
    found = [f"{c['id']} is {c['plot']:.0f} px wide in a card {c['room']:.0f} px wide"
             for c in measured["charts"] if not c["fits"]]
    if measured["page"] > measured["window"]:
        found.append(f"the page is {measured['page']} px wide in a {measured['window']} px window")
    return found


def crowded(page: Any) -> list[str]:
    """Each visible chart whose legend lies outside it or covers its title or the labels of one
    of its axes."""
    found: list[str] = page.evaluate(
        """() => { const out = [];
             const apart = (a, b) => a.right <= b.left || b.right <= a.left
                                     || a.bottom <= b.top || b.bottom <= a.top;
             document.querySelectorAll('.plotly-graph-div').forEach(d => {
               const legend = d.querySelector('.legend');
               if (d.offsetParent === null || !legend) { return; }
               const box = legend.getBoundingClientRect();
               const frame = d.getBoundingClientRect();
               if (box.top < frame.top - 0.5 || box.bottom > frame.bottom + 0.5
                   || box.left < frame.left - 0.5 || box.right > frame.right + 0.5) {
                 out.push(d.id + ': the legend lies outside the chart');
               }
               d.querySelectorAll('.gtitle, .xtick text, .ytick text, [class*="title"] text')
                 .forEach(e => {
                   const r = e.getBoundingClientRect();
                   if (r.width && r.height && !legend.contains(e) && !apart(box, r)) {
                     out.push(d.id + ': the legend covers "' + e.textContent + '"');
                   }
                 });
             });
             return out; }"""
    )
    return found


def repeated_ticks(page: Any) -> list[str]:
    """Each axis of a visible chart that shows the same tick label more than once."""
    axes: dict[str, list[str]] = page.evaluate(
        """() => { const out = {};
             document.querySelectorAll('.plotly-graph-div').forEach(d => {
               if (d.offsetParent === null) { return; }
               d.querySelectorAll('g[class$="tick"]').forEach(g => {
                 const text = g.querySelector('text');
                 if (!text) { return; }
                 const key = d.id + ' ' + g.getAttribute('class');
                 (out[key] = out[key] || []).push(text.textContent);
               });
             });
             return out; }"""
    )
    return [f"{axis}: {labels}" for axis, labels in axes.items()
            if len(set(labels)) < len(labels)]


def screenshots(page: Any, name: str) -> list[Path]:
    """Full-page screenshots at desktop and phone width."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    saved = []
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        try:  # plotly redraws its responsive charts a moment after a resize
            page.wait_for_function(
                f"document.documentElement.scrollWidth <= {viewport['width']}", timeout=30_000
            )
        except Exception as timeout:
            width = page.evaluate("document.documentElement.scrollWidth")
            raise AssertionError(f"{name} is {width} px wide at {label} width") from timeout
        page.wait_for_timeout(300)
        path = OUTPUT / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        saved.append(path)
    page.set_viewport_size(DESKTOP)
    return saved
