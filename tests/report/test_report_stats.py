"""The report's numbers, checked on rows whose answers are known by hand."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest
from report_rows import at, decision, ledger, session, trade

from gexbot.report import stats

D1, D2, D3 = date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)


def test_summary_counts_trades_wins_pnl_skips_and_days() -> None:
    rows = [
        *session("es", D1, 10),
        decision("es", at(D1, 10), action="CLOSE", blocked_by="position", balance=100_010.0),
        decision("es", at(D2, 0), action="SKIP", reason="quote_missing: no quote", spot=None,
                 balance=100_010.0),
        decision("es", at(D2, 1), action="SKIP", reason="chain_status: FAILED",
                 balance=100_010.0),
        decision("es", at(D2, 2), action="SKIP", reason="quote_missing: again",
                 balance=100_004.0),
    ]
    trades = [
        trade("es", at(D1, 2), at(D1, 10), pnl=10.0),
        trade("es", at(D2, 1), at(D2, 2), pnl=-6.0, exit_reason="STOP_LOSS"),
    ]
    book = ledger(rows, trades)
    summary = stats.summarize(book.decisions, book.trades)
    assert (summary.minutes, summary.days, summary.trades, summary.wins) == (14, 2, 2, 1)
    assert summary.win_rate == 0.5
    assert summary.total_pnl == pytest.approx(4.0)
    assert summary.skipped == 3
    assert summary.skipped_by_kind == {"chain_status": 1, "quote_missing": 2}
    assert summary.start_balance == 100_000.0
    assert summary.end_balance == 100_004.0
    assert summary.max_drawdown_usd == pytest.approx(6.0)
    assert summary.max_drawdown_pct == pytest.approx(6.0 / 100_010.0)


def test_a_balance_that_never_fell_has_a_drawdown_of_plus_zero() -> None:
    book = ledger(session("es", D1, 5))
    summary = stats.summarize(book.decisions, book.trades)
    assert summary.max_drawdown_pct == 0.0
    assert math.copysign(1.0, summary.max_drawdown_pct) == 1.0  # not -0.0, shown as -0.00%


def test_equity_curve_keeps_only_the_minutes_where_the_balance_moves() -> None:
    balances = [100.0, 100.0, 110.0, 110.0, 110.0, 105.0, 105.0, 120.0, 120.0]
    rows = [decision("es", at(D1, m), balance=b) for m, b in enumerate(balances)]
    curve = stats.equity_curve(ledger(rows).decisions)
    assert curve["balance"].tolist() == [100.0, 110.0, 105.0, 120.0, 120.0]
    assert curve["peak"].tolist() == [100.0, 110.0, 110.0, 120.0, 120.0]
    assert curve["drawdown"].tolist() == pytest.approx([0.0, 0.0, 105 / 110 - 1, 0.0, 0.0])


def test_daily_returns_count_days_without_trades_as_zero_and_sharpe_annualizes() -> None:
    rows = [
        decision("es", at(D1, 0), balance=100_010.0),
        decision("es", at(D2, 0), balance=100_010.0),
        decision("es", at(D3, 0), balance=100_000.0),
    ]
    trades = [trade("es", at(D1, 0), at(D1, 0), pnl=10.0),
              trade("es", at(D3, 0), at(D3, 0), pnl=-10.0)]
    book = ledger(rows, trades)
    daily = stats.daily_returns(book.decisions, book.trades)
    assert daily["date"].tolist() == [D1, D2, D3]
    assert daily["pnl"].tolist() == [10.0, 0.0, -10.0]
    expected = np.array([10 / 100_000, 0.0, -10 / 100_010])
    assert daily["return"].to_numpy() == pytest.approx(expected)
    ratio = math.sqrt(252) * expected.mean() / expected.std(ddof=1)
    assert stats.sharpe(daily["return"]) == pytest.approx(ratio)


@pytest.mark.parametrize("returns", [[], [0.01], [0.01, 0.01, 0.01]])
def test_sharpe_is_undefined_without_two_days_or_without_spread(returns: list[float]) -> None:
    import pandas as pd

    assert stats.sharpe(pd.Series(returns, dtype=float)) is None


def test_blockers_count_every_listing_and_the_sole_blocker_in_engine_order() -> None:
    rows = [
        decision("es", at(D1, 0), blocked_by="gex,band"),
        decision("es", at(D1, 1), blocked_by="band"),
        decision("es", at(D1, 2), blocked_by="band"),
        decision("es", at(D1, 3), blocked_by="position,hmm"),
        decision("es", at(D1, 4), blocked_by="made-up"),
        decision("es", at(D1, 5), blocked_by=None, action="LONG"),
    ]
    counts = stats.blockers(ledger(rows).decisions)
    assert counts.values.tolist() == [
        ["position", 1, 0], ["hmm", 1, 0], ["gex", 1, 0], ["band", 3, 2], ["made-up", 1, 1],
    ]


def test_funnel_stages_follow_their_definitions_and_only_narrow() -> None:
    rows = [
        decision("es", at(D1, 0), action="SKIP", blocked_by=None, reason="x: y"),
        decision("es", at(D1, 1), blocked_by="warmup,band"),  # features not ready
        decision("es", at(D1, 2), blocked_by="hmm,band"),  # features refuse
        decision("es", at(D1, 3), action="HOLD", blocked_by="position,band"),
        decision("es", at(D1, 4), blocked_by="band"),  # features allowed, inside the bands
        decision("es", at(D1, 5), blocked_by="ofi"),  # breached, flow disagrees
        decision("es", at(D1, 6), blocked_by="kelly"),  # flow agreed, sizing refused
        decision("es", at(D1, 7), blocked_by=None, action="SHORT"),
        decision("es", at(D1, 8), blocked_by="ofi,kelly"),
        decision("es", at(D1, 9), blocked_by="band,nonsense"),  # an unknown blocker stops early
    ]
    assert stats.funnel(ledger(rows).decisions) == [
        ("minutes", 10), ("features allowed", 5), ("band breached", 4),
        ("order flow agreed", 2), ("entered", 1),
    ]


def test_trades_grouped_by_reason_side_and_entry_hour() -> None:
    trades = [
        trade("es", at(D1, 5), at(D1, 40), pnl=2.0),  # 09:35 entry
        trade("es", at(D1, 45), at(D1, 50), pnl=-1.0, exit_reason="STOP_LOSS", action="SHORT"),
        trade("es", at(D1, 100), at(D1, 120), pnl=4.0),  # 11:10
    ]
    book = ledger([decision("es", at(D1, 0))], trades)
    by_reason = stats.trades_by(book.trades, "exit_reason")
    assert by_reason.values.tolist() == [["STOP_LOSS", 1, 0, -1.0], ["TARGET", 2, 2, 6.0]]
    by_side = stats.trades_by(book.trades, "action")
    assert by_side.values.tolist() == [["LONG", 2, 2, 6.0], ["SHORT", 1, 0, -1.0]]
    by_hour = stats.trades_by(book.trades, "hour")
    assert by_hour.values.tolist() == [[9, 1, 1, 2.0], [10, 1, 0, -1.0], [11, 1, 1, 4.0]]


def test_envelope_thins_a_long_series_but_keeps_every_extreme() -> None:
    rng = np.random.default_rng(4)
    y = np.cumsum(rng.normal(size=100_000))
    y[31_337] = 1e6
    y[77_777] = -1e6
    x = np.arange(len(y))
    kept_x, kept_y = stats.envelope(x, y, buckets=500)
    assert len(kept_y) <= 2000
    assert kept_y.max() == 1e6
    assert kept_y.min() == -1e6
    assert kept_x[0] == 0
    assert kept_x[-1] == len(y) - 1
    assert np.all(np.diff(kept_x) > 0)
    short = np.arange(50.0)
    assert stats.envelope(short, short, buckets=500)[1] is short
