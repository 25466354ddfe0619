"""A sweep's grid: dotted preset keys mapped to the values to try, checked like a preset.

    strategy.ofi.long_above: [1.5, 2.0, 2.5]                   # a list
    strategy.hurst.threshold: {start: 0.3, stop: 0.6, step: 0.1}   # stop included
    strategy.bands.width_sigma: {linspace: [1.5, 3.0, 4]}      # 4 evenly spaced values
    strategy.cooldown_minutes: 5                                # one value, held fixed
    random: 500        # optional: 500 random points instead of every combination
    seed: 1            # optional: which random points (default 0)

Every value is validated by the preset schema with the key alone (an unknown key, a wrong type,
an out-of-range value: one line naming the file and the key); the combinations are validated
whole when the sweep turns them into kernel parameters. With `random: N`, a `{start, stop}`
range without a step is sampled continuously (integers for an integer setting); lists and
stepped ranges are sampled among their values. The points are drawn from `seed`, so the same
file names the same combinations on every run, which is what lets a rerun skip finished work.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gexbot.documents import DocumentError, load_yaml, read_text
from gexbot.errors import ConfigError
from gexbot.research.params import apply_overrides
from gexbot.settings import Preset

MAX_COMBINATIONS = 100_000
"""Above this many combinations a grid needs `--yes` (or `random: N`): a mistyped step can
ask for days of work."""
MAX_VALUES_PER_KEY = 10_000
GRID_LIMIT = 1 << 20
"""Bytes of the largest grid file read: a grid is a few lines."""
RESERVED = ("random", "seed")
_SIGNIFICANT = 12
"""Range values are rounded to this many significant digits, so 0.1 + 0.2 reads 0.3."""


@dataclass(frozen=True, slots=True)
class Grid:
    """The combinations to evaluate: `keys` (dotted) and one value tuple per combination."""

    keys: tuple[str, ...]
    combinations: tuple[tuple[Any, ...], ...]
    source: str

    def __len__(self) -> int:
        return len(self.combinations)

    def overrides(self) -> Iterator[dict[str, Any]]:
        """Each combination as a {dotted key: value} override set."""
        for values in self.combinations:
            yield dict(zip(self.keys, values, strict=True))


@dataclass(frozen=True, slots=True)
class _Axis:
    key: str
    values: tuple[Any, ...]
    low: float | None = None
    high: float | None = None
    integer: bool = False
    """A continuous range (`low`..`high`) only in random mode; else `values`."""


def load_grid(path: Path, preset: Preset, *, allow_large: bool = False) -> Grid:
    """Read, validate and expand a grid file against `preset`; any problem is one ConfigError."""
    where = f"{path}:"
    try:
        document = load_yaml(read_text(Path(path), GRID_LIMIT))
    except FileNotFoundError:
        raise ConfigError(f"{path}: grid file not found") from None
    except OSError as problem:
        raise ConfigError(f"{path}: cannot read the grid ({problem.strerror})") from None
    except DocumentError as problem:
        raise ConfigError(f"{path}: not a grid: {problem}") from None
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}:{line} not valid YAML ({getattr(problem, 'problem', problem)})"
        ) from None
    return grid_from_mapping(document, preset, where, allow_large=allow_large)


def grid_from_mapping(
    document: Any, preset: Preset, where: str, *, allow_large: bool = False
) -> Grid:
    """The grid a parsed YAML document describes; `where` prefixes every message."""
    if not isinstance(document, dict):
        raise ConfigError(f"{where} a grid is a mapping of dotted preset keys to values")
    options = {k: document[k] for k in RESERVED if k in document}
    random_points = _whole(options.get("random"), "random", where, minimum=1)
    seed = _whole(options.get("seed", 0), "seed", where, minimum=0)
    if "seed" in options and random_points is None:
        raise ConfigError(f"{where} seed: only means something with random: N")
    axes = []
    for key, spec in document.items():
        if key in RESERVED:
            continue
        if not isinstance(key, str):
            raise ConfigError(f"{where} {key!r}: keys are dotted preset keys")
        axis = _axis(key, spec, where, sampled=random_points is not None)
        _validate_values(axis, preset, where)
        axes.append(axis)
    if not axes:
        raise ConfigError(f"{where} the grid names no preset key to vary")
    keys = tuple(a.key for a in axes)
    if random_points is not None:
        assert seed is not None  # noqa: S101 (defaulted above)
        combos = _sample(axes, random_points, seed)
        return Grid(keys=keys, combinations=combos, source=where.rstrip(":"))
    count = math.prod(len(a.values) for a in axes)
    if count > MAX_COMBINATIONS and not allow_large:
        raise ConfigError(
            f"{where} {count:,} combinations; run them all with --yes, or sample some with"
            " `random: N` in the grid"
        )
    combos = tuple(itertools.product(*(a.values for a in axes)))
    return Grid(keys=keys, combinations=combos, source=where.rstrip(":"))


def _axis(key: str, spec: Any, where: str, *, sampled: bool) -> _Axis:
    if isinstance(spec, list):
        values = tuple(spec)
    elif isinstance(spec, dict):
        return _range_axis(key, spec, where, sampled=sampled)
    elif spec is None:
        raise ConfigError(f"{where} {key}: no values")
    else:
        values = (spec,)
    if not values:
        raise ConfigError(f"{where} {key}: no values")
    for value in values:
        if isinstance(value, dict | list) or value is None:
            raise ConfigError(f"{where} {key}: {value!r} is not a single value")
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"{where} {key}: a value is listed twice")
    return _Axis(key=key, values=values)


def _range_axis(key: str, spec: dict[str, Any], where: str, *, sampled: bool) -> _Axis:
    if set(spec) == {"linspace"}:
        bounds = spec["linspace"]
        if not (isinstance(bounds, list) and len(bounds) == 3):
            raise ConfigError(f"{where} {key}: linspace is [first, last, count]")
        first, last = (_number(v, key, where) for v in bounds[:2])
        count = _whole(bounds[2], f"{key}: linspace count", where, minimum=1)
        assert count is not None  # noqa: S101 (a value was given)
        _bounded(count, key, where)
        values = tuple(_rounded(v) for v in np.linspace(first, last, count))
        return _Axis(key=key, values=tuple(dict.fromkeys(values)))
    if set(spec) in ({"start", "stop", "step"}, {"start", "stop"}):
        start, stop = _number(spec["start"], key, where), _number(spec["stop"], key, where)
        if stop < start:
            raise ConfigError(f"{where} {key}: stop {stop} is below start {start}")
        integer = all(isinstance(spec[k], int) for k in spec)
        if "step" not in spec:
            if not sampled:
                raise ConfigError(f"{where} {key}: a range needs a step (or random: N)")
            return _Axis(key=key, values=(), low=start, high=stop, integer=integer)
        step = _number(spec["step"], key, where)
        if step <= 0:
            raise ConfigError(f"{where} {key}: step must be positive (got {spec['step']!r})")
        count = math.floor((stop - start) / step + 1e-9) + 1
        _bounded(count, key, where)
        if integer:
            return _Axis(key=key, values=tuple(range(int(start), int(stop) + 1, int(step))))
        return _Axis(key=key, values=tuple(_rounded(start + i * step) for i in range(count)))
    raise ConfigError(
        f"{where} {key}: expected a list, a value, {{start, stop, step}} or"
        " {linspace: [first, last, count]}"
    )


def _validate_values(axis: _Axis, preset: Preset, where: str) -> None:
    """Each value alone through the preset schema (range ends for a continuous range)."""
    values = axis.values if axis.low is None else (axis.low, axis.high)
    for value in values:
        apply_overrides(preset, {axis.key: value}, source=where)


def _sample(axes: list[_Axis], points: int, seed: int) -> tuple[tuple[Any, ...], ...]:
    """`points` random combinations (duplicates drawn twice are kept once), seeded."""
    rng = np.random.default_rng(seed)
    columns = []
    for axis in axes:
        if axis.low is None:
            picks = rng.integers(0, len(axis.values), size=points)
            columns.append([axis.values[i] for i in picks])
        elif axis.integer:
            assert axis.high is not None  # noqa: S101 (set with low)
            whole = rng.integers(int(axis.low), int(axis.high) + 1, size=points)
            columns.append([int(v) for v in whole])
        else:
            assert axis.high is not None  # noqa: S101 (set with low)
            drawn = rng.uniform(axis.low, axis.high, size=points)
            columns.append([_rounded(float(v)) for v in drawn])
    return tuple(dict.fromkeys(zip(*columns, strict=True)))


def _number(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where} {key}: {value!r} is not a finite number")
    return float(value)


def _whole(value: Any, name: str, where: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} {name}: expected a whole number ≥ {minimum} (got {value!r})")
    return value


def _bounded(count: int, key: str, where: str) -> None:
    if count > MAX_VALUES_PER_KEY:
        raise ConfigError(
            f"{where} {key}: {count:,} values; at most {MAX_VALUES_PER_KEY:,} per key"
        )


def _rounded(value: float) -> float:
    return float(f"{float(value):.{_SIGNIFICANT}g}")
