"""Model files: JSON round trip, one-line errors, and the trusted-only pickle import."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hmmlearn.hmm import GaussianHMM

from gexbot.core.hmm import decode_last_state, decode_path, model_from_dict, model_to_dict
from gexbot.core.types import HmmState
from gexbot.errors import ConfigError, ModelError
from gexbot.model_io import import_pickle, read_model, write_model

SEED = 31337


def document(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "gexbot-hmm",
        "version": 1,
        "start_prob": [0.3, 0.7],
        "transmat": [[0.9, 0.1], [0.2, 0.8]],
        "means": [0.1, -0.3],
        "variances": [6.0, 0.7],
        "return_scale": 1e4,
        "return_kind": "log",
        "low_state": 1,
        "metadata": {"sessions": ["2026-11-02", "2026-11-03"], "log_likelihood": -123.4},
    }
    doc.update(overrides)
    return doc


def one_line(error: pytest.ExceptionInfo[Exception]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    model = model_from_dict(document())
    path = tmp_path / "models" / "hmm_es.json"
    write_model(path, model)
    again = read_model(path)
    assert model_to_dict(again) == model_to_dict(model)
    assert json.loads(path.read_text()) == document()
    assert path.read_text().startswith("{\n  ")
    assert [p.name for p in path.parent.iterdir()] == ["hmm_es.json"]
    returns = np.random.default_rng(SEED).normal(scale=2e-4, size=20)
    np.testing.assert_array_equal(decode_path(again, returns), decode_path(model, returns))


def test_write_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "hmm_nq.json"
    write_model(path, model_from_dict(document()))
    write_model(path, model_from_dict(document(means=[0.0, 0.0])))
    assert read_model(path).means.tolist() == [0.0, 0.0]
    assert len(list(tmp_path.iterdir())) == 1


def test_missing_file_names_the_variant(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        read_model(tmp_path / "hmm_nq.json")
    message = one_line(info)
    assert "model file not found" in message
    assert "python -m gexbot.train_hmm --variant nq" in message


def test_missing_file_with_another_name_gets_a_generic_hint(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"--variant \{es,nq\}"):
        read_model(tmp_path / "model.json")


def test_truncated_json(tmp_path: Path) -> None:
    path = tmp_path / "hmm_es.json"
    write_model(path, model_from_dict(document()))
    path.write_text(path.read_text()[:70])
    with pytest.raises(ModelError, match="not valid JSON") as info:
        read_model(path)
    assert str(path) in one_line(info)


def test_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read model file"):
        read_model(tmp_path)
    binary = tmp_path / "hmm_es.json"
    binary.write_bytes(b"\x80\x04\x95 not json")
    with pytest.raises(ModelError, match="not a JSON model file"):
        read_model(binary)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"transmat": [[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]]}, r"transmat\[0\]"),
        ({"means": [0.1]}, "means"),
        ({"start_prob": [0.3, 0.6]}, "start_prob"),
        ({"transmat": [[0.9, 0.1], [0.25, 0.8]]}, r"transmat\[1\]"),
    ],
)
def test_invalid_content(tmp_path: Path, overrides: dict[str, Any], named: str) -> None:
    path = tmp_path / "hmm_es.json"
    path.write_text(json.dumps(document(**overrides)))
    with pytest.raises(ModelError, match=rf"^{re.escape(str(path))}: {named}") as info:
        read_model(path)
    one_line(info)


def test_json_array_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "hmm_es.json"
    path.write_text("[1, 2, 3]")
    with pytest.raises(ModelError, match="expected a JSON object"):
        read_model(path)


def fitted_hmm(covariance_type: str) -> tuple[GaussianHMM, np.ndarray]:
    rng = np.random.default_rng(SEED)
    # Raw one-minute returns of 10 and 30 bp, as the old pickles were trained on.
    sigma = np.where(np.arange(600) % 200 < 120, 1e-3, 3e-3)
    data = (rng.normal(size=600) * sigma).reshape(-1, 1)
    hmm = GaussianHMM(n_components=2, covariance_type=covariance_type, n_iter=50, random_state=1,
                      min_covar=1e-9, covars_prior=1e-9)
    hmm.fit(data)
    return hmm, data


def test_import_pickle_refuses_without_trust(tmp_path: Path) -> None:
    path = tmp_path / "hmm_es.pkl"
    path.write_bytes(pickle.dumps({"not": "opened"}))
    with pytest.raises(ConfigError, match="unpickling runs code") as info:
        import_pickle(path, trust=False)
    assert "--trust-pickle" in one_line(info)


@pytest.mark.parametrize("covariance_type", ["diag", "full", "spherical"])
def test_import_pickle_converts_a_gaussian_hmm(tmp_path: Path, covariance_type: str) -> None:
    hmm, data = fitted_hmm(covariance_type)
    path = tmp_path / "hmm_es.pkl"
    with path.open("wb") as handle:
        pickle.dump(hmm, handle)
    model = import_pickle(path, trust=True)
    assert model.return_scale == 1.0
    assert model.metadata["imported_from"] == "hmm_es.pkl"
    variances = hmm.covars_[:, 0, 0]
    assert model.low_state == int(np.argmin(variances))
    np.testing.assert_array_equal(model.variances, variances)
    rng = np.random.default_rng(SEED + 1)
    for start in rng.integers(0, len(data) - 20, size=60):
        window = data[start : start + 20, 0]
        expected = hmm.predict(window.reshape(-1, 1))
        np.testing.assert_array_equal(decode_path(model, window), expected)
        expected_state = HmmState.LOW if expected[-1] == model.low_state else HmmState.HIGH
        assert decode_last_state(model, window) is expected_state


def test_import_pickle_reads_a_scale_from_a_dict(tmp_path: Path) -> None:
    hmm, _ = fitted_hmm("diag")
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps({"model": hmm, "return_scale": 1e4}))
    model = import_pickle(path, trust=True)
    assert model.return_scale == 1e4
    write_model(tmp_path / "hmm_es.json", model)
    assert read_model(tmp_path / "hmm_es.json").metadata["imported_from"] == "old.pkl"


def test_import_pickle_rejects_other_objects(tmp_path: Path) -> None:
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ModelError, match="not a fitted GaussianHMM"):
        import_pickle(path, trust=True)
    three = GaussianHMM(n_components=3, covariance_type="diag", n_iter=5, random_state=0)
    three.fit(np.random.default_rng(SEED).normal(size=(300, 1)))
    path.write_bytes(pickle.dumps(three))
    with pytest.raises(ModelError, match="expected 2 states and 1 feature"):
        import_pickle(path, trust=True)
    with pytest.raises(ModelError, match="pickle file not found"):
        import_pickle(tmp_path / "missing.pkl", trust=True)
    path.write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match="cannot unpickle"):
        import_pickle(path, trust=True)


def _text_with(field: str, literal: str) -> str:
    """The JSON text of a valid model document with `field`'s value written as `literal`."""
    return json.dumps(document(**{field: "@"})).replace('"@"', literal)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (_text_with("variances", "[1e-400, 1.0]"), "the number 1e-400 is too small for a float"),
        (_text_with("variances", "[1e-320, 1.0]"), "the number 1e-320 is too small for a float"),
        (_text_with("transmat", "[[1.0, 1e-400], [0.5, 0.5]]"), "1e-400 is too small"),
        (_text_with("means", "[1e400, 0.0]"), "the number 1e400 is too large for a float"),
        (_text_with("means", "[NaN, 0.0]"), "NaN is not a number"),
        (_text_with("variances", "[-Infinity, 1.0]"), "-Infinity is not a number"),
        (_text_with("low_state", "1" + "0" * 399), "an integer of 400 digits"),
        (_text_with("low_state", "1" + "0" * 5000), "an integer of 5001 digits"),
        (_text_with("metadata", "[" * 100_000 + "]" * 100_000), "nested more than 32 levels"),
        (_text_with("metadata", '{"a":' * 40 + "1" + "}" * 40), "nested more than 32 levels"),
        ('{"format": "gexbot-hmm", "version": 1, "version": 2}', "key 'version' appears twice"),
        (_text_with("metadata", '{"variant": "es", "variant": "nq"}'),
         "key 'variant' appears twice"),
    ],
)
def test_numbers_and_shapes_json_allows_but_no_model_has(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "hmm_es.json"
    path.write_text(text)
    with pytest.raises(ModelError) as info:
        read_model(path)
    message = one_line(info)
    assert message.startswith(f"{path}: not a model file gexbot can use (")
    assert says in message
    assert len(message) < 300


def test_values_json_reads_but_the_gate_cannot_use(tmp_path: Path) -> None:
    path = tmp_path / "hmm_es.json"
    path.write_text(_text_with("low_state", "0.0").replace('"variances": [6.0, 0.7]',
                                                           '"variances": [0.7, 6.0]'))
    with pytest.raises(ModelError, match=r"low_state must be the integer 0 or 1, got 0\.0"):
        read_model(path)
    path.write_text(_text_with("means", "[1e308, 0.0]"))
    with pytest.raises(ModelError, match=r"means\[0\] 1e\+308 is a mean one-minute return"):
        read_model(path)


def test_files_of_another_kind(tmp_path: Path) -> None:
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"format": "gexbot-hmm", "note": "café"}'.encode("latin-1"))
    with pytest.raises(ModelError, match=r"not a JSON model file \(is not UTF-8 text"):
        read_model(latin)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (2 << 20))
    with pytest.raises(ModelError, match=r"cannot read model file \(is larger than 1024 KiB"):
        read_model(big)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ModelError, match=r"cannot read model file \(is not a regular file\)"):
        read_model(fifo)


def test_a_model_of_another_variant_is_refused_where_a_variant_is_asked(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    metadata = {"variant": "nq", "symbol": "$NDX"}
    write_model(path, model_from_dict(document(metadata=metadata)))
    assert read_model(path).metadata == metadata
    assert read_model(path, variant="nq").metadata == metadata
    with pytest.raises(ModelError) as info:
        read_model(path, variant="es")
    assert one_line(info) == (
        f"{path}: a model trained for variant 'nq', not 'es'; pass the es model, or train one"
        " with `python -m gexbot.train_hmm --variant es`"
    )
    imported = tmp_path / "imported.json"
    write_model(imported, model_from_dict(document(metadata={"imported_from": "x.pkl"})))
    assert read_model(imported, variant="es").metadata == {"imported_from": "x.pkl"}


def test_writing_where_no_file_can_go_is_one_line(tmp_path: Path) -> None:
    model = model_from_dict(document())
    with pytest.raises(ModelError, match="is a folder; name the model file to write"):
        write_model(tmp_path, model)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ModelError, match=r"cannot write the model file \(.*file is not a folder"):
        write_model(blocker / "hmm_es.json", model)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
