"""`python -m gexbot.train_hmm` in-process: what it writes, what it refuses, the pickle import."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml
from hmmlearn.hmm import GaussianHMM

import gexbot.train_hmm as train_hmm
from gexbot.model_io import read_model
from gexbot.settings import preset_path

COMMON = ["--variant", "es", "--source", "sim", "--end", "2026-09-30", "--restarts", "2"]


def test_a_trained_model_says_what_it_was_trained_on(tmp_path: Path) -> None:
    out = tmp_path / "hmm_es.json"
    assert train_hmm.main([*COMMON, "--out", str(out)]) == 0
    model = read_model(out)
    meta = json.loads(out.read_text())["metadata"]
    assert model.return_scale == 1e4
    assert model.variances[model.low_state] < model.variances[1 - model.low_state]
    assert model.variance_ratio >= 1.5
    assert (meta["variant"], meta["symbol"], meta["source"]) == ("es", "$SPX", "sim")
    assert (meta["first_session"], meta["last_session"], meta["sessions"]) == (
        "2026-09-17", "2026-09-30", 10
    )
    assert meta["n_observations"] == 10 * 389
    assert meta["converged"] is True
    assert meta["variance_ratio"] == pytest.approx(model.variance_ratio)
    assert set(meta["versions"]) == {"gexbot", "hmmlearn", "numpy"}
    assert "trained_at" in meta
    assert np.isfinite(meta["log_likelihood"])


def test_states_too_alike_are_refused_unless_forced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    document = yaml.safe_load(preset_path("es").read_text())
    document["strategy"]["hmm"]["min_variance_ratio"] = 1000.0
    preset = tmp_path / "strict.yaml"
    preset.write_text(yaml.safe_dump(document))
    out = tmp_path / "hmm_es.json"
    with caplog.at_level(logging.CRITICAL):
        assert train_hmm.main([*COMMON, "--preset", str(preset), "--out", str(out)]) == 2
    assert not out.exists()
    (refusal,) = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "below the preset's 1000.0" in refusal
    assert refusal.endswith("Nothing written; use --force to write anyway")
    assert train_hmm.main([*COMMON, "--preset", str(preset), "--out", str(out), "--force"]) == 0
    assert read_model(out).variance_ratio < 1000.0


def test_a_pickle_is_opened_only_when_vouched_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(8)
    sigma = np.where(np.arange(800) % 200 < 120, 1e-3, 3e-3)  # raw returns of 10 and 30 bp
    hmm = GaussianHMM(n_components=2, covariance_type="diag", n_iter=50, random_state=1,
                      min_covar=1e-9, covars_prior=1e-9)
    hmm.fit((rng.normal(size=800) * sigma).reshape(-1, 1))
    old = tmp_path / "hmm_pretrained_es.pkl"
    old.write_bytes(pickle.dumps(hmm))
    out = tmp_path / "hmm_es.json"
    with caplog.at_level(logging.CRITICAL):
        assert train_hmm.main(["--variant", "es", "--import-pickle", str(old),
                               "--out", str(out)]) == 2
    assert not out.exists()
    assert any("unpickling runs code from the file" in r.getMessage() for r in caplog.records)
    assert train_hmm.main(["--variant", "es", "--import-pickle", str(old), "--trust-pickle",
                           "--out", str(out)]) == 0
    model = read_model(out)
    variances = hmm.covars_[:, 0, 0]
    assert model.low_state == int(np.argmin(variances))
    assert model.return_scale == 1.0
    assert model.variances.tolist() == variances.tolist()
    assert model.transmat.tolist() == hmm.transmat_.tolist()
