"""The compiled kernel and `step` give the same trades, bit for bit, on the same minutes.

Markets: 30 simulated sessions per variant from 2026-11-16, so that every 20-session window
holds an early close (2026-11-27, 2026-12-24). Skipped minutes are injected at the feed's
output (a `DataError` instead of the snapshot, which is what the loop sees of a dropped
exchange): scattered minutes, session openings, whole sessions, and session tails that hide the
flatten time so positions are carried into the next session.
"""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime
from typing import Any

import numpy as np
import pytest
from research_data import (
    Day,
    engine_params,
    feature_set,
    fold_step,
    same_floats,
    sim_days,
    with_flatten,
    with_skips,
)

from gexbot.core.types import ExitReason
from gexbot.research.evaluate import backtest, evaluate_many
from gexbot.research.params import apply_overrides, split_overrides
from gexbot.research.records import to_trades
from gexbot.settings import load_variant

START = date(2026, 11, 16)
SESSIONS = 30
WINDOW = 20
SEEDS = {"es": 21, "nq": 22}
GROUPS = 25
SETS_PER_GROUP = 8


def _market(variant: str) -> tuple[Day, ...]:
    return sim_days(variant, SEEDS[variant], START, SESSIONS)


def _skips(rng: random.Random, days: list[Day] | tuple[Day, ...]) -> list[Day]:
    """A reproducible mixture of skipped minutes (see the module docstring)."""
    tails = {s for s in range(len(days)) if rng.random() < 0.3}
    heads = {s for s in range(len(days)) if rng.random() < 0.2}
    whole = {rng.randrange(len(days))} if rng.random() < 0.5 else set()
    rate = rng.choice([0.0, 0.01, 0.05])
    salt = rng.randrange(1 << 30)

    def dropped(s: int, m: int, at: datetime) -> bool:
        n = len(days[s][1])
        scattered = random.Random(salt * 100_003 + s * 1009 + m).random() < rate
        return s in whole or (s in tails and m >= n - 40) or (s in heads and m < 12) or scattered

    return with_skips(days, dropped)


def _table_overrides(rng: random.Random) -> dict[str, Any]:
    buffer = rng.choice([30, 60, 100, 150])
    min_lag = rng.randint(1, 4)
    return {
        "strategy.price_buffer": buffer,
        "strategy.bands.window": rng.randint(5, min(40, buffer)),
        "strategy.bands.min_live_prices": rng.randint(2, 30),
        "strategy.hurst.min_lag": min_lag,
        "strategy.hurst.max_lag": rng.randint(min_lag + 2, min(25, buffer - 2)),
        "strategy.ofi.window": rng.randint(1, 10),
        "strategy.hmm.returns": rng.choice([5, 10, 20, 30]),
    }


def _rule_overrides(rng: random.Random, price_buffer: int = 100) -> dict[str, Any]:
    bucket = rng.choice(["REVERSION", "MOMENTUM"])
    return {
        "strategy.bands.width_sigma": rng.uniform(0.5, 3.0),
        "strategy.stop_sigma": rng.uniform(0.5, 5.0),
        "strategy.hurst.threshold": rng.uniform(0.2, 1.0),
        "strategy.ofi.short_below": rng.uniform(0.3, 3.0),
        "strategy.ofi.long_above": rng.uniform(0.2, 3.0),
        "strategy.sizing.bucket": bucket,
        f"strategy.sizing.win_rates.{bucket}": rng.uniform(0.3, 0.95),
        "strategy.sizing.kelly_fraction": rng.uniform(0.1, 1.0),
        "strategy.sizing.max_fraction": rng.uniform(0.01, 1.0),
        "strategy.sizing.slippage_points": rng.choice([0.0, rng.uniform(0.0, 1.5)]),
        "strategy.cooldown_minutes": rng.randint(0, 60),
        "strategy.gap.threshold": rng.uniform(0.0, 0.02),
        "strategy.gap.suspend_until_prices": rng.randint(0, price_buffer),
        "strategy.flatten_minutes_before_close": rng.choice([0, 0, 5, 15, 60, 200]),
        "strategy.starting_balance": rng.uniform(1e4, 1e6),
    }


def _check_group(group: int) -> tuple[list[str], Counter[str]]:
    """One feature table (random table settings, window, skips) and its random rule sets."""
    rng = random.Random(f"equality-{group}")
    variant = "es" if group % 3 else "nq"
    offset = rng.randint(0, SESSIONS - WINDOW)
    days = _skips(rng, _market(variant)[offset:offset + WINDOW])
    base = apply_overrides(load_variant(variant), _table_overrides(rng))
    features = feature_set(engine_params(base), days)
    problems: list[str] = []
    seen: Counter[str] = Counter()
    seen["skipped minutes"] += sum(isinstance(d, Exception) for _, m in days for _, d in m)
    seen["early closes"] += sum(session.early_close for session, _ in days)
    for k in range(SETS_PER_GROUP):
        rules = _rule_overrides(rng, base.strategy.price_buffer)
        preset = apply_overrides(base, rules)
        flatten = preset.strategy.flatten_minutes_before_close
        reference = fold_step(engine_params(preset), with_flatten(days, flatten))
        run = backtest(features, preset)
        got = to_trades(run.trades, preset)
        if got != reference.trades:
            first = next((i for i, (a, b) in enumerate(zip(got, reference.trades, strict=False))
                          if a != b), min(len(got), len(reference.trades)))
            problems.append(f"group {group} set {k}: {len(got)} trades vs {len(reference.trades)}"
                            f", first difference at trade {first}: {rules}")
        elif not same_floats(run.evaluation.daily_pnl[0], reference.daily_pnl):
            problems.append(f"group {group} set {k}: daily PnL differs: {rules}")
        seen["parameter sets"] += 1
        seen["trades"] += len(got)
        seen.update(str(t.exit_reason) for t in got)
        seen["carried"] += sum(t.entry_time.date() != t.exit_time.date() for t in got)
    return problems, seen


def test_random_parameter_sets_trade_as_step_does() -> None:
    for variant in SEEDS:
        _market(variant)  # simulate once, before the workers fork
    with ProcessPoolExecutor(2) as pool:
        outcomes = list(pool.map(_check_group, range(GROUPS)))
    problems = [p for found, _ in outcomes for p in found]
    seen: Counter[str] = sum((s for _, s in outcomes), Counter())
    assert problems == []
    assert seen["parameter sets"] == GROUPS * SETS_PER_GROUP >= 200
    assert seen["skipped minutes"] > 0
    assert seen["early closes"] >= GROUPS
    assert seen["carried"] > 0, seen
    assert all(seen[str(reason)] > 0 for reason in ExitReason), seen


@pytest.mark.parametrize("variant", ["es", "nq"])
@pytest.mark.parametrize("skipping", [False, True])
def test_shipped_presets_trade_as_step_does(variant: str, skipping: bool) -> None:
    days = _market(variant)
    if skipping:
        days = tuple(_skips(random.Random(f"preset-{variant}"), days))
    params = engine_params(load_variant(variant))
    reference = fold_step(params, days)
    run = backtest(feature_set(params, days))
    assert len(reference.trades) > 20, "the window must trade for the comparison to mean much"
    assert to_trades(run.trades, run.preset) == reference.trades
    assert same_floats(run.evaluation.daily_pnl[0], reference.daily_pnl)


def test_features_do_not_depend_on_the_rules() -> None:
    days = _market("es")[:5]
    base = load_variant("es")
    _, rules = split_overrides(_rule_overrides(random.Random(3)))
    one = feature_set(engine_params(base), days)
    other = feature_set(engine_params(apply_overrides(base, rules)), days)
    for name, column in one.columns.items():
        assert np.array_equal(column, other.columns[name], equal_nan=column.dtype.kind == "f")


def test_many_sets_match_their_single_runs() -> None:
    days = _market("es")[:10]
    params = engine_params(load_variant("es"))
    features = feature_set(params, days)
    overrides = [_rule_overrides(random.Random(k)) for k in range(6)]
    for override in overrides:
        override["strategy.flatten_minutes_before_close"] = 15
    many = evaluate_many(features, None, [{}, *overrides])
    for k, override in enumerate([{}, *overrides]):
        single = backtest(features, apply_overrides(features.preset, override))
        assert np.array_equal(many.daily_pnl[k], single.evaluation.daily_pnl[0])
        assert np.array_equal(many.session_trades[k], single.evaluation.session_trades[0])
        assert many.counts[k] == single.evaluation.counts[0]
    assert len(set(many.trades.tolist())) > 1, "the overrides must change the trading"
