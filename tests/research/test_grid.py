"""Grids: what a file expands to, and the one-line refusals of bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from gexbot.errors import ConfigError
from gexbot.research.grid import (
    MAX_COMBINATIONS,
    MAX_SWEEP,
    MAX_VALUES_PER_KEY,
    grid_from_mapping,
    load_grid,
)
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


def test_random_draws_are_counted_before_any_is_drawn(tmp_path: Path) -> None:
    over = MAX_COMBINATIONS + 1
    text = f"strategy.ofi.long_above: {{start: 1.0, stop: 3.0}}\nrandom: {over}\n"
    with pytest.raises(ConfigError) as refused:
        _grid(tmp_path, text)
    assert f"random: {over:,} draws; run them all with --yes, or draw fewer" in str(refused.value)
    assert len(_grid(tmp_path, text, allow_large=True)) == over
    beyond = f"strategy.ofi.long_above: {{start: 1.0, stop: 3.0}}\nrandom: {MAX_SWEEP + 1}\n"
    with pytest.raises(ConfigError, match=f"one sweep takes at most {MAX_SWEEP:,} combinations"):
        _grid(tmp_path, beyond, allow_large=True)
    with pytest.raises(ConfigError, match=r"random: about 10\^400 draws; one sweep takes"):
        grid_from_mapping({"random": 10**400, "strategy.ofi.long_above": [2.0]}, PRESET,
                          "g.yaml:", allow_large=True)


def test_a_grid_beyond_what_one_sweep_takes_is_refused_even_with_yes(tmp_path: Path) -> None:
    text = """
strategy.ofi.long_above: {linspace: [1.0, 3.0, 101]}
strategy.ofi.short_below: {linspace: [0.1, 0.9, 100]}
strategy.stop_sigma: {linspace: [1.0, 5.0, 100]}
"""
    with pytest.raises(ConfigError) as refused:
        _grid(tmp_path, text, allow_large=True)
    assert "1,010,000 combinations; one sweep takes at most 1,000,000" in str(refused.value)
    assert "split the grid" in str(refused.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"start": 0, "stop": 1, "step": 1e-320}, "step 1e-320 from 0 to 1 gives more than 10,000"),
        ({"start": -1e308, "stop": 1e308, "step": 1.0}, "gives more than 10,000 values"),
        ({"start": 0, "stop": 10**400, "step": 1}, "is not a finite number"),
        ({"linspace": [0, 1, 10**400]}, r"about 10^400 values; at most 10,000 per key"),
        (list(range(1, MAX_VALUES_PER_KEY + 2)), "10,001 values; at most 10,000 per key"),
    ],
)
def test_the_values_of_one_key_are_counted_before_they_are_built(
    spec: object, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        grid_from_mapping({"strategy.ofi.long_above": spec}, PRESET, "g.yaml:")
    assert message in str(refused.value)
    assert len(str(refused.value)) < 200


def test_the_schema_not_the_spelling_decides_whole_numbers(tmp_path: Path) -> None:
    sampled = _grid(tmp_path, "strategy.ofi.long_above: {start: 1, stop: 3}\nrandom: 200\n")
    drawn = [values[0] for values in sampled.combinations]
    assert len(drawn) == 200
    assert all(isinstance(v, float) and 1.0 <= v <= 3.0 for v in drawn)
    assert sum(not v.is_integer() for v in drawn) == 200
    stepped = _grid(tmp_path, "strategy.ofi.long_above: {start: 1, stop: 3, step: 1}")
    assert [v for (v,) in stepped.combinations] == [1.0, 2.0, 3.0]
    assert all(isinstance(v, float) for (v,) in stepped.combinations)
    minutes = _grid(tmp_path, "strategy.cooldown_minutes: {start: 0.5, stop: 3.7}\nrandom: 60\n")
    assert {v for (v,) in minutes.combinations} == {1, 2, 3}
    assert all(isinstance(v, int) for (v,) in minutes.combinations)
    spaced = _grid(tmp_path, "strategy.cooldown_minutes: {linspace: [0.0, 10.0, 3]}")
    assert [v for (v,) in spaced.combinations] == [0, 5, 10]
    assert all(isinstance(v, int) for (v,) in spaced.combinations)
    with pytest.raises(ConfigError, match=r"no whole number lies between 1\.5 and 1\.7"):
        _grid(tmp_path, "strategy.cooldown_minutes: {start: 1.5, stop: 1.7}\nrandom: 5\n")


def test_repeated_draws_are_run_once_and_said(tmp_path: Path) -> None:
    grid = _grid(tmp_path, """
strategy.cooldown_minutes: {start: 1, stop: 3}
strategy.sizing.bucket: [REVERSION, MOMENTUM]
random: 1000
""")
    assert len(grid) == 6
    assert grid.sampling_note() == (
        f"{tmp_path / 'grid.yaml'}: random: 1,000 draws gave 6 distinct combinations; the grid"
        " holds 6 in all, each run once"
    )
    continuous = _grid(tmp_path, "strategy.ofi.long_above: {start: 1.0, stop: 3.0}\nrandom: 50\n")
    assert continuous.sampling_note() is None
    assert _grid(tmp_path, "strategy.ofi.long_above: [1.5, 2.0]").sampling_note() is None
