"""The 2-state Gaussian HMM of 1-minute returns: parameters validated from JSON, Viterbi decoding.

A model file is plain data (``models/hmm_<variant>.json``), never a pickle, so loading one cannot
run code. Decoding reproduces hmmlearn's ``GaussianHMM.predict`` exactly, arithmetic and
tie-breaking included, in plain floats: for 2 states and 20 returns that is a few µs, where
hmmlearn validates and copies its inputs on every call. hmmlearn stays the training tool and the
reference the tests compare against.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from gexbot.core.types import FloatArray, HmmState, frozen_array
from gexbot.errors import ModelError

IntArray = npt.NDArray[np.intp]

FORMAT = "gexbot-hmm"
VERSION = 1
RETURN_KIND = "log"
N_STATES = 2
PROBABILITY_TOLERANCE = 1e-6
SCALE_RANGE = (1.0, 1e6)
"""Return scales a model may use: 1 (raw returns, old pickles) to a million (1e4 = bp)."""
STD_RANGE = (1e-8, 0.1)
"""Standard deviation of a state's one-minute log return, unscaled: 0.000001 bp to 10%."""
MAX_MEAN = 0.01
"""Largest mean one-minute log return of a state, unscaled (1% a minute)."""
_FIELDS = frozenset(
    {
        "format",
        "version",
        "start_prob",
        "transmat",
        "means",
        "variances",
        "return_scale",
        "return_kind",
        "low_state",
        "metadata",
    }
)


def _log(p: float) -> float:
    """Natural log as C's `log` computes it (hmmlearn's choice), with log 0 = -inf."""
    return math.log(p) if p > 0.0 else -math.inf


@dataclass(frozen=True, slots=True, eq=False)
class HmmModel:
    """A 2-state Gaussian HMM over scaled 1-minute log returns.

    Parameters
    ----------
    start_prob : (2,) initial state probabilities.
    transmat : (2, 2) transition probabilities, rows = from-state.
    means, variances : (2,) per-state mean and variance of the *scaled* return.
    return_scale : returns are multiplied by this before decoding (1e4 = basis points), the same
        factor the model was trained with.
    low_state : index of the state with the smaller variance (Low Volatility).
    metadata : free-form facts about training (data, fit quality, library versions).

    Construct through `model_from_dict` (or training) to get validated parameters; the
    constructor itself only freezes the arrays and precomputes the decoder's constants.
    """

    start_prob: FloatArray
    transmat: FloatArray
    means: FloatArray
    variances: FloatArray
    return_scale: float
    low_state: int
    metadata: dict[str, Any] = field(default_factory=dict)
    _log_start: tuple[float, float] = field(init=False, repr=False)
    _log_trans: tuple[float, float, float, float] = field(init=False, repr=False)
    _const: tuple[float, float] = field(init=False, repr=False)
    _mean: tuple[float, float] = field(init=False, repr=False)
    _var: tuple[float, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        start = _frozen(self.start_prob, (N_STATES,), "start_prob")
        trans = _frozen(self.transmat, (N_STATES, N_STATES), "transmat")
        means = _frozen(self.means, (N_STATES,), "means")
        variances = _frozen(self.variances, (N_STATES,), "variances")
        if self.low_state not in (0, 1):
            raise ValueError(f"low_state must be 0 or 1, got {self.low_state!r}")
        setattr_ = object.__setattr__
        setattr_(self, "start_prob", start)
        setattr_(self, "transmat", trans)
        setattr_(self, "means", means)
        setattr_(self, "variances", variances)
        setattr_(self, "return_scale", float(self.return_scale))
        setattr_(self, "metadata", dict(self.metadata))
        setattr_(self, "_log_start", (_log(float(start[0])), _log(float(start[1]))))
        setattr_(
            self,
            "_log_trans",
            tuple(_log(float(p)) for p in (trans[0, 0], trans[0, 1], trans[1, 0], trans[1, 1])),
        )
        # The same expression, in numpy, as hmmlearn's diagonal log-density, so that decoding
        # agrees with `predict` to the last bit (and hence on near-ties).
        const = np.log(2 * np.pi) + np.log(variances.reshape(N_STATES, 1)).sum(axis=-1)
        setattr_(self, "_const", (float(const[0]), float(const[1])))
        setattr_(self, "_mean", (float(means[0]), float(means[1])))
        setattr_(self, "_var", (float(variances[0]), float(variances[1])))

    @property
    def variance_ratio(self) -> float:
        """Larger over smaller state variance: how distinct the two regimes are."""
        low = float(self.variances[self.low_state])
        return float(self.variances[1 - self.low_state]) / low


def _frozen(values: object, shape: tuple[int, ...], name: str) -> FloatArray:
    array = cast(FloatArray, frozen_array(values))
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    return array


def _lattice(model: HmmModel, returns: FloatArray) -> list[tuple[float, float]]:
    """Viterbi lattice rows (best log-probability of a path ending in each state), per return."""
    scale = model.return_scale
    c0, c1 = model._const
    m0, m1 = model._mean
    v0, v1 = model._var
    t00, t01, t10, t11 = model._log_trans
    x = float(returns[0]) * scale
    d0 = x - m0
    d1 = x - m1
    a = model._log_start[0] + -0.5 * (c0 + d0 * d0 / v0)
    b = model._log_start[1] + -0.5 * (c1 + d1 * d1 / v1)
    rows = [(a, b)]
    for r in returns.tolist()[1:]:
        x = r * scale
        d0 = x - m0
        d1 = x - m1
        a, b = (
            max(a + t00, b + t10) + -0.5 * (c0 + d0 * d0 / v0),
            max(a + t01, b + t11) + -0.5 * (c1 + d1 * d1 / v1),
        )
        rows.append((a, b))
    return rows


def decode_path(model: HmmModel, returns: FloatArray) -> IntArray:
    """Return the most likely state path (Viterbi) of `returns`, as hmmlearn's `predict` does.

    Parameters
    ----------
    returns : (n,) one-minute log returns, unscaled, oldest first, n >= 1, all finite.

    Ties break as hmmlearn's C++ does: the last state goes to the lower index, each step back to
    the higher index.
    """
    if returns.shape[0] == 0:
        raise ValueError("decode_path needs at least one return")
    rows = _lattice(model, returns)
    t00, t01, t10, t11 = model._log_trans
    a, b = rows[-1]
    state = 1 if b > a else 0
    path = [state]
    for a, b in reversed(rows[:-1]):
        into_0, into_1 = (a + t00, b + t10) if state == 0 else (a + t01, b + t11)
        state = 0 if into_0 > into_1 else 1
        path.append(state)
    path.reverse()
    return np.array(path, dtype=np.intp)


def decode_last_state(model: HmmModel, returns: FloatArray) -> HmmState:
    """Classify the last minute of `returns` by its state on the most likely (Viterbi) path.

    Parameters
    ----------
    returns : (n,) one-minute log returns, unscaled, oldest first, n >= 1, all finite.

    The last state of the Viterbi path is the arg-max of the lattice's last row (lower index on
    a tie, as hmmlearn), so no backtracking is needed.
    """
    if returns.shape[0] == 0:
        raise ValueError("decode_last_state needs at least one return")
    a, b = _lattice(model, returns)[-1]
    state = 1 if b > a else 0
    return HmmState.LOW if state == model.low_state else HmmState.HIGH


def _shown(value: object, width: int = 40) -> str:
    """A value as a message quotes it: escaped by repr, and cut to `width` characters."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**width else (
        f"an integer of {len(str(abs(value)))} digits")
    return text if len(text) <= width else f"{text[:width]}..."


def _fail(source: str, name: str, problem: str) -> ModelError:
    return ModelError(f"{source}: {name} {problem}")


def _number(value: object, source: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(source, name, f"must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise _fail(source, name, f"must be finite, got an integer of {len(str(value))}"
                    " digits") from None
    if not math.isfinite(number):
        raise _fail(source, name, f"must be finite, got {value!r}")
    if 0.0 < abs(number) < sys.float_info.min:
        raise _fail(source, name, f"{number!r} is too small to compute with (subnormal)")
    return number


def _vector(value: object, source: str, name: str) -> list[float]:
    if not isinstance(value, list | tuple) or len(value) != N_STATES:
        raise _fail(source, name, f"must be a list of {N_STATES} numbers")
    return [_number(v, source, f"{name}[{i}]") for i, v in enumerate(value)]


def _distribution(value: object, source: str, name: str) -> list[float]:
    probs = _vector(value, source, name)
    if any(p < 0.0 for p in probs):
        raise _fail(source, name, f"has a negative probability: {probs}")
    if abs(math.fsum(probs) - 1.0) > PROBABILITY_TOLERANCE:
        raise _fail(source, name, f"must sum to 1 (within 1e-6), sums to {math.fsum(probs)!r}")
    return probs


def _check_plausible(means: list[float], variances: list[float], scale: float,
                     source: str) -> None:
    """Each state must describe one-minute returns some market could have.

    Beyond these bounds the numbers are finite but the gate is meaningless: a variance of
    1e-320 or a mean of 1e308 makes every log-density -inf (or one state always win), so the
    decoded state no longer depends on the returns.
    """
    for i, (mean, variance) in enumerate(zip(means, variances, strict=True)):
        deviation = math.sqrt(variance) / scale
        if not STD_RANGE[0] <= deviation <= STD_RANGE[1]:
            raise _fail(
                source, f"variances[{i}]",
                f"{variance!r} is a standard deviation of {deviation:.3g} per one-minute return"
                f" (at return_scale {scale:g}), outside {STD_RANGE[0]:g}..{STD_RANGE[1]:g}: the"
                " HMM gate would not depend on the returns",
            )
        if abs(mean) / scale > MAX_MEAN:
            raise _fail(
                source, f"means[{i}]",
                f"{mean!r} is a mean one-minute return of {mean / scale:.3g} (at return_scale"
                f" {scale:g}), beyond ±{MAX_MEAN:g}: the HMM gate would not depend on the returns",
            )


def model_from_dict(data: Mapping[str, Any], source: str = "model") -> HmmModel:
    """Validate a model document (the JSON of a model file) and build the model.

    Every problem raises `ModelError` with one line naming `source` and the offending field:
    wrong format or version, unknown or missing fields, wrong shapes, non-finite or subnormal
    numbers, probabilities below 0 or rows not summing to 1 within 1e-6, variances <= 0, a
    return scale outside `SCALE_RANGE`, states no market's returns could have (`STD_RANGE`,
    `MAX_MEAN`), or a `low_state` that is not the integer index of the smaller-variance state.
    """
    if not isinstance(data, Mapping):
        raise ModelError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise _fail(source, "format", f"must be {FORMAT!r}, got {_shown(data.get('format'))}")
    version = data.get("version")
    if type(version) is not int or version != VERSION:
        raise _fail(source, "version", f"must be {VERSION}, got {_shown(version)}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ModelError(f"{source}: unknown field(s) {', '.join(map(_shown, unknown[:5]))}")
    missing = sorted(_FIELDS - {"metadata"} - set(data))
    if missing:
        raise ModelError(f"{source}: missing field(s) {', '.join(missing)}")
    start = _distribution(data["start_prob"], source, "start_prob")
    rows = data["transmat"]
    if not isinstance(rows, list | tuple) or len(rows) != N_STATES:
        raise _fail(source, "transmat", f"must be a {N_STATES}x{N_STATES} list of lists")
    trans = [_distribution(row, source, f"transmat[{i}]") for i, row in enumerate(rows)]
    means = _vector(data["means"], source, "means")
    variances = _vector(data["variances"], source, "variances")
    if any(v <= 0.0 for v in variances):
        raise _fail(source, "variances", f"must be > 0, got {variances}")
    scale = _number(data["return_scale"], source, "return_scale")
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        raise _fail(source, "return_scale", f"must be between {SCALE_RANGE[0]:g} and"
                    f" {SCALE_RANGE[1]:g}, got {scale!r}")
    _check_plausible(means, variances, scale, source)
    kind = data["return_kind"]
    if kind != RETURN_KIND:
        raise _fail(source, "return_kind", f"must be {RETURN_KIND!r}, got {_shown(kind)}")
    low = data["low_state"]
    if type(low) is not int or low not in (0, 1):
        raise _fail(source, "low_state", f"must be the integer 0 or 1, got {_shown(low)}")
    if variances[low] > variances[1 - low]:
        raise _fail(
            source, "low_state", f"{low} is not the smaller-variance state (variances {variances})"
        )
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _fail(source, "metadata", f"must be an object, got {type(metadata).__name__}")
    return HmmModel(
        start_prob=frozen_array(start),
        transmat=frozen_array(trans),
        means=frozen_array(means),
        variances=frozen_array(variances),
        return_scale=scale,
        low_state=int(low),
        metadata=metadata,
    )


def model_to_dict(model: HmmModel) -> dict[str, Any]:
    """Turn `model` into its JSON document (plain lists and floats), the inverse of from_dict."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "start_prob": [float(p) for p in model.start_prob],
        "transmat": [[float(p) for p in row] for row in model.transmat],
        "means": [float(m) for m in model.means],
        "variances": [float(v) for v in model.variances],
        "return_scale": float(model.return_scale),
        "return_kind": RETURN_KIND,
        "low_state": int(model.low_state),
        "metadata": dict(model.metadata),
    }
