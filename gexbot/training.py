"""Fit the 2-state Gaussian HMM on intraday 1-minute log returns with hmmlearn.

Two pitfalls shape this module. hmmlearn floors every variance at `min_covar` (1e-3 by default)
and adds `covars_prior` (1e-2) to every variance update, while a 1-minute index return has a
variance near 1e-8, so unscaled data would give two states of equal, floored variance: the
returns are scaled (to basis points by default, a factor stored in the model) and both constants
are set a million times below the data's variance. And the overnight return between two sessions
is not a 1-minute return, so each session is its own sequence.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import hmmlearn
import numpy as np
from hmmlearn.hmm import GaussianHMM

from gexbot.core.hmm import HmmModel, model_from_dict, model_to_dict
from gexbot.core.types import FloatArray, frozen_array
from gexbot.errors import ModelError

MIN_RETURNS = 100
MIN_COVAR_FRACTION = 1e-6
TOLERANCE = 1e-2


@dataclass(frozen=True)
class FitResult:
    """The best of several EM restarts and how good it is."""

    model: HmmModel
    log_likelihood: float
    converged: bool
    variance_ratio: float
    restarts: int
    n_observations: int
    best_seed: int


def session_returns(closes_by_session: Sequence[FloatArray]) -> list[FloatArray]:
    """Compute 1-minute log returns within each session (no overnight return by construction)."""
    result: list[FloatArray] = []
    for index, closes in enumerate(closes_by_session):
        closes = np.asarray(closes, dtype=np.float64)
        if not bool(np.all(closes > 0.0)) or not bool(np.all(np.isfinite(closes))):
            raise ModelError(f"training session {index}: closes must be positive finite prices")
        result.append(np.diff(np.log(closes)))
    return result


def _converged(estimator: GaussianHMM) -> bool:
    """Whether EM stopped because the likelihood settled, not because it ran out of iterations.

    hmmlearn's own `monitor_.converged` is also true when `n_iter` is reached, which would call
    an unfinished fit converged.
    """
    history = list(estimator.monitor_.history)
    return len(history) >= 2 and abs(history[-1] - history[-2]) < estimator.monitor_.tol


def fit_hmm(
    sessions: Sequence[FloatArray],
    *,
    return_scale: float = 1e4,
    restarts: int = 5,
    seed: int = 0,
    n_iter: int = 200,
    progress: Callable[[int], None] | None = None,
) -> FitResult:
    """Fit a 2-state Gaussian HMM to per-session 1-minute log returns; keep the best restart.

    Parameters
    ----------
    sessions : one (n_i,) array of unscaled 1-minute log returns per session.
    return_scale : factor applied to returns before fitting, stored in the model (1e4 = bp).
    restarts : EM runs, with random_state seed, seed + 1, ...; the best converged score wins.
    progress : called with the number of restarts finished after each one.

    Raises `ModelError` when fewer than 100 returns are given, they are not finite or have no
    spread, or no restart converges.
    """
    if return_scale <= 0.0 or not math.isfinite(return_scale):
        raise ModelError(f"return_scale must be a positive number, got {return_scale!r}")
    parts = [np.asarray(s, dtype=np.float64) * return_scale for s in sessions if len(s) > 0]
    n_obs = sum(len(p) for p in parts)
    if n_obs < MIN_RETURNS:
        raise ModelError(f"too few returns to train on: {n_obs} (need at least {MIN_RETURNS})")
    data = np.concatenate(parts).reshape(-1, 1)
    if not bool(np.all(np.isfinite(data))):
        raise ModelError("training returns contain non-finite values")
    spread = float(np.var(data))
    if spread <= 0.0:
        raise ModelError("training returns are all equal: nothing to learn")
    lengths = [len(p) for p in parts]
    min_covar = MIN_COVAR_FRACTION * spread

    best: tuple[float, int, GaussianHMM] | None = None
    for i in range(restarts):
        estimator = GaussianHMM(
            n_components=2,
            covariance_type="diag",
            n_iter=n_iter,
            tol=TOLERANCE,
            min_covar=min_covar,
            covars_prior=min_covar,
            random_state=seed + i,
        )
        try:
            estimator.fit(data, lengths)
            score = float(estimator.score(data, lengths))
        except ValueError as exc:
            logging.getLogger(__name__).warning("restart %d failed: %s", i, exc)
            score = math.nan
        if math.isfinite(score) and _converged(estimator) and (best is None or score > best[0]):
            best = (score, seed + i, estimator)
        if progress is not None:
            progress(i + 1)
    if best is None:
        raise ModelError(
            f"no HMM fit converged in {restarts} restart(s) of {n_iter} iterations; "
            "try more iterations or more data"
        )
    score, best_seed, estimator = best
    variances = np.asarray(estimator.covars_, dtype=np.float64)[:, 0, 0]
    low = int(np.argmin(variances))
    ratio = float(variances[1 - low] / variances[low])
    model = HmmModel(
        start_prob=frozen_array(estimator.startprob_),
        transmat=frozen_array(estimator.transmat_),
        means=frozen_array(np.asarray(estimator.means_, dtype=np.float64)[:, 0]),
        variances=frozen_array(variances),
        return_scale=return_scale,
        low_state=low,
        metadata={
            "n_observations": n_obs,
            "n_sessions": len(parts),
            "log_likelihood": score,
            "variance_ratio": ratio,
            "converged": True,
            "restarts": restarts,
            "best_seed": best_seed,
            "min_covar": min_covar,
            "covars_prior": min_covar,
            "hmmlearn_version": hmmlearn.__version__,
            "numpy_version": np.__version__,
        },
    )
    # Through the file format's validator, so whatever is fitted can be written and read back.
    model = model_from_dict(model_to_dict(model), source="fitted model")
    return FitResult(
        model=model,
        log_likelihood=score,
        converged=True,
        variance_ratio=ratio,
        restarts=restarts,
        n_observations=n_obs,
        best_seed=best_seed,
    )
