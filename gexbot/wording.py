"""Counts in the words of a sentence: "1 fold", "4 folds", "1,200 combinations".

A line a user reads once ("1 folds", "and 1 more problems") looks careless and makes the reader
doubt the figures around it; the counts in the research commands' lines go through `counted`.
"""

from __future__ import annotations


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """`count` with thousands separators and the noun in the number it takes."""
    noun = singular if count == 1 else (plural if plural is not None else f"{singular}s")
    return f"{count:,} {noun}"
