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
range without a step is sampled continuously, or among the whole numbers in it for a setting the
preset schema holds as a whole number (a window, minutes): the schema decides, not whether the
bounds are spelled 1 or 1.0. Lists and stepped ranges are sampled among their values. The points
are drawn from `seed`, so the same file names the same combinations on every run, which is what
lets a rerun skip finished work; a point drawn twice is run once, and the sweep says how many
distinct ones the draws gave.

Every count (combinations, draws, values of a range) is checked before anything is built, so a
mistyped count or step is refused in one line instead of filling the memory.
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
from gexbot.research.params import apply_overrides, is_integer_setting
from gexbot.settings import Preset
from gexbot.wording import counted

MAX_COMBINATIONS = 100_000
"""Above this many combinations a grid needs `--yes` (or `random: N`): a mistyped step can
ask for days of work."""
MAX_SWEEP = 1_000_000
"""The most combinations one sweep takes, even with `--yes`: each is held in memory while the
sweep is prepared and stored with its daily PnL, so a larger grid is split into several."""
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
    drawn: int | None = None
    """With `random: N`, N (the draws; repeats among them are kept once); else None."""
    space: int | None = None
    """With `random: N`, how many distinct points the grid holds when that is finite."""

    def __len__(self) -> int:
        return len(self.combinations)

    def overrides(self) -> Iterator[dict[str, Any]]:
        """Each combination as a {dotted key: value} override set."""
        for values in self.combinations:
            yield dict(zip(self.keys, values, strict=True))

    def sampling_note(self) -> str | None:
        """One line when random draws repeated points (so fewer combinations run than drawn)."""
        if self.drawn is None or self.drawn == len(self.combinations):
            return None
        holds = "" if self.space is None else f"; the grid holds {self.space:,} in all"
        return (
            f"{self.source}: random: {self.drawn:,} draws gave"
            f" {counted(len(self.combinations), 'distinct combination')}{holds}, each run once"
        )


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
    if random_points is not None:
        _check_count(random_points, f"{where} random: {_many(random_points)} draws", allow_large,
                     "draw fewer")
    axes = []
    for key, spec in document.items():
        if key in RESERVED:
            continue
        if not isinstance(key, str):
            raise ConfigError(f"{where} {key!r}: keys are dotted preset keys")
        integer = is_integer_setting(preset, key, where)
        axis = _axis(key, spec, where, sampled=random_points is not None, integer=integer)
        _validate_values(axis, preset, where)
        axes.append(axis)
    if not axes:
        raise ConfigError(f"{where} the grid names no preset key to vary")
    keys = tuple(a.key for a in axes)
    if random_points is not None:
        assert seed is not None  # noqa: S101 (defaulted above)
        combos = _sample(axes, random_points, seed)
        return Grid(keys=keys, combinations=combos, source=where.rstrip(":"),
                    drawn=random_points, space=_space(axes))
    count = math.prod(len(a.values) for a in axes)
    _check_count(count, f"{where} {_many(count)} combinations", allow_large,
                 "sample some with `random: N` in the grid")
    combos = tuple(itertools.product(*(a.values for a in axes)))
    return Grid(keys=keys, combinations=combos, source=where.rstrip(":"))


def _check_count(count: int, what: str, allow_large: bool, smaller: str) -> None:
    """Refuse `count` combinations above MAX_SWEEP, and above MAX_COMBINATIONS without --yes."""
    if count > MAX_SWEEP:
        raise ConfigError(
            f"{what}; one sweep takes at most {MAX_SWEEP:,} combinations: split the grid, or"
            f" {smaller}"
        )
    if count > MAX_COMBINATIONS and not allow_large:
        raise ConfigError(f"{what}; run them all with --yes, or {smaller}")


def _space(axes: list[_Axis]) -> int | None:
    """How many distinct points the axes hold; None when one is a continuous range."""
    sizes = []
    for axis in axes:
        if axis.low is None:
            sizes.append(len(axis.values))
        elif axis.integer and axis.high is not None:
            sizes.append(int(axis.high) - int(axis.low) + 1)
        else:
            return None
    return math.prod(sizes)


def _axis(key: str, spec: Any, where: str, *, sampled: bool, integer: bool) -> _Axis:
    if isinstance(spec, list):
        values = tuple(spec)
        _bounded(len(values), key, where)
    elif isinstance(spec, dict):
        return _range_axis(key, spec, where, sampled=sampled, integer=integer)
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


def _range_axis(
    key: str, spec: dict[str, Any], where: str, *, sampled: bool, integer: bool
) -> _Axis:
    """A range's values (or bounds, sampled); `integer`: the setting is a whole number."""
    if set(spec) == {"linspace"}:
        bounds = spec["linspace"]
        if not (isinstance(bounds, list) and len(bounds) == 3):
            raise ConfigError(f"{where} {key}: linspace is [first, last, count]")
        first, last = (_number(v, key, where) for v in bounds[:2])
        count = _whole(bounds[2], f"{key}: linspace count", where, minimum=1)
        assert count is not None  # noqa: S101 (a value was given)
        _bounded(count, key, where)
        values = tuple(_typed(v, integer) for v in np.linspace(first, last, count))
        return _Axis(key=key, values=tuple(dict.fromkeys(values)))
    if set(spec) in ({"start", "stop", "step"}, {"start", "stop"}):
        start, stop = _number(spec["start"], key, where), _number(spec["stop"], key, where)
        if stop < start:
            raise ConfigError(f"{where} {key}: stop {stop} is below start {start}")
        if "step" not in spec:
            if not sampled:
                raise ConfigError(f"{where} {key}: a range needs a step (or random: N)")
            if not integer:
                return _Axis(key=key, values=(), low=start, high=stop)
            low, high = math.ceil(start), math.floor(stop)
            if low > high:
                raise ConfigError(
                    f"{where} {key}: a whole-number setting, and no whole number lies between"
                    f" {spec['start']!r} and {spec['stop']!r}"
                )
            return _Axis(key=key, values=(), low=low, high=high, integer=True)
        step = _number(spec["step"], key, where)
        if step <= 0:
            raise ConfigError(f"{where} {key}: step must be positive (got {spec['step']!r})")
        steps = (stop - start) / step
        if not steps < MAX_VALUES_PER_KEY:  # also an overflow to inf: counted before building
            raise ConfigError(
                f"{where} {key}: step {_shown(spec['step'])} from {_shown(spec['start'])} to"
                f" {_shown(spec['stop'])} gives more than {MAX_VALUES_PER_KEY:,} values; at most"
                f" {MAX_VALUES_PER_KEY:,} per key"
            )
        count = math.floor(steps + 1e-9) + 1
        if integer and all(isinstance(spec[k], int) for k in spec):
            return _Axis(key=key, values=tuple(range(int(start), int(stop) + 1, int(step))))
        return _Axis(
            key=key, values=tuple(_typed(start + i * step, integer) for i in range(count))
        )
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
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} {key}: {_shown(value)} is not a finite number")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf
    if not math.isfinite(number):
        raise ConfigError(f"{where} {key}: {_shown(value)} is not a finite number")
    return number


def _whole(value: Any, name: str, where: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"{where} {name}: expected a whole number ≥ {minimum} (got {_shown(value)})"
        )
    return value


def _bounded(count: int, key: str, where: str) -> None:
    if count > MAX_VALUES_PER_KEY:
        raise ConfigError(
            f"{where} {key}: {_many(count)} values; at most {MAX_VALUES_PER_KEY:,} per key"
        )


def _many(count: int) -> str:
    """A count for a message: in full, or its order of magnitude when it is absurdly long."""
    return f"{count:,}" if count < 10**15 else f"about 10^{len(str(count)) - 1}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _rounded(value: float) -> float:
    return float(f"{float(value):.{_SIGNIFICANT}g}")


def _typed(value: float, integer: bool) -> float | int:
    """A range's value as the setting holds it: a whole number stays whole for an integer
    setting (a fraction is left for the schema to refuse, naming the key)."""
    rounded = _rounded(value)
    return int(rounded) if integer and rounded.is_integer() else rounded
