"""The compiled kernel and `step` give the same trades, bit for bit, on the same minutes."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from research_data import engine_params, feature_set, fold_step, same_floats, sim_days

from gexbot.research.evaluate import backtest, evaluate_many
from gexbot.research.params import apply_overrides
from gexbot.research.records import to_trades
from gexbot.settings import load_variant


@pytest.mark.parametrize("variant", ["es", "nq"])
def test_shipped_presets_trade_as_step_does(variant: str) -> None:
    days = sim_days(variant, 7, date(2026, 10, 1), 5)
    params = engine_params(load_variant(variant))
    reference = fold_step(params, days)
    features = feature_set(params, days)
    run = backtest(features)
    assert reference.trades, "the window must trade for the comparison to mean something"
    assert to_trades(run.trades, run.preset) == reference.trades
    assert same_floats(run.evaluation.daily_pnl[0], reference.daily_pnl)


def test_many_sets_match_their_single_runs() -> None:
    days = sim_days("es", 7, date(2026, 10, 1), 5)
    params = engine_params(load_variant("es"))
    features = feature_set(params, days)
    overrides = [{}, {"strategy.ofi.long_above": 1.0, "strategy.stop_sigma": 1.5},
                 {"strategy.bands.width_sigma": 1.2, "strategy.cooldown_minutes": 30.0}]
    many = evaluate_many(features, None, overrides)
    for k, override in enumerate(overrides):
        single = backtest(features, apply_overrides(features.preset, override))
        assert np.array_equal(many.daily_pnl[k], single.evaluation.daily_pnl[0])
        assert many.counts[k] == single.evaluation.counts[0]
    assert len(set(many.trades.tolist())) > 1, "the overrides must change the trading"
