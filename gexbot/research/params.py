"""Dotted preset keys (`strategy.ofi.long_above`) to validated presets and kernel vectors.

An override is checked by the same pydantic schema as a preset file, so `--set`, a sweep's grid
and a preset accept and refuse the same values with the same one-line messages. Keys fall in
three kinds: those the kernel reads per parameter set (`KERNEL_KEYS`), those that change the
feature table (everything else that a backtest reads: windows, buffers, lags, the chain and
data settings, the simulated market), and the two training-only keys that no backtest reads.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import ValidationError

from gexbot.documents import DocumentError, load_yaml
from gexbot.errors import ConfigError
from gexbot.research.enums import N_PARAMS, P_WIN_RATE, PARAM_NAMES
from gexbot.settings import Preset, StrategySettings, _first_problem

WIN_RATE_PREFIX = "strategy.sizing.win_rates."
BUCKET_KEY = "strategy.sizing.bucket"
KERNEL_KEYS: frozenset[str] = frozenset(
    {name for name in PARAM_NAMES if name != "win_rate"}
    | {BUCKET_KEY, WIN_RATE_PREFIX + "REVERSION", WIN_RATE_PREFIX + "MOMENTUM"}
)
"""Keys a kernel parameter set holds: changing them reuses the feature table."""
TRAINING_KEYS: frozenset[str] = frozenset(
    {"strategy.hmm.min_variance_ratio", "strategy.hmm.train_sessions"}
)
"""Keys only `train_hmm` reads: they change neither the table nor the trades."""
FIXED_KEYS: frozenset[str] = frozenset({"variant"})
"""Keys an override may not change (pick another `--variant` instead)."""

FloatArray = npt.NDArray[np.float64]


def parse_assignment(text: str) -> tuple[str, Any]:
    """`key=value` from the command line; the value is read as a YAML scalar (2.5, 10, LONG)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. strategy.ofi.long_above=2.5")
    try:
        value = load_yaml(raw) if raw.strip() else None
    except (yaml.YAMLError, DocumentError):
        raise ConfigError(f"--set {key}: {raw!r} is not a value") from None
    if value is None or isinstance(value, dict | list):
        raise ConfigError(f"--set {key}: expected a number or a word, got {raw!r}")
    return key, value


def apply_overrides(preset: Preset, overrides: Mapping[str, Any], source: str = "--set") -> Preset:
    """`preset` with each dotted key set to its value, validated as a preset file would be.

    An unknown key, a wrong type or an out-of-range value is one `ConfigError` naming the key.
    A whole-number float for an integer setting (10.0 from a numeric grid) counts as that
    integer.
    """
    if not overrides:
        return preset
    document = preset.model_dump(mode="python")
    for key, value in overrides.items():
        if key in FIXED_KEYS:
            raise ConfigError(f"{source} {key}: cannot be overridden (choose it with --variant)")
        parent, leaf = _parent(document, key, source)
        current = parent[leaf]
        if isinstance(current, dict):
            raise ConfigError(f"{source} {key}: is a section; name one of its keys")
        parent[leaf] = _as_setting_type(current, value)
    try:
        return Preset.model_validate(document)
    except ValidationError as problem:
        raise ConfigError(f"{source} {_first_problem(problem)}") from None


def is_integer_setting(preset: Preset, key: str, source: str = "--set") -> bool:
    """Whether the preset schema holds `key` as a whole number (a window, minutes) rather than a
    real number, whatever the spelling of a value given for it; an unknown key is a ConfigError.
    """
    parent, leaf = _parent(preset.model_dump(mode="python"), key, source)
    current = parent[leaf]
    return isinstance(current, int) and not isinstance(current, bool)


def _parent(document: dict[str, Any], key: str, source: str) -> tuple[dict[str, Any], str]:
    parts = key.split(".")
    node: Any = document
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            known = ".".join(parts[: depth + 1])
            raise ConfigError(f"{source} {key}: unknown key ({known} is not a preset setting)")
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        close = difflib.get_close_matches(parts[-1], list(node) if isinstance(node, dict) else [],
                                          n=1, cutoff=0.6)
        meant = f" (did you mean {'.'.join([*parts[:-1], close[0]])}?)" if close else ""
        raise ConfigError(f"{source} {key}: unknown key{meant}")
    return node, parts[-1]


def _as_setting_type(current: Any, value: Any) -> Any:
    is_int = isinstance(current, int) and not isinstance(current, bool)
    if is_int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def kernel_vector(strategy: StrategySettings) -> FloatArray:
    """The kernel's parameter vector (`enums.PARAM_NAMES` order) of a strategy."""
    vector = np.empty(N_PARAMS, dtype=np.float64)
    for index, name in enumerate(PARAM_NAMES):
        if index == P_WIN_RATE:
            vector[index] = strategy.sizing.win_rate
        else:
            vector[index] = float(_lookup(strategy, name.removeprefix("strategy.")))
    return vector


def _lookup(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def kernel_matrix(preset: Preset, overrides: Iterable[Mapping[str, Any]]) -> FloatArray:
    """One validated kernel vector per override set (rows), for `evaluate_many`.

    Every key must be a kernel key: a key that changes the feature table needs a table of its
    own, and saying so beats silently trading the wrong features.
    """
    rows = []
    for index, override in enumerate(overrides):
        source = f"combination {index}:"
        for key in override:
            refuse_table_key(key, source)
        rows.append(kernel_vector(apply_overrides(preset, override, source).strategy))
    if not rows:
        return np.empty((0, N_PARAMS), dtype=np.float64)
    return np.vstack(rows)


def refuse_table_key(key: str, source: str) -> None:
    """ConfigError unless `key` is one a kernel parameter set may vary."""
    if key in KERNEL_KEYS or key in TRAINING_KEYS:
        return
    raise ConfigError(
        f"{source} {key}: changes the feature table, not only the rules; evaluate it on"
        " features built with that value (load_features with the override)"
    )


def split_overrides(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(table keys, kernel keys) of one override set: group combinations by the first part."""
    table = {k: v for k, v in overrides.items() if k not in KERNEL_KEYS and k not in TRAINING_KEYS}
    rules = {k: v for k, v in overrides.items() if k not in table}
    return table, rules


def table_identity(preset: Preset) -> dict[str, Any]:
    """What of a preset the feature table depends on: all of it but the kernel's and training
    keys (so a setting added later counts as a table setting until it is listed)."""
    document = copy.deepcopy(preset.model_dump(mode="json"))
    for key in KERNEL_KEYS | TRAINING_KEYS:
        parts = key.split(".")
        node = document
        for part in parts[:-1]:
            node = node[part]
        node.pop(parts[-1], None)
    return document
