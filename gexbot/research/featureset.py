"""Feature sets: build the tables a backtest needs, reuse the ones still valid, load them.

A table depends on the data (the simulated market's seed, or the bytes of the recordings), the
preset's table settings (everything but the kernel's per-combination parameters), the HMM
model's parameters and the gexbot version. Tables live under `OUT/<variant>/<key>/`, the key a
hash of the table settings, so each set of feature parameters has its own folder; within it a
day whose model, version or data changed, or whose file is damaged, is rebuilt with one line
saying why. Days build in parallel processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from gexbot import __version__
from gexbot.core.engine import EngineParams
from gexbot.core.hmm import HmmModel, model_from_dict, model_to_dict
from gexbot.core.types import SessionTimes
from gexbot.errors import ConfigError, Interrupted
from gexbot.research.fold import COLUMN_DTYPES, fold_session
from gexbot.research.markets import DataSpec, MarketData
from gexbot.research.params import apply_overrides, table_identity
from gexbot.research.tables import (
    SUFFIX,
    BadTable,
    StoredSession,
    read_session,
    table_path,
    write_session,
)
from gexbot.settings import Preset, load_variant
from gexbot.shell.signals import stop_signals_held
from gexbot.wording import counted

log = logging.getLogger("gexbot.research")
KEY_CHARS = 16


@dataclass(frozen=True, slots=True, eq=False)
class FeatureSet:
    """Per-minute feature columns of consecutive sessions, ready for the kernel.

    `columns` holds every session's rows one after the other (`fold.COLUMN_DTYPES`);
    `offsets[s]:offsets[s + 1]` are session s's rows; `close_minute[s]` its close in minutes
    since the epoch. `preset` is the preset the tables were built with; any strategy whose
    table settings equal its own may be evaluated on them.
    """

    variant: str
    preset: Preset
    directory: Path
    table_key: str
    model_sha256: str
    dates: tuple[date, ...]
    facts: tuple[dict[str, Any], ...]
    columns: dict[str, np.ndarray]
    skip_reason: tuple[str | None, ...]
    offsets: np.ndarray
    close_minute: np.ndarray
    data: dict[str, Any] = field(default_factory=dict)
    """The data the tables were built from (`DataSpec.describe`)."""

    @property
    def n_sessions(self) -> int:
        """Sessions in the set."""
        return len(self.dates)

    @property
    def n_minutes(self) -> int:
        """Session minutes in the set, skipped ones included."""
        return int(self.offsets[-1])

    def skipped_by_kind(self) -> dict[str, int]:
        """Skipped minutes counted by the kind of problem (the part of the reason before ':')."""
        kinds = Counter(r.split(": ", 1)[0] for r in self.skip_reason if r is not None)
        return dict(sorted(kinds.items()))


def model_sha256(model: HmmModel) -> str:
    """A hash of what decoding reads from a model (its metadata left out)."""
    document = {k: v for k, v in model_to_dict(model).items() if k != "metadata"}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def table_key(preset: Preset) -> str:
    """The folder name of a preset's tables: a hash of its table settings."""
    text = json.dumps(table_identity(preset), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_CHARS]


def load_features(
    variant: str,
    data: DataSpec,
    out: Path,
    *,
    preset: Preset | None = None,
    overrides: Mapping[str, Any] | None = None,
    model_path: Path | None = None,
    workers: int | None = None,
) -> FeatureSet:
    """The feature set of `data` for `variant`, building only the tables that are missing.

    `preset` defaults to the shipped one; `overrides` (dotted keys) are applied and validated
    first, so a sweep passes a combination's table settings here. `model_path` overrides the
    preset's model (a replay otherwise uses the model its recordings name, as the daemon does).
    Tables go to `out/<variant>/<data>/<key>/`: one folder per data and table settings.
    """
    preset = load_variant(variant) if preset is None else preset
    if preset.variant != variant:
        raise ConfigError(f"the preset is for variant {preset.variant!r}, not {variant!r}")
    preset = apply_overrides(preset, overrides or {})
    market = MarketData(data, preset, model_path)
    sessions = market.sessions()
    if not sessions:
        raise ConfigError("no trading session in the data: nothing to build")
    directory = Path(out) / variant / market.label() / table_key(preset)
    return _synced(market, preset, directory, sessions, workers)


def open_features(
    directory: Path,
    variant: str,
    preset: Preset,
    *,
    model_path: Path | None = None,
    workers: int | None = None,
) -> FeatureSet:
    """The feature set of the tables in `directory` (one folder `load_features` wrote).

    The strategy `preset` must share the tables' settings. Tables of another gexbot version or
    model are rebuilt from the data they name (one line says so); a damaged one is refused.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such feature table folder")
    files = sorted(directory.glob(f"*{SUFFIX}"))
    if not files:
        raise ConfigError(f"{directory}: no feature tables (*{SUFFIX}) in this folder; build"
                          " them with python -m gexbot.features build")
    metas = []
    for path in files:
        try:
            metas.append(read_session(path).meta)
        except BadTable as problem:
            raise ConfigError(f"{path}: {problem}; delete it and build the tables again"
                              " (python -m gexbot.features build)") from None
    found = {str(meta.get("variant")) for meta in metas}
    if found != {variant}:
        raise ConfigError(f"{directory}: tables of variant {', '.join(sorted(found))}, not"
                          f" {variant!r}")
    differs = first_difference(table_identity(preset), metas[0].get("table_settings"))
    if differs is not None:
        raise ConfigError(f"{directory}: built with another {differs} than the strategy's;"
                          " build tables with it, or name the data instead of --features")
    specs = {json.dumps(meta.get("data"), sort_keys=True) for meta in metas}
    if len(specs) != 1:
        raise ConfigError(f"{directory}: tables of different data in one folder")
    days = sorted(date.fromisoformat(meta["session"]["date"]) for meta in metas)
    market = MarketData(_spec_of(metas[0].get("data"), days[0]), preset, model_path)
    sessions = [market.calendar.session(day) for day in days]
    return _synced(market, preset, directory, sessions, workers)


def _spec_of(described: Any, first: date) -> DataSpec:
    """The data a table names (`DataSpec.describe`), to rebuild it."""
    if isinstance(described, dict) and described.get("source") == "sim":
        return DataSpec.sim(int(described.get("seed", 1)), first, 1)
    if isinstance(described, dict) and described.get("source") == "replay":
        return DataSpec.recordings([Path(p) for p in described.get("replay", [])])
    raise ConfigError(f"tables that name no data they were built from ({described!r})")


def first_difference(mine: Any, theirs: Any, prefix: str = "") -> str | None:
    """The first dotted key whose value differs between two documents, None if none does."""
    if mine == theirs:
        return None
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in sorted(set(mine) | set(theirs)):
            found = first_difference(mine.get(key), theirs.get(key), f"{prefix}{key}.")
            if found is not None:
                return found
    return prefix.rstrip(".") or "settings"


def _synced(
    market: MarketData,
    preset: Preset,
    directory: Path,
    sessions: Sequence[SessionTimes],
    workers: int | None,
) -> FeatureSet:
    """Reuse each session's table that still serves, rebuild the others, and load them all."""
    provenance = {
        "gexbot_version": __version__,
        "variant": preset.variant,
        "table_key": table_key(preset),
        "table_settings": table_identity(preset),
        "preset": preset.model_dump(mode="json"),
        "model_sha256": model_sha256(market.model),
        "data": market.spec.describe(),
    }
    stored: dict[date, StoredSession] = {}
    stale: list[tuple[SessionTimes, str]] = []
    for session in sessions:
        path = table_path(directory, session.date.isoformat())
        if not path.exists():
            stale.append((session, "not built yet"))
            continue
        try:
            found = read_session(path)
        except BadTable as problem:
            stale.append((session, f"{problem}"))
            continue
        why = _mismatch(found.meta, provenance, market.data_id(session))
        if why is None:
            stored[session.date] = found
        else:
            stale.append((session, why))
    if stale:
        _make_folder(directory)
        jobs = [(s, {**provenance, "data_id": market.data_id(s)}) for s, _ in stale]
        _build(market, preset, jobs, directory, workers,
               lambda: _report(stale, directory, len(sessions)))
        for session, _ in stale:
            stored[session.date] = read_session(table_path(directory, session.date.isoformat()))
    return _assemble(preset.variant, preset, directory, provenance,
                     [stored[s.date] for s in sessions])


def _mismatch(meta: Mapping[str, Any], wanted: Mapping[str, Any], data_id: str) -> str | None:
    """Why a stored table does not serve, or None when it does."""
    if meta.get("variant") != wanted["variant"]:
        return f"built for variant {meta.get('variant')!r}"
    if meta.get("gexbot_version") != wanted["gexbot_version"]:
        return f"built by gexbot {meta.get('gexbot_version')}, this is {wanted['gexbot_version']}"
    if meta.get("table_settings") != wanted["table_settings"]:
        return "built with other table settings"
    if meta.get("model_sha256") != wanted["model_sha256"]:
        return "built with another HMM model"
    if meta.get("data_id") != data_id:
        return "its data changed (another seed or other recordings)"
    return None


def _report(stale: Sequence[tuple[SessionTimes, str]], directory: Path, total: int) -> None:
    """One line per reason: how many session tables are (re)built and why."""
    by_reason: dict[str, list[SessionTimes]] = {}
    for session, why in stale:
        by_reason.setdefault(why, []).append(session)
    for why, sessions in by_reason.items():
        first = sessions[0].date.isoformat()
        verb = "building" if why == "not built yet" else "rebuilding"
        example = "" if why == "not built yet" else f" (e.g. {table_path(directory, first)})"
        log.info("%s %d of %s in %s: %s%s", verb, len(sessions),
                 counted(total, "session table"), directory, why, example)


_WORKER: dict[str, Any] = {}


def _make_folder(directory: Path) -> None:
    """The folder the tables go to, or ConfigError in one line saying why it cannot be."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as problem:
        raise ConfigError(
            f"{directory}: cannot create the feature table folder ({problem.strerror}); pass"
            " another --out"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"{directory}: the feature table folder is not writable")


def _worker_start(
    data: DataSpec, preset: Preset, model_file: Path | None, model: dict[str, Any]
) -> None:
    """A pool process's start: Ctrl-C is the parent's to handle (it reaches the whole process
    group, and a worker's traceback would only repeat it); SIGTERM ends it quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # held back by the parent until here
    _open_market(data, preset, model_file, model)


def _open_market(
    data: DataSpec, preset: Preset, model_file: Path | None, model: dict[str, Any]
) -> None:
    """Open the market once per process building tables."""
    _WORKER["market"] = MarketData(data, preset, model_file)
    _WORKER["params"] = EngineParams.from_preset(preset, model_from_dict(model))


def _worker_build(job: tuple[SessionTimes, dict[str, Any], Path]) -> int:
    session, provenance, path = job
    market: MarketData = _WORKER["market"]
    features = fold_session(session, market.minutes(session), _WORKER["params"])
    write_session(path, features, provenance)
    return features.minutes


def _build(
    market: MarketData,
    preset: Preset,
    jobs: Sequence[tuple[SessionTimes, dict[str, Any]]],
    directory: Path,
    workers: int | None,
    announce: Callable[[], None],
) -> None:
    """Fold and write the sessions of `jobs`, in parallel processes when there are several;
    `announce` says what is built, once the work is under way (so Ctrl-C after it is counted)."""
    started = time.perf_counter()
    tasks = [(s, p, table_path(directory, s.date.isoformat())) for s, p in jobs]
    count = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    opening = (market.spec, preset, market.model_file, model_to_dict(market.model))
    finished: list[int] = []
    """The minutes of each table written so far."""
    try:
        announce()
        if count == 1:
            _open_market(*opening)
            for task in tasks:
                finished.append(_worker_build(task))
        else:
            _build_in(count, tasks, opening, finished)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: {len(finished)} of {counted(len(tasks), 'session table')} built in"
            f" {directory}; the same command builds the rest"
        ) from None
    except OSError as problem:  # a full disk, a folder made read-only meanwhile
        raise ConfigError(
            f"{directory}: cannot write the feature tables ({problem.strerror or problem})"
        ) from None
    log.info("built %s (%s) in %.1f s on %s", counted(len(tasks), "session table"),
             counted(sum(finished), "minute"), time.perf_counter() - started,
             counted(count, "process", "processes"))


def _build_in(
    count: int,
    tasks: Sequence[tuple[SessionTimes, dict[str, Any], Path]],
    initargs: tuple[DataSpec, Preset, Path | None, dict[str, Any]],
    finished: list[int],
) -> None:
    """Build `tasks` in `count` processes, adding each written table's minutes to `finished`;
    when interrupted, the sessions not begun are cancelled and those under way end first."""
    pool = None
    futures: list[Future[int]] = []
    try:
        with stop_signals_held():  # the processes start (fork) at the first submit
            pool = ProcessPoolExecutor(count, initializer=_worker_start, initargs=initargs)
            futures += [pool.submit(_worker_build, task) for task in tasks]
        for future in as_completed(futures):  # a stop asked while starting lands here
            future.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        finished.extend(f.result() for f in futures
                        if f.done() and not f.cancelled() and f.exception() is None)


def _assemble(
    variant: str,
    preset: Preset,
    directory: Path,
    provenance: Mapping[str, Any],
    stored: Sequence[StoredSession],
) -> FeatureSet:
    """Concatenate the stored sessions' columns in date order."""
    built = assemble(
        variant,
        preset,
        directory,
        str(provenance["table_key"]),
        str(provenance["model_sha256"]),
        [(s.columns, s.skip_reason, s.facts) for s in stored],
    )
    return replace(built, data=dict(provenance["data"]))


def assemble(
    variant: str,
    preset: Preset,
    directory: Path,
    key: str,
    model_hash: str,
    sessions: Sequence[tuple[Mapping[str, np.ndarray], Sequence[str | None], dict[str, Any]]],
) -> FeatureSet:
    """A feature set of sessions given as (columns, skip reasons, facts), oldest first."""
    lengths = [columns["minute"].shape[0] for columns, _, _ in sessions]
    offsets = np.zeros(len(sessions) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(lengths)
    columns = {
        name: np.concatenate([c[name] for c, _, _ in sessions]) if sessions
        else np.empty(0, dtype=dtype)
        for name, dtype in COLUMN_DTYPES.items()
    }
    facts = tuple(f for _, _, f in sessions)
    return FeatureSet(
        variant=variant,
        preset=preset,
        directory=directory,
        table_key=key,
        model_sha256=model_hash,
        dates=tuple(date.fromisoformat(f["date"]) for f in facts),
        facts=facts,
        columns=columns,
        skip_reason=tuple(r for _, reasons, _ in sessions for r in reasons),
        offsets=offsets,
        close_minute=np.array([f["close_minute"] for f in facts], dtype=np.int64),
    )
