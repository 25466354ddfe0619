"""What the engine is given besides state and snapshot: a variant's numbers and its HMM.

Kept apart from the engine so that the rules (`rules.py`) and the fold (`engine.py`) can both
name it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from gexbot.core.hmm import HmmModel
from gexbot.settings import Preset, StrategySettings


@dataclass(frozen=True, slots=True, eq=False)
class EngineParams:
    """What `step` needs besides state and snapshot: the variant's numbers and its HMM.

    `multiplier` and `strike_count` are the preset's chain settings: units per contract, and
    how many strikes around the money net GEX is summed over.
    """

    variant: str
    symbol: str
    strategy: StrategySettings
    model: HmmModel
    multiplier: float
    strike_count: int

    @classmethod
    def from_preset(
        cls, preset: Preset, model: HmmModel, strategy: StrategySettings | None = None
    ) -> EngineParams:
        """The engine's view of a preset (its strategy, or `strategy` in its place) and a model."""
        return cls(
            variant=preset.variant,
            symbol=preset.symbol,
            strategy=preset.strategy if strategy is None else strategy,
            model=model,
            multiplier=preset.chain.contract_multiplier,
            strike_count=preset.chain.strike_count,
        )
