"""Grids: what a file expands to, and the one-line refusals of bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from gexbot.errors import ConfigError
from gexbot.research.grid import MAX_COMBINATIONS, load_grid
from gexbot.settings import load_variant

PRESET = load_variant("es")


def _grid(tmp_path: Path, text: str, **kwargs: bool):
    path = tmp_path / "grid.yaml"
    path.write_text(text, encoding="utf-8")
    return load_grid(path, PRESET, **kwargs)


def test_lists_ranges_and_linspace_expand_to_their_product(tmp_path: Path) -> None:
    grid = _grid(tmp_path, """
strategy.ofi.long_above: [1.5, 2.5]
strategy.hurst.threshold: {start: 0.3, stop: 0.6, step: 0.1}
strategy.bands.width_sigma: {linspace: [1.5, 3.0, 4]}
strategy.cooldown_minutes: {start: 0, stop: 10, step: 5}
strategy.gap.threshold: 0.01
""")
    assert grid.keys == ("strategy.ofi.long_above", "strategy.hurst.threshold",
                         "strategy.bands.width_sigma", "strategy.cooldown_minutes",
                         "strategy.gap.threshold")
    assert len(grid) == 2 * 4 * 4 * 3 * 1
    columns = list(zip(*grid.combinations, strict=True))
    assert sorted(set(columns[1])) == [0.3, 0.4, 0.5, 0.6]
    assert sorted(set(columns[2])) == [1.5, 2.0, 2.5, 3.0]
    assert sorted(set(columns[3])) == [0, 5, 10]
    assert all(isinstance(v, int) for v in columns[3])
    first = next(grid.overrides())
    assert first == {"strategy.ofi.long_above": 1.5, "strategy.hurst.threshold": 0.3,
                     "strategy.bands.width_sigma": 1.5, "strategy.cooldown_minutes": 0,
                     "strategy.gap.threshold": 0.01}


def test_random_points_are_drawn_from_the_ranges_and_repeat_with_the_seed(
    tmp_path: Path,
) -> None:
    text = """
strategy.ofi.long_above: {start: 1.0, stop: 3.0}
strategy.cooldown_minutes: {start: 0, stop: 30}
strategy.hurst.threshold: [0.4, 0.5]
random: 50
seed: 3
"""
    grid = _grid(tmp_path, text)
    assert len(grid) == 50
    ofi, cooldown, hurst = zip(*grid.combinations, strict=True)
    assert all(1.0 <= v <= 3.0 for v in ofi)
    assert len(set(ofi)) == 50
    assert all(isinstance(v, int) and 0 <= v <= 30 for v in cooldown)
    assert set(hurst) == {0.4, 0.5}
    assert _grid(tmp_path, text).combinations == grid.combinations
    other = _grid(tmp_path, text.replace("seed: 3", "seed: 4"))
    assert other.combinations != grid.combinations


def test_a_large_grid_needs_yes_or_a_sample(tmp_path: Path) -> None:
    text = """
strategy.ofi.long_above: {linspace: [1.0, 3.0, 100]}
strategy.ofi.short_below: {linspace: [0.1, 0.9, 100]}
strategy.stop_sigma: {linspace: [1.0, 5.0, 100]}
"""
    with pytest.raises(ConfigError) as refused:
        _grid(tmp_path, text)
    assert "1,000,000 combinations" in str(refused.value)
    assert "--yes" in str(refused.value)
    assert "random: N" in str(refused.value)
    assert MAX_COMBINATIONS < 1_000_000
    sampled = _grid(tmp_path, text + "random: 1000\n")
    assert len(sampled) == 1000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("strategy.ofi.long_abve: [1, 2]", "grid.yaml: strategy.ofi.long_abve: unknown key"),
        ("strategy.ofi.long_above: [1.0, -2.0]",
         "grid.yaml: strategy.ofi.long_above: Input should be greater than 0"),
        ("strategy.cooldown_minutes: [5, 2.5]", "grid.yaml: strategy.cooldown_minutes:"),
        ("strategy.hurst.threshold: [0.4, abc]", "grid.yaml: strategy.hurst.threshold:"),
        ("strategy.hurst.threshold: {start: 0.2, stop: 1.4, step: 0.4}",
         "grid.yaml: strategy.hurst.threshold: Input should be less than or equal to 1"),
        ("strategy.ofi.long_above: [.nan]", "strategy.ofi.long_above: Input should be a finite"),
        ("strategy.cooldown_minutes: [true]", "strategy.cooldown_minutes: Input should be a valid"),
        ("strategy.sizing.bucket: [MOMENTUM, FOO]", "strategy.sizing.bucket: Input should be"),
        ("variant: [es, nq]", "grid.yaml: variant: cannot be overridden"),
        ("strategy.ofi: [1, 2]", "grid.yaml: strategy.ofi: is a section"),
        ("", "grid.yaml: a grid is a mapping"),
        ("random: 5", "grid.yaml: the grid names no preset key"),
        ("strategy.ofi.long_above: []", "grid.yaml: strategy.ofi.long_above: no values"),
        ("strategy.ofi.long_above:", "grid.yaml: strategy.ofi.long_above: no values"),
        ("strategy.ofi.long_above: [2.0, 2.0]", "a value is listed twice"),
        ("strategy.ofi.long_above: [1.0]\nstrategy.ofi.long_above: [2.0]",
         "grid.yaml: line 2 not valid YAML (key 'strategy.ofi.long_above' appears twice)"),
        ("strategy.ofi.long_above: {start: 3, stop: 1, step: 1}", "stop 1.0 is below start"),
        ("strategy.ofi.long_above: {start: 1, stop: 3, step: 0}", "step must be positive"),
        ("strategy.ofi.long_above: {start: 1, stop: 3}", "a range needs a step (or random: N)"),
        ("strategy.ofi.long_above: {start: 1, stop: .inf, step: 1}", "not a finite number"),
        ("strategy.ofi.long_above: {start: 1, stop: 1000000, step: 1}", "at most 10,000"),
        ("strategy.ofi.long_above: {from: 1, to: 3}", "expected a list, a value"),
        ("strategy.ofi.long_above: {linspace: [1, 3]}", "linspace is [first, last, count]"),
        ("strategy.ofi.long_above: {linspace: [1, 3, 0]}", "linspace count: expected a whole"),
        ("strategy.ofi.long_above: [[1, 2]]", "is not a single value"),
        ("strategy.ofi.long_above: [1.0]\nrandom: 0", "random: expected a whole number ≥ 1"),
        ("strategy.ofi.long_above: [1.0]\nrandom: 2.5", "random: expected a whole number"),
        ("strategy.ofi.long_above: [1.0]\nseed: 4", "seed: only means something with random"),
        ("strategy.ofi.long_above: [1.0, 2.0", "grid.yaml: line 1 not valid YAML"),
    ],
)
def test_bad_grids_are_refused_in_one_line_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        _grid(tmp_path, text)
    text_of = str(refused.value)
    assert message in text_of
    assert "\n" not in text_of
    assert text_of.startswith(str(tmp_path / "grid.yaml"))


def test_a_missing_or_unreadable_grid_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="grid file not found"):
        load_grid(tmp_path / "nope.yaml", PRESET)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not a grid: is not UTF-8 text"):
        load_grid(binary, PRESET)
    with pytest.raises(ConfigError, match="not a grid: is a folder"):
        load_grid(tmp_path, PRESET)
    deep = tmp_path / "deep.yaml"
    deep.write_text("strategy.ofi.long_above: " + "[" * 100 + "]" * 100)
    with pytest.raises(ConfigError, match="nested more than"):
        load_grid(deep, PRESET)
