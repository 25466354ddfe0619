"""The daemon's day book, its live page, the page on the HTTP server, and the day's PNG."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from report_rows import ledger, session

from gexbot.core.session import EASTERN
from gexbot.core.types import (
    Action,
    Blocker,
    Closed,
    Decided,
    Direction,
    ExitReason,
    Features,
    GexRegime,
    HmmState,
    SessionEnded,
    Trade,
)
from gexbot.report.png import day_png
from gexbot.report.today import DayBook, LivePage
from gexbot.shell.health import HealthServer
from gexbot.shell.schema import DECISION_COLUMNS, TRADE_COLUMNS

D1, D2, D3 = date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)
FEATURES = Features(
    net_gex=1.2e9, gex_regime=GexRegime.POSITIVE, excluded_contracts=0, ofi=1.1, hurst=0.42,
    hmm_state=HmmState.LOW, band_mid=6800.0, band_upper=6810.0, band_lower=6790.0,
    band_sigma=5.0,
)


def minute(day: date, n: int) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 30, tzinfo=EASTERN) + timedelta(minutes=n)


def decided(day: date, n: int, action: Action = Action.WAIT, reason: str | None = None,
            spot: float = 6800.0) -> Decided:
    return Decided(
        variant="es", at=minute(day, n), spot=spot,
        features=None if action is Action.SKIP else FEATURES, position=None, target=None,
        stop=None, action=action, reason=reason,
        blocked_by=(Blocker.BAND,) if action is Action.WAIT else (), balance=100_000.0,
    )


def closed(day: date, entry: int, exit_: int, pnl: float = 4.0) -> Closed:
    return Closed(
        Trade(variant="es", symbol="$SPX", direction=Direction.LONG, bucket="REVERSION",
              entry_time=minute(day, entry), entry_price=6795.0, exit_time=minute(day, exit_),
              exit_price=6805.0, size_usd=5000.0, exit_regime=GexRegime.POSITIVE,
              exit_reason=ExitReason.TARGET, pnl=pnl),
        balance=100_000.0 + pnl,
    )


def test_the_book_keeps_the_last_two_days_and_their_trades() -> None:
    book = DayBook("es")
    for day in (D1, D2, D3):
        book.handle([decided(day, n) for n in range(5)] + [closed(day, 1, 3)])
    assert book.ledger(D1) is None
    latest = book.ledger()
    assert latest is not None
    assert set(latest.decisions["at"].dt.date) == {D3}
    assert len(latest.decisions) == 5
    assert latest.trades["timestamp"].tolist() == [minute(D3, 3)]
    previous = book.ledger(D2)
    assert previous is not None
    assert len(previous.trades) == 1


def test_the_book_masks_secrets_in_skip_reasons_as_the_store_does() -> None:
    book = DayBook("es", redact=lambda text: text.replace("s3cret", "***"))
    book.handle([decided(D1, 0, Action.SKIP, reason="auth: token s3cret refused")])
    day = book.ledger()
    assert day is not None
    assert day.decisions["reason"].tolist() == ["auth: token *** refused"]


def test_the_book_starts_from_the_rows_a_store_holds() -> None:
    book = DayBook("es")
    stored = ledger(session("es", D1, 7))
    decisions = stored.decisions.reindex(columns=[n for n, _ in DECISION_COLUMNS])
    book.seed(decisions, stored.trades.reindex(columns=[n for n, _ in TRADE_COLUMNS]))
    book.handle([decided(D1, 7)])
    day = book.ledger()
    assert day is not None
    assert len(day.decisions) == 8


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_live_page_is_drawn_once_per_new_minute_and_at_most_every_few_seconds() -> None:
    book = DayBook("es")
    ticks = Ticks()
    page = LivePage(book, label="ES", clock=ticks, min_interval_s=5.0,
                    now=lambda: minute(D1, 10))
    waiting = page.html().decode()
    assert "No minute committed yet" in waiting
    assert '<meta http-equiv="refresh" content="60">' in waiting
    book.handle([decided(D1, 0), decided(D1, 1)])
    ticks.now = 6.0
    first = page.html()
    assert b"gexbot live: ES" in first
    assert b"up to 2026-10-05 09:31 New York time" in first
    assert page.renders == 2
    ticks.now = 7.0
    assert page.html() is first  # nothing new
    book.handle([decided(D1, 2)])
    assert page.html() is first  # new, but drawn 1 s ago
    ticks.now = 11.5
    assert b"up to 2026-10-05 09:32" in page.html()
    assert page.renders == 3


def test_adding_a_minute_never_waits_for_a_drawing() -> None:
    book = DayBook("es")
    book.handle([decided(D1, 0)])
    drawing = threading.Event()
    release = threading.Event()

    class SlowPage(LivePage):
        def _draw(self) -> str:
            drawing.set()
            release.wait(10)
            return "page"

    page = SlowPage(book, label="ES")
    server = threading.Thread(target=page.html)
    server.start()
    assert drawing.wait(10)
    sink = threading.Thread(target=book.handle, args=([decided(D1, 1)],))
    sink.start()
    sink.join(2.0)  # the loop's sink returns while the page is still being drawn
    assert not sink.is_alive()
    assert book.version == 2
    release.set()
    server.join(10)


def _get(url: str) -> tuple[int, str, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


@pytest.mark.parametrize(
    ("page", "status", "kind", "body"),
    [
        (lambda: b"<html>today</html>", 200, "text/html; charset=utf-8", b"<html>today</html>"),
        (None, 404, "text/plain; charset=utf-8", b"not found\n"),
        (lambda: 1 / 0, 500, "text/plain; charset=utf-8", b"the live page failed; see the log\n"),
    ],
    ids=["served", "no page", "drawing failed"],
)
def test_the_server_serves_the_page_at_the_root(
    page: Callable[[], bytes] | None, status: int, kind: str, body: bytes
) -> None:
    server = HealthServer(0, max_age_s=150.0, page=page)
    server.start()
    try:
        got = _get(f"http://127.0.0.1:{server.port}/")
        assert got == (status, kind, body)
        assert _get(f"http://127.0.0.1:{server.port}/healthz")[0] == 200
    finally:
        server.stop()


def test_the_day_png_is_an_image_of_the_day() -> None:
    book = DayBook("es")
    book.handle([decided(D1, n, spot=6800.0 + n % 5) for n in range(30)] + [closed(D1, 3, 9)])
    job = book.chart_job(SessionEnded("es", D1, 1, 4.0, 100_004.0))
    assert job is not None
    image = job()
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(image) > 10_000
    assert book.chart_job(SessionEnded("es", D2, 0, 0.0, 100_004.0)) is None


def test_a_day_without_prices_cannot_be_drawn() -> None:
    book = DayBook("es")
    book.handle([decided(D1, n, Action.SKIP, reason="quote_missing: x", spot=float("nan"))
                 for n in range(3)])
    day = book.ledger()
    assert day is not None
    with pytest.raises(ValueError, match="no price recorded on 2026-10-05"):
        day_png(day, SessionEnded("es", D1, 0, 0.0, 100_000.0))
