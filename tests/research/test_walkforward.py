"""Walk-forward on matrices whose best combination changes at known sessions."""

from __future__ import annotations

import numpy as np
import pytest

from gexbot.errors import ConfigError
from gexbot.research import metrics
from gexbot.research.walkforward import parse_windows, walk_forward


def test_each_fold_trades_what_was_best_on_its_training_window() -> None:
    # combination 0 earns in sessions 0-9, combination 1 in sessions 10-19, 2 never
    daily = np.zeros((3, 20))
    daily[0, :10] = 1.0
    daily[1, 10:] = 2.0
    trades = np.ones((3, 20), dtype=np.int64)
    walk = walk_forward(daily, trades, train=6, test=4, metric=metrics.total_pnl)
    assert [(f.train_start, f.test_start, f.test_end) for f in walk.folds] == [
        (0, 6, 10), (4, 10, 14), (8, 14, 18), (12, 18, 20)]
    assert [f.picked for f in walk.folds] == [0, 0, 1, 1]
    assert walk.oos_pnl.tolist() == [1.0] * 4 + [0.0] * 4 + [2.0] * 6
    assert walk.oos_trades.sum() == 14
    assert walk.hindsight == 1
    assert walk.hindsight_pnl.tolist() == [0.0] * 4 + [2.0] * 10
    assert walk.picks(3).tolist() == [2, 2, 0]
    assert walk.fold_of_session().tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 2
    assert walk.picked_of_session().tolist() == [0] * 8 + [1] * 6


def test_ties_go_to_the_earlier_combination() -> None:
    daily = np.ones((4, 10))
    walk = walk_forward(daily, np.zeros((4, 10)), train=5, test=5, metric=metrics.total_pnl)
    assert [f.picked for f in walk.folds] == [0]
    assert walk.hindsight == 0


def test_windows_longer_than_the_data_are_refused() -> None:
    with pytest.raises(ConfigError, match="the data has 10 sessions"):
        walk_forward(np.zeros((2, 10)), np.zeros((2, 10)), 10, 2, metrics.sharpe)


@pytest.mark.parametrize("text", ["60", "60:", ":20", "a:b", "0:5", "60:-1", "1.5:2"])
def test_bad_window_sizes_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="expected TRAIN:TEST"):
        parse_windows(text)


def test_window_sizes_parse() -> None:
    assert parse_windows("60:20") == (60, 20)
