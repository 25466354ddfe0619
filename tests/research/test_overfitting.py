"""PBO and the deflated Sharpe ratio on cases whose answers are known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from gexbot.research.overfitting import (
    blocks_for,
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    probability_of_backtest_overfitting,
    sharpe_ratios,
)


def _rng(seed: int) -> np.random.Generator:
    print(f"seed {seed}")
    return np.random.default_rng(seed)


def _pbo_by_definition(returns: np.ndarray, blocks: int) -> tuple[float, np.ndarray]:
    """CSCV written out loop by loop, for comparison with the vectorised one."""
    periods, strategies = returns.shape
    size = periods // blocks
    used = returns[periods - size * blocks :]
    parts = [used[i * size : (i + 1) * size] for i in range(blocks)]
    logits = []
    for train_ids in itertools.combinations(range(blocks), blocks // 2):
        train = np.vstack([parts[i] for i in train_ids])
        test = np.vstack([parts[i] for i in range(blocks) if i not in train_ids])
        train_sr = train.mean(axis=0) / train.std(axis=0, ddof=1)
        test_sr = test.mean(axis=0) / test.std(axis=0, ddof=1)
        best = int(np.argmax(train_sr))
        omega = stats.rankdata(test_sr)[best] / (strategies + 1)
        logits.append(math.log(omega / (1 - omega)))
    values = np.array(logits)
    return float(np.mean(values <= 0)), values


def test_vectorised_cscv_equals_the_definition() -> None:
    returns = _rng(11).normal(0.0, 1.0, size=(97, 7))
    result = probability_of_backtest_overfitting(returns, blocks=8)
    expected_pbo, expected_logits = _pbo_by_definition(returns, 8)
    assert result.blocks == 8
    assert result.splits == math.comb(8, 4)
    np.testing.assert_allclose(result.logits, expected_logits, rtol=1e-9)
    assert result.pbo == expected_pbo


def test_pure_noise_strategies_overfit_half_the_time() -> None:
    values = []
    for seed in range(20):
        returns = _rng(seed).normal(0.0, 1.0, size=(320, 20))
        values.append(probability_of_backtest_overfitting(returns).pbo)
    assert abs(float(np.mean(values)) - 0.5) < 0.08, values


def test_a_planted_edge_is_not_overfit() -> None:
    rng = _rng(5)
    returns = rng.normal(0.0, 1.0, size=(320, 50))
    returns[:, 17] += 0.5
    result = probability_of_backtest_overfitting(returns)
    assert result.pbo < 0.02
    assert result.oos_loss_share < 0.02
    assert result.splits == math.comb(16, 8)


def test_strategies_that_never_trade_rank_as_zero_sharpe() -> None:
    rng = _rng(3)
    returns = np.zeros((40, 4))
    returns[:, 0] = rng.normal(0.2, 1.0, 40)
    assert sharpe_ratios(returns)[1:].tolist() == [0.0, 0.0, 0.0]
    result = probability_of_backtest_overfitting(returns, blocks=4)
    assert np.isfinite(result.logits).all()


def test_identical_strategies_are_a_coin_toss_counted_as_overfit() -> None:
    returns = np.tile(_rng(4).normal(size=(40, 1)), (1, 3))
    result = probability_of_backtest_overfitting(returns, blocks=4)
    np.testing.assert_allclose(result.logits, 0.0, atol=1e-12)
    assert result.pbo == 1.0


def test_short_histories_use_fewer_blocks_and_tiny_ones_are_refused() -> None:
    assert blocks_for(250) == 16
    assert blocks_for(20) == 10
    assert blocks_for(9) == 4
    assert blocks_for(5) == 2
    with pytest.raises(ValueError, match="at least 4 periods"):
        blocks_for(3)
    with pytest.raises(ValueError, match="at least 2 strategies"):
        probability_of_backtest_overfitting(np.ones((10, 1)))
    with pytest.raises(ValueError, match="finite"):
        probability_of_backtest_overfitting(np.full((10, 2), np.nan))


def test_expected_maximum_and_dsr_match_the_papers_example() -> None:
    # Bailey and López de Prado (2014), numerical example: 100 trials whose annualised Sharpe
    # ratios vary by 1/2, the best at an annualised 2.5 over 5 years of daily returns (1,250)
    # with skewness -3 and kurtosis 10; they report SR0 = 0.1132 per day and DSR = 0.9004.
    benchmark = expected_max_sharpe(100, 0.5 / 250)
    assert benchmark == pytest.approx(0.1132, abs=5e-5)
    dsr = probabilistic_sharpe(2.5 / math.sqrt(250), benchmark, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_deflated_sharpe_by_hand() -> None:
    rng = _rng(8)
    best = rng.normal(0.1, 1.0, 250)
    trials = rng.normal(0.0, 0.06, 400)
    result = deflated_sharpe(best, trials)
    sharpe = best.mean() / best.std(ddof=1)
    gamma = 0.5772156649015329
    n = len(trials)
    sr0 = math.sqrt(trials.var(ddof=1)) * (
        (1 - gamma) * stats.norm.ppf(1 - 1 / n) + gamma * stats.norm.ppf(1 - 1 / (n * math.e))
    )
    skew = stats.skew(best)
    kurt = stats.kurtosis(best, fisher=False)
    z = (sharpe - sr0) * math.sqrt(249) / math.sqrt(1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2)
    assert result.sharpe == pytest.approx(sharpe)
    assert result.benchmark == pytest.approx(sr0)
    assert result.skewness == pytest.approx(skew)
    assert result.kurtosis == pytest.approx(kurt)
    assert result.dsr == pytest.approx(stats.norm.cdf(z))
    assert (result.trials, result.observations) == (400, 250)


def test_the_best_of_noise_deflates_to_doubt_and_a_real_edge_does_not() -> None:
    noise_dsr = []
    for seed in range(30):
        returns = _rng(100 + seed).normal(0.0, 1.0, size=(250, 200))
        sharpes = sharpe_ratios(returns)
        noise_dsr.append(deflated_sharpe(returns[:, np.argmax(sharpes)], sharpes).dsr)
    assert 0.3 < float(np.median(noise_dsr)) < 0.7
    assert max(noise_dsr) < 0.9
    returns = _rng(7).normal(0.0, 1.0, size=(250, 200))
    returns[:, 3] += 0.4
    sharpes = sharpe_ratios(returns)
    assert int(np.argmax(sharpes)) == 3
    assert deflated_sharpe(returns[:, 3], sharpes).dsr > 0.99


def test_one_trial_is_its_probabilistic_sharpe_against_zero() -> None:
    best = _rng(9).normal(0.05, 1.0, 100)
    result = deflated_sharpe(best, np.array([0.05]))
    assert result.benchmark == 0.0
    assert result.dsr == pytest.approx(
        probabilistic_sharpe(result.sharpe, 0.0, 100, result.skewness, result.kurtosis)
    )


def test_a_best_that_never_traded_has_no_dsr() -> None:
    result = deflated_sharpe(np.zeros(50), np.array([0.0, 0.1, -0.1]))
    assert math.isnan(result.dsr)
    assert result.sharpe == 0.0
