"""Counts in messages take the noun in the number it needs."""

from __future__ import annotations

from gexbot.wording import counted


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert counted(1, "fold") == "1 fold"
    assert counted(0, "fold") == "0 folds"
    assert counted(12_870, "split") == "12,870 splits"
    assert counted(1, "process", "processes") == "1 process"
    assert counted(2, "process", "processes") == "2 processes"
