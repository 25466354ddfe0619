"""Walk-forward: choose on a training window, trade the choice on the window after it.

A sweep's best combination is chosen with hindsight; its figures are in-sample. Walking
forward replays what a user choosing by the same rule would have lived through: on each
training window of TRAIN sessions the combination with the best metric is picked and traded on
the next TEST sessions; then both windows move on by TEST sessions. The test windows stitched
together are the out-of-sample result, set beside the hindsight-best combination over the same
sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gexbot.errors import ConfigError
from gexbot.wording import counted


@dataclass(frozen=True, slots=True)
class Fold:
    """One step: training sessions [train_start, test_start), test [test_start, test_end)."""

    train_start: int
    test_start: int
    test_end: int
    picked: int
    """Row of the combination chosen on the training window."""


@dataclass(frozen=True, slots=True)
class WalkForward:
    """Folds, and the stitched out-of-sample run beside the hindsight-best combination.

    `first_test` is the first session traded out of sample; `oos_pnl[i]` is the PnL of session
    `first_test + i` under the combination its fold picked; `hindsight` is the row best by the
    metric over every session and `hindsight_pnl` its PnL over the same out-of-sample sessions.
    """

    train: int
    test: int
    folds: tuple[Fold, ...]
    first_test: int
    oos_pnl: np.ndarray
    oos_trades: np.ndarray
    hindsight: int
    hindsight_pnl: np.ndarray
    hindsight_trades: np.ndarray

    def picks(self, combinations: int) -> np.ndarray:
        """How many folds picked each combination."""
        counts = np.zeros(combinations, dtype=np.int64)
        for fold in self.folds:
            counts[fold.picked] += 1
        return counts

    def fold_of_session(self) -> np.ndarray:
        """The fold index of each out-of-sample session."""
        return np.concatenate(
            [np.full(f.test_end - f.test_start, i) for i, f in enumerate(self.folds)]
        )

    def picked_of_session(self) -> np.ndarray:
        """The combination row traded in each out-of-sample session."""
        return np.concatenate(
            [np.full(f.test_end - f.test_start, f.picked) for f in self.folds]
        )


def parse_windows(text: str) -> tuple[int, int]:
    """`TRAIN:TEST` in sessions, both whole and positive."""
    train, sep, test = text.partition(":")
    try:
        sizes = (int(train), int(test)) if sep else None
    except ValueError:
        sizes = None
    if sizes is None or min(sizes) < 1:
        raise ConfigError(
            f"--walk-forward {text!r}: expected TRAIN:TEST in sessions, e.g. 60:20"
        )
    return sizes


def walk_forward(
    daily: np.ndarray,
    trades: np.ndarray,
    train: int,
    test: int,
    metric: Callable[[np.ndarray], np.ndarray],
) -> WalkForward:
    """Walk forward over `daily` (combinations × sessions) choosing by `metric` (higher wins).

    Ties go to the earlier combination (the grid's order), so the choice is reproducible.
    """
    sessions = daily.shape[1]
    if sessions <= train:
        raise ConfigError(
            f"--walk-forward {train}:{test}: the data has {counted(sessions, 'session')}; the first"
            f" training window alone needs {train} and at least one more is needed to test"
        )
    folds = []
    for test_start in range(train, sessions, test):
        window = daily[:, test_start - train : test_start]
        picked = int(np.argmax(metric(window)))
        folds.append(Fold(test_start - train, test_start, min(test_start + test, sessions),
                          picked))
    rows = np.concatenate([np.full(f.test_end - f.test_start, f.picked) for f in folds])
    columns = np.arange(train, sessions)
    hindsight = int(np.argmax(metric(daily)))
    return WalkForward(
        train=train,
        test=test,
        folds=tuple(folds),
        first_test=train,
        oos_pnl=daily[rows, columns],
        oos_trades=trades[rows, columns],
        hindsight=hindsight,
        hindsight_pnl=daily[hindsight, train:],
        hindsight_trades=trades[hindsight, train:],
    )
