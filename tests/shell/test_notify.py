"""Stdout event lines, the collapsing of skip runs, and the run summary."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest

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
    Opened,
    Position,
    SessionEnded,
    SessionStarted,
    SessionTimes,
    Trade,
)
from gexbot.shell.notify import (
    ConsoleSink,
    SkipCollapser,
    Summary,
    format_event,
    signed_usd,
    skip_kind,
    usd,
)

DAY = date(2026, 11, 20)
OPEN = datetime(2026, 11, 20, 9, 30, tzinfo=EASTERN)
SESSION = SessionTimes(
    date=DAY,
    open=OPEN,
    close=datetime(2026, 11, 20, 16, 0, tzinfo=EASTERN),
    flatten=datetime(2026, 11, 20, 15, 45, tzinfo=EASTERN),
    early_close=False,
)
FEATURES = Features(
    net_gex=1.234e9,
    gex_regime=GexRegime.POSITIVE,
    excluded_contracts=0,
    ofi=2.314,
    hurst=0.4213,
    hmm_state=HmmState.LOW,
    band_mid=6810.4,
    band_upper=6825.0,
    band_lower=6802.0,
    band_sigma=4.58,
)
WHY = "spot 6801.00 below the lower band, OFI 2.31, Hurst 0.42, GEX POSITIVE, HMM LOW, b 0.67"


def at(hour: int, minute: int) -> datetime:
    return datetime(2026, 11, 20, hour, minute, tzinfo=EASTERN)


def started(first: float = 6812.5, prev: float | None = 6790.25, suspends: bool = False,
            session: SessionTimes = SESSION) -> SessionStarted:
    gap = abs(first - prev) / prev if prev else None
    return SessionStarted("es", session, session.open, first, prev, gap, suspends, 100_000.0)


def opened(when: datetime | None = None) -> Opened:
    position = Position(
        direction=Direction.LONG,
        bucket="REVERSION",
        entry_time=when or at(10, 31),
        entry_price=6801.25,
        size_usd=4000.0,
        target=6810.4,
        stop=6787.5,
        entry_regime=GexRegime.POSITIVE,
        session_date=DAY,
    )
    return Opened("es", "$SPX", position, 0.1234, FEATURES, 6801.0, WHY)


def closed(pnl: float, balance: float, reason: ExitReason = ExitReason.TARGET) -> Closed:
    trade = Trade(
        variant="es",
        symbol="$SPX",
        direction=Direction.LONG,
        bucket="REVERSION",
        entry_time=at(10, 31),
        entry_price=6801.25,
        exit_time=at(10, 47),
        exit_price=6810.5,
        size_usd=4000.0,
        exit_regime=GexRegime.POSITIVE,
        exit_reason=reason,
        pnl=pnl,
    )
    return Closed(trade, balance)


def decided(
    when: datetime,
    action: Action = Action.WAIT,
    reason: str | None = None,
    balance: float = 100_000.0,
) -> Decided:
    blocked = () if action is Action.SKIP else (Blocker.BAND,)
    feats = None if action is Action.SKIP else FEATURES
    spot = None if action is Action.SKIP else 6805.0
    return Decided("es", when, spot, feats, None, None, None, action, reason, blocked, balance)


def skipped(
    when: datetime, reason: str = "quote_missing: no $SPX quote", balance: float = 100_000.0
) -> Decided:
    return decided(when, Action.SKIP, reason, balance)


def test_session_started_line() -> None:
    assert format_event(started(), "ES") == (
        "2026-11-20 09:30:00 ES  SESSION  09:30-16:00 | first 6,812.50 | prev close 6,790.25"
        " | gap +0.33% (entries open) | balance $100,000.00"
    )


def test_session_started_line_early_close_gap_down_and_suspension() -> None:
    early = SessionTimes(DAY, OPEN, at(13, 0), at(12, 45), early_close=True)
    line = format_event(started(first=6700.0, prev=6790.25, suspends=True, session=early), "ES")
    assert line is not None
    assert "09:30-13:00 (early close)" in line
    assert f"gap {(6700.0 - 6790.25) / 6790.25:+.2%} (entries suspended)" in line
    assert "gap -1.33%" in line


def test_session_started_line_without_previous_close() -> None:
    line = format_event(started(prev=None), "ES")
    assert line is not None
    assert "prev close n/a | gap unknown (entries open)" in line


def test_opened_line() -> None:
    assert format_event(opened(), "ES") == (
        "2026-11-20 10:31:00 ES  LONG     fill 6,801.25 | size $4,000.00 | target 6,810.40"
        " | stop 6,787.50 | Kelly 12.3% | GEX +1.23B Hurst 0.42 OFI 2.31 HMM LOW | " + WHY
    )


def test_closed_line_with_signed_pnl() -> None:
    pnl = 4000.0 * (6810.5 - 6801.25) / 6801.25
    assert format_event(closed(pnl, 100_000.0 + pnl), "ES") == (
        "2026-11-20 10:47:00 ES  CLOSE    LONG 6,801.25 -> 6,810.50 | TARGET"
        " | PnL +$5.44 (+0.14%) | balance $100,005.44"
    )
    loss = format_event(closed(-120.5, 99_879.5, ExitReason.STOP_LOSS), "ES")
    assert loss is not None
    assert "| STOP_LOSS | PnL -$120.50" in loss
    assert loss.endswith("balance $99,879.50")


def test_session_ended_line() -> None:
    assert format_event(SessionEnded("es", DAY, 3, -12.3, 99_987.7), "ES") == (
        "2026-11-20 close    ES  END      3 trades | day PnL -$12.30 | balance $99,987.70"
    )
    one = format_event(SessionEnded("es", DAY, 1, 0.0, 100_000.0), "ES")
    assert one is not None
    assert "1 trade | day PnL +$0.00" in one


def test_routine_minutes_print_nothing_and_skips_print_their_reason() -> None:
    assert format_event(decided(at(10, 0)), "ES") is None
    assert format_event(decided(at(10, 0), Action.HOLD), "ES") is None
    assert format_event(skipped(at(10, 1)), "ES") == (
        "2026-11-20 10:01:00 ES  SKIP     quote_missing: no $SPX quote"
    )


def test_times_are_shown_in_new_york() -> None:
    utc_minute = datetime(2026, 11, 20, 15, 31, tzinfo=UTC)  # 10:31 EST
    line = format_event(opened(when=utc_minute), "ES")
    assert line is not None
    assert line.startswith("2026-11-20 10:31:00 ES  LONG")


def test_skip_kind_is_the_label_before_the_colon() -> None:
    assert skip_kind("chain_status: FAILED") == "chain_status"
    assert skip_kind("odd reason") == "odd reason"
    assert skip_kind(None) == "unknown"


@pytest.mark.parametrize("amount", [-0.0, -0.001, -0.004, 0.0, 0.004])
def test_an_amount_shown_as_zero_carries_no_minus_sign(amount: float) -> None:
    assert signed_usd(amount) == "+$0.00"
    assert usd(amount) == "$0.00"


def test_amounts_keep_their_sign_and_cents() -> None:
    assert [signed_usd(v) for v in (5.444, -12.3, -0.006)] == ["+$5.44", "-$12.30", "-$0.01"]
    assert [usd(v) for v in (100_005.444, -1234.5)] == ["$100,005.44", "-$1,234.50"]


def test_collapser_prints_first_skip_then_the_run_length_when_data_returns() -> None:
    collapser = SkipCollapser("ES")
    lines: list[str] = []
    for minute in range(1, 5):
        lines += collapser.observe(skipped(at(10, minute)))
    lines += collapser.observe(decided(at(10, 5)))
    assert lines == [
        "2026-11-20 10:01:00 ES  SKIP     quote_missing: no $SPX quote",
        "2026-11-20 10:05:00 ES  SKIP     4 minutes skipped 10:01-10:04"
        " (quote_missing: no $SPX quote)",
    ]


def test_collapser_starts_a_new_run_when_the_reason_changes() -> None:
    collapser = SkipCollapser("ES")
    lines = collapser.observe(skipped(at(10, 1)))
    lines += collapser.observe(skipped(at(10, 2)))
    lines += collapser.observe(skipped(at(10, 3), "chain_status: FAILED"))
    lines += collapser.observe(decided(at(10, 4)))
    assert [line[20:] for line in lines] == [
        "ES  SKIP     quote_missing: no $SPX quote",
        "ES  SKIP     2 minutes skipped 10:01-10:02 (quote_missing: no $SPX quote)",
        "ES  SKIP     chain_status: FAILED",
    ]


def test_a_single_skipped_minute_needs_no_count_line() -> None:
    collapser = SkipCollapser("ES")
    assert len(collapser.observe(skipped(at(10, 1)))) == 1
    assert collapser.observe(decided(at(10, 2))) == []
    assert collapser.flush() == []


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_console_sink_logs_one_line_per_event_with_its_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = ConsoleSink(logging.getLogger("gexbot.test.console"))
    caplog.set_level(logging.INFO, logger="gexbot.test.console")
    sink.handle([started(), decided(at(9, 30))])
    sink.handle([opened(), decided(at(10, 31), Action.LONG)])
    sink.handle([decided(at(10, 32), Action.HOLD)])
    messages = _messages(caplog)
    assert messages == [format_event(started(), "ES"), format_event(opened(), "ES")]
    assert caplog.records[1].event_at == "2026-11-20T10:31:00-05:00"  # type: ignore[attr-defined]
    assert caplog.records[1].size_usd == 4000.0  # type: ignore[attr-defined]


def test_console_sink_closes_a_skip_run_before_the_session_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = ConsoleSink(logging.getLogger("gexbot.test.console"))
    caplog.set_level(logging.INFO, logger="gexbot.test.console")
    sink.handle([skipped(at(15, 58))])
    sink.handle([skipped(at(15, 59))])
    sink.handle([SessionEnded("es", DAY, 0, 0.0, 100_000.0)])
    messages = _messages(caplog)
    assert len(messages) == 3
    assert messages[1] == (
        "2026-11-20 15:59:00 ES  SKIP     2 minutes skipped 15:58-15:59"
        " (quote_missing: no $SPX quote)"
    )
    assert " END " in messages[2]


def test_console_sink_close_reports_an_open_skip_run(caplog: pytest.LogCaptureFixture) -> None:
    sink = ConsoleSink(logging.getLogger("gexbot.test.console"), label="NQ")
    caplog.set_level(logging.INFO, logger="gexbot.test.console")
    for minute in (1, 2, 3):
        sink.handle([skipped(at(11, minute))])
    sink.close()
    assert _messages(caplog)[-1].endswith("NQ  SKIP     3 minutes skipped 11:01-11:03"
                                          " (quote_missing: no $SPX quote)")


def test_console_sink_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    sink = ConsoleSink(logging.getLogger("gexbot.test.console"))
    sink.handle([object()])  # type: ignore[list-item]
    assert any(record.levelno == logging.ERROR for record in caplog.records)


def test_summary_counts_trades_drawdown_and_skips() -> None:
    summary = Summary()
    balance = 100_000.0
    summary.add([started()])
    for pnl in (100.0, -300.0, 50.0, -100.0):
        balance += pnl
        summary.add([closed(pnl, balance), decided(at(12, 0), Action.CLOSE, balance=balance)])
    summary.add([
        skipped(at(13, 1), balance=balance),
        skipped(at(13, 2), balance=balance),
        skipped(at(13, 3), "chain_status: x", balance=balance),
    ])
    peak = 100_100.0
    assert summary.trades == 4
    assert summary.wins == 2
    assert summary.max_drawdown_usd == pytest.approx(peak - 99_750.0)
    assert summary.max_drawdown_pct == pytest.approx(350.0 / peak)
    assert summary.lines() == [
        "trades          4 (2 won, win rate 50.0%)",
        "total PnL       -$250.00",
        "max drawdown    $350.00 (0.35%) on closed trades",
        "final balance   $99,750.00",
        "skipped minutes 3 (chain_status 1, quote_missing 2)",
    ]


def test_summary_drawdown_counts_a_first_losing_trade_from_the_starting_balance() -> None:
    summary = Summary()
    summary.add([closed(-500.0, 99_500.0)])
    summary.add([closed(200.0, 99_700.0)])
    assert summary.max_drawdown_usd == pytest.approx(500.0)
    assert summary.max_drawdown_pct == pytest.approx(0.005)
    assert summary.balance == 99_700.0


def test_summary_of_an_empty_run() -> None:
    assert Summary().lines()[0] == "trades          0 (0 won, win rate n/a)"
    assert Summary().lines()[3] == "final balance   n/a"

