"""Research: feature tables built once, the rules compiled and run many times over them.

The API other code builds on (the sweep, notebooks); these names and shapes stay stable:

    from gexbot.research import DataSpec, load_features, evaluate_many, kernel_matrix

    features = load_features("es", DataSpec.sim(seed=7, start=date(2026, 10, 1), days=250),
                             Path("features"), overrides={"strategy.bands.window": 30})
    result = evaluate_many(features, None, [{"strategy.ofi.long_above": 2.5}, {}])
    result.daily_pnl        # (n_combinations, n_sessions) dollars, the primary output
    result.session_trades   # (n_combinations, n_sessions) trades closed per session
    result.trades, result.wins, result.exposure, result.exits()   # (n_combinations,) each
    result.dates            # the sessions, in column order

`load_features(variant, data, out, *, preset=None, overrides=None, model_path=None,
workers=None) -> FeatureSet` builds (in parallel processes) or reuses the per-session Parquet
tables under `out/<variant>/<key>/` and returns the concatenated per-minute columns
(`FeatureSet.columns`, `.offsets`, `.close_minute`, `.dates`, `.facts`). `data` is
`DataSpec.sim(seed, start, days)` or `DataSpec.recordings(paths)`. `overrides` are dotted preset
keys; those that change features (`strategy.bands.window`, `strategy.bands.min_live_prices`,
`strategy.price_buffer`, `strategy.hurst.min_lag`/`max_lag`, `strategy.ofi.window`,
`strategy.hmm.returns`, and the chain, data and sim sections) belong here, one feature set per
distinct value; `split_overrides(dict)` separates them from the kernel's.

`evaluate_many(features, base_strategy, overrides) -> Evaluation`: `base_strategy` is a
`Preset`, a `StrategySettings` or None (the table's own preset); each override set maps dotted
kernel keys (`KERNEL_KEYS`: thresholds, multiples, Kelly, cooldown, gap, flatten, balance) to
values, validated by the preset schema (`ConfigError`, one line, on an unknown key, a wrong type,
a value out of range or a key that would change the table). Trades are those `step` makes.

`kernel_matrix(preset, overrides) -> (n, len(PARAM_NAMES))` is the validation and mapping alone,
and `evaluate_vectors(features, matrix)` the kernel alone, for callers that validate once and
evaluate in chunks. `backtest(features, preset)` runs one set with its trades.
"""

from gexbot.research.enums import COUNTS_DTYPE, PARAM_NAMES, TRADE_DTYPE
from gexbot.research.evaluate import (
    Backtest,
    Evaluation,
    backtest,
    evaluate_many,
    evaluate_vectors,
)
from gexbot.research.featureset import FeatureSet, load_features
from gexbot.research.markets import DataSpec
from gexbot.research.params import (
    KERNEL_KEYS,
    apply_overrides,
    kernel_matrix,
    kernel_vector,
    parse_assignment,
    split_overrides,
)

__all__ = [
    "COUNTS_DTYPE",
    "KERNEL_KEYS",
    "PARAM_NAMES",
    "TRADE_DTYPE",
    "Backtest",
    "DataSpec",
    "Evaluation",
    "FeatureSet",
    "apply_overrides",
    "backtest",
    "evaluate_many",
    "evaluate_vectors",
    "kernel_matrix",
    "kernel_vector",
    "load_features",
    "parse_assignment",
    "split_overrides",
]
