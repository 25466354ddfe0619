"""The report and the live page in a real headless Chromium.

Each page must load with no console error, uncaught exception or failed request, every chart on
it must hold data and draw inside its card at desktop and phone width, and text planted in the
database must show as text while none of it runs. Screenshots at desktop and phone width go to
tests/output/screenshots.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time as clock
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import (
    PHONE,
    WIDE,
    charts_drawn,
    chromium,
    crowded,
    open_checked,
    overflows,
    repeated_ticks,
    screenshots,
)
from report_rows import HOSTILE, at, decision, trade, write_db
from sweep_rows import real_sweeps, written_sweep

from gexbot.core.session import EASTERN
from gexbot.core.types import Action, Closed, Decided, Direction, ExitReason, GexRegime, Trade
from gexbot.report.cli import main as report
from gexbot.report.today import DayBook, LivePage
from gexbot.shell.health import HealthServer

D1, D2, D3 = date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)
TEN = time(10, 0)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


def wandering(variant: str, day: date, level: float, skipped: bool = False) -> list[Any]:
    """A session's first two hours with moving features, regimes and blockers."""
    rows = []
    for m in range(120):
        values: dict[str, Any] = {
            "spot": level + 6 * ((m % 17) - 8) / 8 + m * 0.05, "band_mid": level + m * 0.05,
            "band_upper": level + 5 + m * 0.05, "band_lower": level - 5 + m * 0.05,
            "hurst": 0.3 + (m % 23) / 50, "ofi": 0.2 + (m % 11) / 3,
            "gex_regime": "NEGATIVE" if 40 <= m < 70 else "POSITIVE",
            "hmm_state": None if m < 20 else ("HIGH" if (m // 15) % 3 == 0 else "LOW"),
            "blocked_by": "band" if m % 5 else "gex,band",
            "balance": 100_000.0 + (4.0 if m >= 30 else 0.0),
        }
        if skipped:
            values |= {"action": "SKIP", "reason": "quote_missing: no quote", "spot": None,
                       "blocked_by": None}
        rows.append(decision(variant, at(day, m), **values))
    return rows


def year_like_db(path: Path) -> Path:
    rows = [*wandering("es", D1, 6800.0), *wandering("es", D2, 6810.0),
            *wandering("es", D3, 6805.0, skipped=True),
            *wandering("nq", D1, 24_000.0), *wandering("nq", D2, 24_050.0)]
    trades = [trade("es", at(D1, 22), at(D1, 30), pnl=4.0),
              trade("es", at(D2, 50), at(D2, 61), pnl=-3.0, exit_reason="STOP_LOSS",
                    action="SHORT", entry_price=6812.0, price=6815.0),
              trade("nq", at(D1, 25), at(D1, 33), pnl=6.0, symbol="$NDX", entry_price=23_995.0,
                    price=24_003.0),
              trade("nq", at(D2, 80), at(D2, 119), exit_reason="EOD_FLATTEN", symbol="$NDX",
                    entry_price=24_052.0, price=24_049.0, pnl=-1.0)]
    return write_db(path, rows, trades)


def test_the_report_opens_offline_and_every_chart_draws(browser: Any, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert report(["--db", str(year_like_db(tmp_path / "run.db")), "--out", str(out)]) == 0
    page, problems = open_checked(browser, out.as_uri())
    drawn = charts_drawn(page)
    assert {"equity-0", "equity-1", "blockers-0", "funnel-1", "reasons-0", "hours-1"} <= set(
        drawn)
    assert page.locator("#day-select option").count() == 3
    assert page.input_value("#day-select") == "2026-10-07"  # the latest day comes first
    assert page.is_visible("#day-0-note")  # ES skipped all of that day; NQ has no minute
    assert "Every minute of this day was skipped" in page.inner_text("#day-0-note")
    assert "no decision on this day" in page.inner_text("#day-1-note")
    page.select_option("#day-select", "2026-10-05")
    page.wait_for_function("document.getElementById('day-1')._fullLayout !== undefined")
    assert not page.is_visible("#day-0-note")
    assert page.inner_text("#day-0-head").startswith("ES Mon 2026-10-05: 120 minutes, 1 trade")
    exits = page.evaluate("document.getElementById('day-0')._fullData"
                          ".filter(t => t.meta === 'trades:TARGET')[0].x.length")
    assert exits == 3  # entry, exit, the gap before the next trade
    assert {"day-0", "day-1"} <= set(charts_drawn(page))
    page.click("#day-next")
    assert page.input_value("#day-select") == "2026-10-06"
    screenshots(page, "report")
    assert problems == []


@pytest.fixture(scope="module")
def two_variants(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The report of a database holding ES and NQ (two columns side by side on a desktop)."""
    folder = tmp_path_factory.mktemp("two-variants")
    out = folder / "report.html"
    assert report(["--db", str(year_like_db(folder / "run.db")), "--out", str(out)]) == 0
    return out.as_uri()


@pytest.mark.parametrize("viewport", [*WIDE, PHONE], ids=lambda v: f"{v['width']}px")
def test_every_chart_fits_its_card_and_the_page_never_scrolls_sideways(
    browser: Any, two_variants: str, viewport: dict[str, int]
) -> None:
    page, problems = open_checked(browser, two_variants, viewport)
    drawn = charts_drawn(page)
    assert {"equity-0", "equity-1", "reasons-0", "funnel-0", "sides-0", "hours-1"} <= set(drawn)
    assert overflows(page) == [], "as first drawn"
    assert crowded(page) == []
    page.select_option("#day-select", "2026-10-05")  # both day charts drawn anew
    page.wait_for_function("['day-0', 'day-1'].every(id => !document.getElementById(id).hidden"
                           " && document.getElementById(id)._fullLayout)")
    assert overflows(page) == [], "after choosing a day"
    page.set_viewport_size(WIDE[0] if viewport == PHONE else PHONE)
    assert overflows(page) == [], "after the window changed width"
    assert problems == []
    page.close()


def test_a_flat_chart_shows_each_tick_label_once(browser: Any, tmp_path: Path) -> None:
    """No trade moved ES's balance: its equity, drawdown and daily PnL are flat lines."""
    flat = [*wandering("es", D1, 6800.0), *wandering("es", D2, 6800.0)]
    rows = [decision("es", row[1], balance=100_000.0) for row in flat]
    rows += [*wandering("nq", D1, 24_000.0)]
    trades = [trade("es", at(D1, 22), at(D1, 30), pnl=0.0),
              trade("nq", at(D1, 25), at(D1, 33), pnl=6.0, symbol="$NDX")]
    out = tmp_path / "flat.html"
    assert report(["--db", str(write_db(tmp_path / "flat.db", rows, trades)), "--out",
                   str(out)]) == 0
    page, problems = open_checked(browser, out.as_uri())
    assert {"equity-0", "daily-0"} <= set(charts_drawn(page))
    assert repeated_ticks(page) == []
    assert "(0.00%)" in page.inner_text("#summary")  # ES's drawdown, with no minus sign
    assert problems == []
    page.close()


def test_planted_markup_in_the_database_shows_as_text_and_never_runs(
    browser: Any, tmp_path: Path
) -> None:
    rows = [
        *wandering(HOSTILE, D1, 6800.0),
        decision(HOSTILE, at(D1, 120), action="SKIP", reason=HOSTILE, spot=None,
                 blocked_by=None, gex_regime=HOSTILE, hmm_state=HOSTILE),
        decision(HOSTILE, at(D1, 121), blocked_by=f"band,{HOSTILE}", gex_regime=HOSTILE),
    ]
    trades = [trade(HOSTILE, at(D1, 22), at(D1, 30), symbol=HOSTILE, exit_reason=HOSTILE,
                    action=HOSTILE, regime=HOSTILE, bucket=HOSTILE)]
    out = tmp_path / "hostile.html"
    assert report(["--db", str(write_db(tmp_path / "h.db", rows, trades)), "--out",
                   str(out)]) == 0
    page, problems = open_checked(browser, out.as_uri())
    charts_drawn(page)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0
    assert HOSTILE.upper() in page.inner_text("header h1")
    assert HOSTILE in page.inner_text("#summary")  # the skip reason, counted by kind
    assert HOSTILE in page.text_content("#blockers-0")  # a blocker name on the axis
    assert HOSTILE in page.text_content("#reasons-0")  # an exit reason on the axis
    assert problems == []


def test_planted_markup_on_the_live_page_shows_as_text_and_never_runs(browser: Any) -> None:
    book = DayBook(HOSTILE)
    for n in range(40):
        book.handle([Decided(
            variant=HOSTILE, at=at(D1, n), spot=6800.0 + n % 6,
            features=None, position=None, target=None, stop=None,
            action=Action.SKIP if n == 39 else Action.WAIT,
            reason=HOSTILE if n == 39 else None, blocked_by=(), balance=100_000.0,
        )])
    book.handle([Closed(Trade(HOSTILE, HOSTILE, Direction.LONG, HOSTILE,
                              datetime(2026, 10, 5, 9, 35, tzinfo=EASTERN), 6801.0,
                              datetime(2026, 10, 5, 9, 40, tzinfo=EASTERN), 6804.0, 5000.0,
                              GexRegime.POSITIVE, ExitReason.TARGET, 2.0), 100_002.0)])
    live = LivePage(book, label=HOSTILE)
    server = HealthServer(0, max_age_s=150.0, page=live.html)
    server.start()
    try:
        page, problems = open_checked(browser, f"http://127.0.0.1:{server.port}/")
        charts_drawn(page)
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img").count() == 0
        assert HOSTILE in page.inner_text("header h1")
        assert HOSTILE in page.inner_text("#summary")
        assert problems == []
    finally:
        server.stop()


def test_the_sweep_page_opens_offline_and_every_chart_draws(
    browser: Any, tmp_path: Path
) -> None:
    db, grid, _ = real_sweeps()
    out = tmp_path / "sweep.html"
    assert report(["--sweep", str(db), "--sweep-id", grid.sweep, "--out", str(out)]) == 0
    page, problems = open_checked(browser, out.as_uri())
    drawn = charts_drawn(page)
    assert set(drawn) == {"sweep-grid", "sweep-is", "sweep-oos", "sweep-scatter", "sweep-walk",
                          "sweep-pbo", "sweep-dsr"}
    cells = page.evaluate("document.getElementById('sweep-grid')._fullData[0].z.length")
    assert cells == 3  # strategy.hurst.threshold's values up the map
    assert page.inner_text("header h1") == f"gexbot sweep {grid.sweep}: ES"
    assert page.locator("#sweeps tbody tr").count() == 2
    screenshots(page, "sweep")
    assert problems == []
    for viewport in (*WIDE, PHONE):  # each width as first drawn, the map beside its pair
        sized, sized_problems = open_checked(browser, out.as_uri(), viewport)
        assert overflows(sized) == [], f"at {viewport['width']} px"
        assert crowded(sized) == [], f"at {viewport['width']} px"
        assert sized_problems == []
        sized.close()


def test_planted_markup_in_a_results_file_shows_as_text_and_never_runs(
    browser: Any, tmp_path: Path
) -> None:
    rng = np.random.default_rng(2)
    key = HOSTILE.replace('"', "")  # a column name
    db = written_sweep(tmp_path / "h.db", {key: [HOSTILE, "plain"], "n": [1.0, 2.0]},
                       rng.normal(0.0, 5.0, (4, 10)), walk=(4, 2), grid=HOSTILE,
                       sweep=HOSTILE, combos=[HOSTILE, "x", "y", "z"])
    out = tmp_path / "hostile-sweep.html"
    assert report(["--sweep", str(db), "--out", str(out)]) == 0
    page, problems = open_checked(browser, out.as_uri())
    charts_drawn(page)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0
    assert HOSTILE in page.inner_text("header h1")
    assert HOSTILE in page.inner_text("#sweeps")
    assert key in page.text_content("#sweep-grid")  # the parameter's name on the axis
    assert problems == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str) -> dict[str, Any] | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except OSError:
        return None


def test_the_live_page_of_a_running_daemon(browser: Any, tmp_path: Path) -> None:
    port = free_port()
    daemon = subprocess.Popen(  # noqa: S603 (our interpreter and module)
        [sys.executable, "-m", "gexbot.live", "--variant", "es", "--source", "sim", "--days",
         "1", "--start", "2026-10-05", "--seed", "3", "--speed", "120", "--db",
         str(tmp_path / "live.db"), "--http-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = clock.monotonic() + 120
        while clock.monotonic() < deadline:
            health = get_json(f"http://127.0.0.1:{port}/healthz")
            last = (health or {}).get("last_minute")
            if last is not None and datetime.fromisoformat(last).time() >= TEN:
                break
            assert daemon.poll() is None, daemon.communicate()[0]
            clock.sleep(0.2)
        else:
            pytest.fail("the daemon did not reach 10:00 within 120 s")
        page, problems = open_checked(browser, f"http://127.0.0.1:{port}/")
        drawn = charts_drawn(page)
        assert {"equity-0", "day-0", "blockers-0", "funnel-0"} <= set(drawn)
        assert page.inner_text("header h1") == "gexbot live: ES"
        assert "Live: the minutes this daemon has committed" in page.inner_text("header")
        refresh = page.get_attribute('meta[http-equiv="refresh"]', "content")
        assert refresh == "60"
        assert page.inner_text("#day-0-head").startswith("ES Mon 2026-10-05:")
        screenshots(page, "live")
        phone, phone_problems = open_checked(browser, f"http://127.0.0.1:{port}/", PHONE)
        charts_drawn(phone)
        assert problems == []
        assert phone_problems == []
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, output


def test_without_a_browser_the_tests_skip_saying_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import browser as module

    monkeypatch.setattr(module, "find_chromium", lambda: None)
    with (
        pytest.raises(pytest.skip.Exception, match="need Chromium and none was found"),
        chromium(tmp_path),
    ):
        pass
