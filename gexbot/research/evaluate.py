"""Run the compiled rules over a feature set: one parameter set with its trades, or many.

The Python side checks that the strategy belongs on the table (same table settings), turns
presets and dotted overrides into kernel vectors, and names the kernel's outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import numpy as np

from gexbot.errors import ConfigError
from gexbot.research import nb
from gexbot.research.enums import EXIT_COUNT_FIELDS, EXIT_REASONS
from gexbot.research.featureset import FeatureSet, first_difference
from gexbot.research.params import kernel_matrix, kernel_vector, table_identity
from gexbot.settings import Preset, StrategySettings

KERNEL_COLUMNS = ("minute", "skipped", "spot", "ofi", "regime", "hurst", "hmm", "band_mid",
                  "band_sigma", "n_prices", "gap")
"""The feature columns the kernel reads, in its argument order."""
_many = cast(Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]], nb.evaluate_many)
_one = cast(Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], nb.backtest)


@dataclass(frozen=True, slots=True, eq=False)
class Evaluation:
    """Results of many parameter sets over one feature set; row k is combination k.

    daily_pnl : (n_sets, n_sessions) dollars, each session's balance change (a trade counts in
        the session it closes in), the primary output: split sessions as you like.
    session_trades : (n_sets, n_sessions) trades closed in each session.
    counts : (n_sets,) `enums.COUNTS_DTYPE` records: trades, wins, trades by exit reason,
        held and decided minutes, end balance.
    """

    dates: tuple[date, ...]
    daily_pnl: np.ndarray
    session_trades: np.ndarray
    counts: np.ndarray

    @property
    def trades(self) -> np.ndarray:
        """Trades per combination."""
        return np.asarray(self.counts["trades"])

    @property
    def wins(self) -> np.ndarray:
        """Trades with PnL > 0 per combination."""
        return self.counts["wins"]

    @property
    def exposure(self) -> np.ndarray:
        """Share of decided minutes that ended holding a position, per combination."""
        decided = np.maximum(self.counts["decided_minutes"], 1)
        return np.asarray(self.counts["held_minutes"] / decided, dtype=np.float64)

    def exits(self) -> dict[str, np.ndarray]:
        """Trades per combination by exit reason (STOP_LOSS, TARGET, REGIME_FLIP, EOD_FLATTEN)."""
        return {str(reason): self.counts[name]
                for reason, name in zip(EXIT_REASONS, EXIT_COUNT_FIELDS, strict=True)}


@dataclass(frozen=True, slots=True, eq=False)
class Backtest:
    """One parameter set's run: its trades (`enums.TRADE_DTYPE`) besides the totals."""

    preset: Preset
    trades: np.ndarray
    evaluation: Evaluation


def kernel_inputs(features: FeatureSet) -> tuple[np.ndarray, ...]:
    """The feature columns, offsets and closes in the kernel's argument order."""
    columns = tuple(np.ascontiguousarray(features.columns[name]) for name in KERNEL_COLUMNS)
    return (*columns, features.offsets, features.close_minute)


def strategy_preset(features: FeatureSet, base: Preset | StrategySettings | None) -> Preset:
    """The preset to evaluate: `base` (or the table's own), checked to belong on the table."""
    if base is None:
        return features.preset
    if isinstance(base, StrategySettings):
        base = features.preset.model_copy(update={"strategy": base})
    differs = first_difference(table_identity(base), table_identity(features.preset))
    if differs is not None:
        raise ConfigError(
            f"the strategy's {differs} differs from the feature table's"
            f" ({features.directory}); build features with it"
        )
    return base


def evaluate_many(
    features: FeatureSet,
    base_strategy: Preset | StrategySettings | None,
    overrides: Sequence[Mapping[str, Any]],
) -> Evaluation:
    """Evaluate each override set (dotted kernel keys -> values) on top of `base_strategy`.

    Every override set is validated by the preset schema; a key that would change the feature
    table is refused (load features with it instead).
    """
    preset = strategy_preset(features, base_strategy)
    matrix = kernel_matrix(preset, overrides)
    return evaluate_vectors(features, matrix)


def evaluate_vectors(features: FeatureSet, matrix: np.ndarray) -> Evaluation:
    """Evaluate kernel vectors (rows, `enums.PARAM_NAMES` order) already validated."""
    daily, per_session, counts = _many(*kernel_inputs(features),
                                       np.ascontiguousarray(matrix, dtype=np.float64))
    return Evaluation(dates=features.dates, daily_pnl=daily, session_trades=per_session,
                      counts=counts)


def backtest(features: FeatureSet, preset: Preset | None = None) -> Backtest:
    """Trade `preset` (default: the table's own) over the feature set, trades included."""
    preset = strategy_preset(features, preset)
    trades, daily, per_session, counts = _one(*kernel_inputs(features),
                                              kernel_vector(preset.strategy))
    evaluation = Evaluation(dates=features.dates, daily_pnl=daily[np.newaxis, :],
                            session_trades=per_session[np.newaxis, :], counts=counts)
    return Backtest(preset=preset, trades=trades, evaluation=evaluation)
