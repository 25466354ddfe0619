"""HMM model files: read and write the JSON format, and a one-way import of old pickles.

A model file is data: reading one parses JSON and validates numbers, nothing else. Writing is
atomic (a temporary file in the same directory, then `os.replace`), so a daemon starting while
the trainer writes sees either the old model or the new one, never half a file. Only a model
file is ever replaced: a destination holding anything else (a user's file, a symbolic link) is
refused before any work is done.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from gexbot.core.hmm import FORMAT, HmmModel, model_from_dict, model_to_dict
from gexbot.documents import DocumentError, NotAFileError, load_json, read_bytes, read_text
from gexbot.errors import ConfigError, ModelError
from gexbot.shell.dbfile import write_failure

_VARIANT_NAME = re.compile(r"hmm_([A-Za-z0-9]+)\.json")
_PICKLE_COVARIANCE_TYPES = ("diag", "full", "spherical")
MODEL_LIMIT = 1 << 20
"""Bytes of the largest model file read (a trained one is about 1.5 KiB)."""
PICKLE_LIMIT = 16 << 20
"""Bytes of the largest pickle imported (a pickled 2-state GaussianHMM is a few KB)."""


def _train_hint(path: Path) -> str:
    match = _VARIANT_NAME.fullmatch(path.name)
    variant = match.group(1).lower() if match else "{es,nq}"
    return f"train one with `python -m gexbot.train_hmm --variant {variant}`"


def read_model(path: Path, variant: str | None = None) -> HmmModel:
    """Load and validate the model file at `path`; every failure is a one-line `ModelError`.

    With `variant`, a model whose metadata says it was trained for another variant is refused:
    NQ's volatility states gating ES's entries would trade on the wrong market's regimes.
    """
    try:
        text = read_text(path, MODEL_LIMIT)
    except FileNotFoundError:
        raise ModelError(f"{path}: model file not found; {_train_hint(path)}") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ModelError(f"{path}: cannot read model file ({reason})") from None
    except NotAFileError as problem:
        raise ModelError(f"{path}: cannot read model file ({problem})") from None
    except DocumentError as problem:
        raise ModelError(f"{path}: not a JSON model file ({problem})") from None
    try:
        data = load_json(text)
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            f"the file may be truncated: {_train_hint(path)}"
        ) from None
    except DocumentError as problem:
        raise ModelError(f"{path}: not a model file gexbot can use ({problem})") from None
    model = model_from_dict(data, source=str(path))
    trained_for = model.metadata.get("variant")
    if variant is not None and isinstance(trained_for, str) and trained_for != variant:
        raise ModelError(
            f"{path}: a model trained for variant {trained_for!r}, not {variant!r}; pass the"
            f" {variant} model, or train one with `python -m gexbot.train_hmm --variant {variant}`"
        )
    return model


def check_destination(path: Path) -> None:
    """Refuse, in one line, a destination that is not free or a model file to replace."""
    if path.is_symlink():
        raise ModelError(f"{path} is a symbolic link; name the file it points to with --out")
    if path.is_dir():
        raise ModelError(f"{path}: is a folder; name the model file to write (e.g. hmm_es.json)")
    try:
        with path.open("rb") as handle:
            head = handle.read(1 << 20)
    except FileNotFoundError:
        return
    except OSError as problem:
        raise ModelError(f"{path}: cannot read what is there ({problem.strerror})") from None
    try:
        document = json.loads(head)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelError(
            f"{path} exists and is not an HMM model file; gexbot replaces only model files:"
            " move it away or choose another --out"
        )


def write_model(path: Path, model: HmmModel) -> None:
    """Write `model` to `path` as pretty JSON, atomically, creating the parent directory."""
    text = json.dumps(model_to_dict(model), indent=2, allow_nan=False) + "\n"
    if path.parent.exists() and not path.parent.is_dir():
        raise ModelError(f"{path}: cannot write the model file ({path.parent} is not a folder)")
    check_destination(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(tmp_name)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as problem:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        failure = write_failure(path, problem, elsewhere="--out")
        if failure is None and isinstance(problem, OSError):
            failure = ModelError(f"{path}: cannot write the model file ({problem.strerror})")
        if failure is None:
            raise
        raise failure from None


def import_pickle(path: Path, trust: bool) -> HmmModel:
    """Convert an old pickled hmmlearn GaussianHMM (2 states, 1 feature) into a model.

    The pickle may hold the estimator itself, or a dict with it under ``model`` (or ``hmm``)
    and optionally ``return_scale``; without one the scale is 1.0 (raw returns, as the old
    models were trained). Unpickling runs code from the file, so this refuses unless `trust`.
    """
    if not trust:
        raise ConfigError(
            f"{path}: unpickling runs code from the file; "
            "pass --trust-pickle only for a file you made"
        )
    try:
        data = read_bytes(path, PICKLE_LIMIT)
    except FileNotFoundError:
        raise ModelError(f"{path}: pickle file not found") from None
    except (OSError, DocumentError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ModelError(f"{path}: cannot unpickle ({reason})") from None
    try:
        # The caller vouched for this file (trust=True); this is the only unpickling site.
        loaded = pickle.loads(data)  # noqa: S301
    except Exception as exc:
        raise ModelError(f"{path}: cannot unpickle ({type(exc).__name__}: {exc})") from None
    return _from_estimator(loaded, path)


def _from_estimator(loaded: Any, path: Path) -> HmmModel:
    scale = 1.0
    estimator = loaded
    if isinstance(loaded, dict):
        estimator = loaded.get("model", loaded.get("hmm"))
        raw_scale = loaded.get("return_scale", 1.0)
        if isinstance(raw_scale, bool) or not isinstance(raw_scale, int | float):
            raise ModelError(f"{path}: return_scale in the pickle must be a number")
        scale = float(raw_scale)
    needed = ("startprob_", "transmat_", "means_", "covars_", "covariance_type")
    if estimator is None or not all(hasattr(estimator, name) for name in needed):
        raise ModelError(
            f"{path}: the pickle holds {type(estimator).__name__}, not a fitted GaussianHMM"
        )
    kind = estimator.covariance_type
    if kind not in _PICKLE_COVARIANCE_TYPES:
        raise ModelError(f"{path}: covariance_type {kind!r} is not one of diag, full, spherical")
    means = np.asarray(estimator.means_, dtype=np.float64)
    covars = np.asarray(estimator.covars_, dtype=np.float64)
    if means.shape != (2, 1) or covars.shape != (2, 1, 1):
        raise ModelError(
            f"{path}: expected 2 states and 1 feature, got means of shape {means.shape}"
        )
    # hmmlearn's `covars_` is the full (n_states, n_features, n_features) matrix whatever the
    # covariance type, so the per-state variance is its only element.
    variances = covars[:, 0, 0]
    document = {
        "format": "gexbot-hmm",
        "version": 1,
        "start_prob": np.asarray(estimator.startprob_, dtype=np.float64).tolist(),
        "transmat": np.asarray(estimator.transmat_, dtype=np.float64).tolist(),
        "means": means[:, 0].tolist(),
        "variances": variances.tolist(),
        "return_scale": scale,
        "return_kind": "log",
        "low_state": int(np.argmin(variances)),
        "metadata": {
            "imported_from": path.name,
            "covariance_type": str(kind),
            "note": "converted from a pickled hmmlearn GaussianHMM",
        },
    }
    return model_from_dict(document, source=str(path))
