"""HMM decoding against hmmlearn's predict, and validation of model documents."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np
import pytest
from hmmlearn.hmm import GaussianHMM

from gexbot.core.hmm import (
    HmmModel,
    decode_last_state,
    decode_path,
    model_from_dict,
    model_to_dict,
)
from gexbot.core.types import HmmState
from gexbot.errors import ModelError

SEED = 424242


def document(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "gexbot-hmm",
        "version": 1,
        "start_prob": [0.6, 0.4],
        "transmat": [[0.97, 0.03], [0.05, 0.95]],
        "means": [0.05, -0.1],
        "variances": [0.8, 4.5],
        "return_scale": 1e4,
        "return_kind": "log",
        "low_state": 0,
        "metadata": {"trained_on": "test"},
    }
    doc.update(overrides)
    return doc


def reference(model: HmmModel) -> GaussianHMM:
    """The same parameters in hmmlearn, whose predict is the ground truth."""
    hmm = GaussianHMM(n_components=2, covariance_type="diag")
    hmm.startprob_ = np.array(model.start_prob)
    hmm.transmat_ = np.array(model.transmat)
    hmm.means_ = np.array(model.means).reshape(2, 1)
    hmm.covars_ = np.array(model.variances).reshape(2, 1)
    return hmm


def random_model(rng: np.random.Generator) -> HmmModel:
    stay = rng.uniform(0.5, 0.999, size=2)
    variances = sorted(rng.uniform(0.2, 20.0, size=2))
    low = int(rng.integers(2))
    if low == 1:
        variances.reverse()
    start = float(rng.uniform(0.01, 0.99))
    return model_from_dict(
        document(
            start_prob=[start, 1.0 - start],
            transmat=[[stay[0], 1.0 - stay[0]], [1.0 - stay[1], stay[1]]],
            means=rng.normal(scale=0.5, size=2).tolist(),
            variances=variances,
            low_state=low,
        )
    )


def tie_models() -> list[HmmModel]:
    """Models whose states are exactly or nearly indistinguishable, where tie-breaking rules."""
    return [
        model_from_dict(
            document(
                start_prob=[0.5, 0.5],
                transmat=[[0.9, 0.1], [0.1, 0.9]],
                means=[0.0, 0.0],
                variances=[1.0, 1.0],
            )
        ),
        model_from_dict(
            document(
                start_prob=[0.5, 0.5],
                transmat=[[0.5, 0.5], [0.5, 0.5]],
                means=[0.0, 1e-12],
                variances=[1.0, 1.0 + 1e-12],
            )
        ),
        model_from_dict(
            document(
                start_prob=[1.0, 0.0],
                transmat=[[1.0, 0.0], [0.3, 0.7]],
                means=[0.0, 0.0],
                variances=[1.0, 9.0],
            )
        ),
    ]


def windows(rng: np.random.Generator, model: HmmModel, count: int) -> list[np.ndarray]:
    """Return windows of 20 unscaled returns, calm, wild, or exactly zero."""
    scale = model.return_scale
    spread = math.sqrt(float(np.max(model.variances))) / scale
    result = []
    for k in range(count):
        kind = k % 4
        if kind == 3:
            result.append(np.zeros(20))
        else:
            result.append(rng.normal(scale=spread * (0.3, 1.0, 2.5)[kind], size=20))
    return result


def test_decode_equals_hmmlearn_predict_on_random_windows() -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    models = [random_model(rng) for _ in range(12)] + tie_models()
    checked = 0
    both_states = set()
    for model in models:
        hmm = reference(model)
        for returns in windows(rng, model, 160):
            expected = hmm.predict((returns * model.return_scale).reshape(-1, 1))
            path = decode_path(model, returns)
            np.testing.assert_array_equal(path, expected)
            state = decode_last_state(model, returns)
            assert state is (HmmState.LOW if expected[-1] == model.low_state else HmmState.HIGH)
            both_states.add(state)
            checked += 1
    assert checked >= 2000
    assert both_states == {HmmState.LOW, HmmState.HIGH}


def test_exact_tie_goes_to_the_lower_index_last_and_higher_index_back() -> None:
    model = tie_models()[0]
    returns = np.zeros(5)
    # hmmlearn's C++: max_element picks state 0 at the end; std::max over (value, index)
    # pairs picks the higher index on each step back.
    expected = reference(model).predict(returns.reshape(-1, 1))
    np.testing.assert_array_equal(decode_path(model, returns), expected)
    assert decode_path(model, returns)[-1] == 0


def test_decode_handles_a_single_return_and_rejects_none() -> None:
    model = model_from_dict(document())
    one = np.array([3e-4])
    expected = reference(model).predict((one * 1e4).reshape(-1, 1))
    np.testing.assert_array_equal(decode_path(model, one), expected)
    with pytest.raises(ValueError, match="at least one"):
        decode_last_state(model, np.array([]))


def test_calm_and_wild_windows_decode_to_low_and_high() -> None:
    model = model_from_dict(document(low_state=1, variances=[9.0, 0.5]))
    assert decode_last_state(model, np.full(20, 1e-5)) is HmmState.LOW
    assert decode_last_state(model, np.array([8e-4, -9e-4] * 10)) is HmmState.HIGH


def test_round_trip_through_json() -> None:
    model = model_from_dict(document())
    again = model_from_dict(json.loads(json.dumps(model_to_dict(model))))
    assert model_to_dict(again) == model_to_dict(model)
    assert model_to_dict(model) == document()
    assert again.variance_ratio == pytest.approx(4.5 / 0.8)


def test_arrays_are_read_only() -> None:
    model = model_from_dict(document())
    with pytest.raises(ValueError, match="read-only"):
        model.means[0] = 1.0


def test_metadata_may_be_absent() -> None:
    doc = document()
    del doc["metadata"]
    assert model_from_dict(doc).metadata == {}


BAD_FIELDS: list[tuple[str, Any, str]] = [
    ("format", "hmmlearn-pickle", "format"),
    ("version", 2, "version"),
    ("version", True, "version"),
    ("start_prob", [1.0], "start_prob"),
    ("start_prob", [0.7, 0.7], "start_prob"),
    ("start_prob", [1.2, -0.2], "start_prob"),
    ("start_prob", [0.5, "0.5"], r"start_prob\[1\]"),
    ("start_prob", [math.nan, 1.0], r"start_prob\[0\]"),
    ("transmat", [[0.9, 0.1]], "transmat"),
    ("transmat", [[0.9, 0.1], [0.5, 0.4]], r"transmat\[1\]"),
    ("transmat", [[0.9, 0.1], [0.5]], r"transmat\[1\]"),
    ("transmat", [[0.9, 0.1], [0.5, math.inf]], r"transmat\[1\]\[1\]"),
    ("means", [0.0, 0.0, 0.0], "means"),
    ("means", [0.0, math.nan], r"means\[1\]"),
    ("variances", [0.0, 1.0], "variances"),
    ("variances", [-1.0, 1.0], "variances"),
    ("variances", [1.0, math.inf], r"variances\[1\]"),
    ("return_scale", 0.0, "return_scale"),
    ("return_scale", None, "return_scale"),
    ("return_kind", "simple", "return_kind"),
    ("low_state", 1, "low_state"),
    ("low_state", 2, "low_state"),
    ("low_state", True, "low_state"),
    ("metadata", [], "metadata"),
    ("colour", "blue", "colour"),
    # Values that are finite but leave the gate meaningless, or do not compute.
    ("low_state", 0.0, "low_state must be the integer 0 or 1, got 0.0"),
    ("low_state", 10**400, "low_state must be the integer 0 or 1, got an integer of 401"),
    ("version", 1.0, "version must be 1, got 1.0"),
    ("variances", [1e-320, 1.0], r"variances\[0\] 1e-320 is too small to compute with"),
    ("variances", [1e-200, 1.0], r"variances\[0\] 1e-200 is a standard deviation of 1e-104"),
    ("variances", [1.0, 1e300], r"variances\[1\] 1e\+300 is a standard deviation of 1e\+146"),
    ("variances", [1.0, 10**400], r"variances\[1\] must be finite, got an integer of 401"),
    ("means", [1e308, 0.0], r"means\[0\] 1e\+308 is a mean one-minute return of 1e\+304"),
    ("means", [0.0, -1e308], r"means\[1\] -1e\+308 is a mean one-minute return"),
    ("transmat", [[1.0, 5e-324], [0.5, 0.5]], r"transmat\[0\]\[1\] 5e-324 is too small"),
    ("start_prob", [1.0, 1e-310], r"start_prob\[1\] 1e-310 is too small"),
    ("return_scale", 1e-300, "return_scale must be between 1 and 1e\\+06"),
    ("return_scale", 1e300, "return_scale must be between 1 and 1e\\+06"),
    ("format", "x" * 10_000, "format must be 'gexbot-hmm', got 'xxxx.*\\.\\.\\.$"),
    ("\n2026-10-13 09:58:00 ES  LONG", 1, r"unknown field\(s\) '\\n2026"),
]


@pytest.mark.parametrize(("field", "value", "named"), BAD_FIELDS,
                         ids=[f"{field[:12]}-{i}" for i, (field, _, _) in enumerate(BAD_FIELDS)])
def test_each_bad_field_is_a_one_line_model_error(field: str, value: Any, named: str) -> None:
    doc = copy.deepcopy(document())
    doc[field] = value
    with pytest.raises(ModelError, match=rf"^models/hmm_es\.json: .*{named}") as info:
        model_from_dict(doc, source="models/hmm_es.json")
    assert "\n" not in str(info.value)


def test_missing_field_and_non_object() -> None:
    doc = document()
    del doc["variances"]
    with pytest.raises(ModelError, match=r"missing field.*variances"):
        model_from_dict(doc)
    with pytest.raises(ModelError, match="JSON object"):
        model_from_dict([1, 2], source="x")  # type: ignore[arg-type]


@pytest.mark.parametrize("scale", [1.0, 1e4, 1e6])
def test_states_any_market_could_have_are_accepted(scale: float) -> None:
    """From 0.000001 bp to 10% a minute, drifting up to 1% a minute, at every return scale."""
    calmest, wildest = (1.01e-8 * scale) ** 2, (0.0999 * scale) ** 2
    model = model_from_dict(document(variances=[calmest, wildest], return_scale=scale,
                                     means=[0.0099 * scale, -0.0099 * scale]))
    assert model.variance_ratio == pytest.approx((0.0999 / 1.01e-8) ** 2)


def test_rows_within_tolerance_are_accepted() -> None:
    model = model_from_dict(document(transmat=[[0.97 + 5e-7, 0.03], [0.05, 0.95]]))
    assert model.transmat[0, 0] == pytest.approx(0.97 + 5e-7, abs=0)
