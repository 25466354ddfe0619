"""Time the per-minute features and HMM decoding; prints µs per call.

Run as ``python bench/bench_features.py``. The engine calls each of these once per simulated
minute, and a backtest should step about 20,000 minutes a second, so together they must stay
well under 50 µs.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

import numpy as np
from hmmlearn.hmm import GaussianHMM

from gexbot.core import features as ft
from gexbot.core.hmm import decode_last_state, model_from_dict
from gexbot.core.types import Chain, frozen_array

SEED = 12345


def per_call_us(func: Callable[[], object], number: int) -> float:
    """Best of five runs of `number` calls, in µs per call."""
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def chain(rng: np.random.Generator) -> Chain:
    """40 strikes x 2 expirations x calls and puts = 160 contracts, a few of them sentinels."""
    strikes = np.tile(np.repeat(6700.0 + 5.0 * np.arange(40), 2), 2)
    is_call = np.tile([True, False], 80)
    gamma = rng.uniform(0.0, 0.004, size=160)
    gamma[[3, 77]] = np.nan
    open_interest = rng.uniform(0.0, 5000.0, size=160).round()
    open_interest[11] = -999.0
    return Chain(
        is_call=frozen_array(is_call, dtype=np.bool_),
        strike=frozen_array(strikes),
        gamma=frozen_array(gamma),
        open_interest=frozen_array(open_interest),
    )


def main() -> None:
    """Print one line per feature."""
    rng = np.random.default_rng(SEED)
    option_chain = chain(rng)
    prices = frozen_array(6800.0 + np.cumsum(rng.normal(size=100)))
    window = prices[-20:]
    closes = frozen_array(6800.0 + np.cumsum(rng.normal(size=390)))
    model = model_from_dict(
        {
            "format": "gexbot-hmm",
            "version": 1,
            "start_prob": [0.6, 0.4],
            "transmat": [[0.97, 0.03], [0.05, 0.95]],
            "means": [0.02, -0.05],
            "variances": [0.9, 5.0],
            "return_scale": 1e4,
            "return_kind": "log",
            "low_state": 0,
        }
    )
    returns = ft.log_returns(closes, 20)
    assert returns is not None
    reference = GaussianHMM(n_components=2, covariance_type="diag")
    reference.startprob_ = np.array(model.start_prob)
    reference.transmat_ = np.array(model.transmat)
    reference.means_ = np.array(model.means).reshape(2, 1)
    reference.covars_ = np.array(model.variances).reshape(2, 1)
    scaled = (returns * model.return_scale).reshape(-1, 1)

    rows = [
        ("net_gex (160 contracts)", lambda: ft.net_gex(option_chain, 6800.0, 100.0), 20_000),
        ("hurst (100 prices, lags 2-19)", lambda: ft.hurst(prices, 2, 19), 20_000),
        ("bands (20 prices)", lambda: ft.bands(window, 2.0), 50_000),
        ("mean_ofi (5 samples)", lambda: ft.mean_ofi(prices[-5:]), 50_000),
        ("log_returns (20 of 390 closes)", lambda: ft.log_returns(closes, 20), 50_000),
        ("decode_last_state (20 returns)", lambda: decode_last_state(model, returns), 20_000),
    ]
    print(f"seed {SEED}")
    results = {}
    for name, func, number in rows:
        results[name] = per_call_us(func, number)
        print(f"{name:34s} {results[name]:8.2f} µs")
    hmmlearn_us = per_call_us(lambda: reference.predict(scaled), 1_000)
    ours = results["decode_last_state (20 returns)"]
    print(f"{'hmmlearn predict (20 returns)':34s} {hmmlearn_us:8.2f} µs")
    print(f"{'decode speed-up over hmmlearn':34s} {hmmlearn_us / ours:8.1f} x")
    print(f"{'all features per minute':34s} {sum(results.values()):8.2f} µs")


if __name__ == "__main__":
    main()
