"""Metrics of daily PnL, checked by hand on small rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gexbot.research import metrics, stats


def test_sharpe_sortino_pnl_and_drawdown_by_hand() -> None:
    daily = np.array([[10.0, -5.0, 20.0, -15.0, 5.0]])
    mean = 3.0
    deviation = math.sqrt(sum((x - mean) ** 2 for x in daily[0]) / 4)
    assert metrics.sharpe(daily)[0] == pytest.approx(mean / deviation * math.sqrt(252))
    downside = math.sqrt((25 + 225) / 5)
    assert metrics.sortino(daily)[0] == pytest.approx(mean / downside * math.sqrt(252))
    assert metrics.total_pnl(daily)[0] == 15.0
    # equity 10, 5, 25, 10, 15: the peak 25 falls to 10
    assert metrics.max_drawdown(daily)[0] == 15.0


def test_rows_that_never_traded_or_never_lost_score_zero_not_nan() -> None:
    daily = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [2.0, 2.0, 2.0]])
    assert metrics.sharpe(daily)[0] == 0.0
    assert metrics.sharpe(daily)[2] == 0.0
    assert metrics.sortino(daily)[1] == 0.0
    assert metrics.max_drawdown(daily).tolist() == [0.0, 0.0, 0.0]


def test_a_loss_from_the_start_is_a_drawdown_from_the_starting_balance() -> None:
    assert metrics.max_drawdown(np.array([[-4.0, 1.0, -2.0]]))[0] == 5.0


def test_rows_are_independent() -> None:
    rng = np.random.default_rng(2)
    daily = rng.normal(size=(6, 40))
    for name, metric in metrics.METRICS.items():
        whole = metric(daily)
        one_by_one = np.array([metric(daily[i : i + 1])[0] for i in range(6)])
        np.testing.assert_allclose(whole, one_by_one, err_msg=name)


def test_the_sweeps_ratios_are_the_backtests() -> None:
    rng = np.random.default_rng(5)
    daily = rng.normal(3.0, 20.0, size=(5, 60))
    daily[1, ::2] = 0.0
    for row, sharpe, sortino in zip(daily, metrics.sharpe(daily), metrics.sortino(daily),
                                    strict=True):
        assert sharpe == pytest.approx(stats.sharpe(row))
        assert sortino == pytest.approx(stats.sortino(row))
