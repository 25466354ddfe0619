"""HMM fitting: recovery of a planted model, the tiny-variance pitfall, and refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gexbot.core.hmm import decode_path, model_from_dict, model_to_dict
from gexbot.errors import ModelError
from gexbot.training import fit_hmm, session_returns

SEED = 8675309
TRANSMAT = np.array([[0.98, 0.02], [0.04, 0.96]])


def plant(
    rng: np.random.Generator, sigmas: tuple[float, float], n_sessions: int, per_session: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Sample returns from a 2-state chain (state 0 calm); return (returns, states) per session."""
    returns, states = [], []
    for _ in range(n_sessions):
        state = int(rng.integers(2))
        path = np.empty(per_session, dtype=np.intp)
        for t in range(per_session):
            if t > 0 and rng.random() > TRANSMAT[state, state]:
                state = 1 - state
            path[t] = state
        sigma = np.where(path == 0, sigmas[0], sigmas[1])
        returns.append(rng.normal(size=per_session) * sigma)
        states.append(path)
    return returns, states


def test_planted_model_is_recovered() -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    returns, states = plant(rng, (1e-4, 3e-4), n_sessions=10, per_session=400)
    progress: list[int] = []
    result = fit_hmm(returns, restarts=3, seed=SEED, progress=progress.append)
    assert progress == [1, 2, 3]
    assert result.n_observations == 4000
    assert result.converged
    model = result.model
    # Planted variances in basis points squared: 1 and 9.
    low_var = float(model.variances[model.low_state])
    high_var = float(model.variances[1 - model.low_state])
    assert low_var == pytest.approx(1.0, rel=0.2)
    assert high_var == pytest.approx(9.0, rel=0.2)
    assert result.variance_ratio == pytest.approx(high_var / low_var)
    decoded_low = np.concatenate([decode_path(model, r) == model.low_state for r in returns])
    planted_low = np.concatenate(states) == 0
    agreement = float(np.mean(decoded_low == planted_low))
    print(f"agreement {agreement:.3f}, variance ratio {result.variance_ratio:.2f}")
    assert agreement >= 0.90
    assert model.return_scale == 1e4
    assert model.metadata["n_observations"] == 4000
    assert model.metadata["log_likelihood"] == result.log_likelihood
    assert "hmmlearn_version" in model.metadata
    assert model_from_dict(model_to_dict(model)).metadata == model.metadata


@pytest.mark.parametrize("scale", [1e4, 1.0])
def test_tiny_returns_still_separate_states(scale: float) -> None:
    # Returns near 1e-4 have variances near 1e-8, far below hmmlearn's default variance floor
    # of 1e-3; whatever the scale, the fit must still see two states of different variance.
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED + 1)
    returns, _ = plant(rng, (1e-4, math.sqrt(3.0) * 1e-4), n_sessions=10, per_session=400)
    result = fit_hmm(returns, return_scale=scale, restarts=3, seed=SEED)
    print(f"scale {scale}: variance ratio {result.variance_ratio:.2f}")
    assert result.variance_ratio >= 1.5
    assert float(np.min(result.model.variances)) == pytest.approx(1e-8 * scale**2, rel=0.3)


def test_same_seed_same_model() -> None:
    rng = np.random.default_rng(SEED + 2)
    returns, _ = plant(rng, (1e-4, 3e-4), n_sessions=2, per_session=300)
    first = fit_hmm(returns, restarts=2, seed=3)
    second = fit_hmm(returns, restarts=2, seed=3)
    assert model_to_dict(first.model) == model_to_dict(second.model)
    assert first.best_seed in (3, 4)


def test_too_few_returns_are_refused() -> None:
    with pytest.raises(ModelError, match="too few returns"):
        fit_hmm([np.full(50, 1e-4), np.full(49, -1e-4)])


def test_non_finite_or_flat_returns_are_refused() -> None:
    bad = np.random.default_rng(SEED).normal(size=200) * 1e-4
    bad[17] = np.nan
    with pytest.raises(ModelError, match="non-finite"):
        fit_hmm([bad])
    with pytest.raises(ModelError, match="all equal"):
        fit_hmm([np.zeros(200)])


def test_no_converged_restart_is_an_error() -> None:
    rng = np.random.default_rng(SEED + 3)
    returns, _ = plant(rng, (1e-4, 3e-4), n_sessions=4, per_session=300)
    with pytest.raises(ModelError, match="no HMM fit converged"):
        fit_hmm(returns, restarts=2, n_iter=1)


def test_session_returns_drop_the_overnight_gap() -> None:
    day1 = np.array([100.0, 101.0, 100.5])
    day2 = np.array([110.0, 109.0])
    result = session_returns([day1, day2])
    assert len(result) == 2
    np.testing.assert_allclose(result[0], [math.log(101 / 100), math.log(100.5 / 101)])
    np.testing.assert_allclose(result[1], [math.log(109 / 110)])
    assert session_returns([np.array([100.0])])[0].shape == (0,)
    with pytest.raises(ModelError, match="session 1"):
        session_returns([day1, np.array([100.0, 0.0])])
