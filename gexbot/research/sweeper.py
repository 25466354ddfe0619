"""A sweep, start to end: grid to feature sets to kernel vectors to the cluster to the database.

Each combination is keyed by a hash of what decides its result: the content of the feature
arrays the kernel reads (so the data, the feature parameters, the model and the gexbot version
are all in it) and its kernel parameter vector. Two spellings of one setting (2 and 2.0) are
one combination; a rerun of the same command finds every finished combination in the database
and computes only the others; PBO, the deflated Sharpe ratio and the walk-forward are then
measured over all of them, stored and fresh alike.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from gexbot import __version__
from gexbot.errors import ConfigError, Interrupted
from gexbot.research import metrics
from gexbot.research.cluster import (
    CONNECT_TIMEOUT_S,
    Chunk,
    ChunkResult,
    dashboard,
    dask_client,
    run_chunks,
)
from gexbot.research.evaluate import kernel_inputs
from gexbot.research.featureset import FeatureSet, load_features
from gexbot.research.grid import Grid, load_grid
from gexbot.research.markets import DataSpec
from gexbot.research.measure import SweepFigures, chunk_rows, sweep_figures
from gexbot.research.params import apply_overrides, kernel_vector, split_overrides
from gexbot.research.resultsdb import check_results_database
from gexbot.research.sweepdb import SweepStore
from gexbot.research.walkforward import walk_forward
from gexbot.settings import Preset, load_variant
from gexbot.shell.dbfile import write_failure
from gexbot.shell.notify import signed_usd, usd
from gexbot.wording import counted

MAX_CHUNK = 500
RESUMES = ": the same command then computes only the combinations not yet stored"
"""Combinations per chunk at most: small enough that a lost worker costs little."""


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """Everything a sweep is asked to do (the command line, as a value)."""

    variant: str
    data: DataSpec
    grid: Path
    db: Path
    features: Path
    preset: Preset | None = None
    """The base preset (--preset, --set); None: the variant's shipped one."""
    model: Path | None = None
    scheduler: str | None = None
    workers: int = 2
    walk_forward: tuple[int, int] | None = None
    metric: str = "sharpe"
    yes: bool = False
    chunk_size: int | None = None
    connect_timeout_s: float = CONNECT_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    """A finished sweep: its key, its distinct combinations (in grid order), what was computed
    by this run, and its figures."""

    sweep: str
    combos: tuple[str, ...]
    computed: int
    figures: SweepFigures


@dataclass(frozen=True, slots=True)
class _Prepared:
    grid: Grid
    feature_sets: tuple[FeatureSet, ...]
    rows: tuple[int, ...]
    """The grid row of each distinct combination, in grid order."""
    combos: tuple[str, ...]
    groups: tuple[int, ...]
    vectors: np.ndarray


def run_sweep(
    plan: SweepPlan,
    echo: Callable[[str], None] = print,
    *,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> SweepOutcome:
    """Run `plan`; `on_chunk(n)` hears after each stored chunk that n new ones are stored."""
    if plan.metric not in metrics.METRICS:
        raise ConfigError(f"--metric {plan.metric}: expected one of {', '.join(metrics.METRICS)}")
    if plan.scheduler is None and plan.workers < 1:
        raise ConfigError(f"--workers must be at least 1 (got {plan.workers})")
    check_results_database(plan.db)
    if plan.scheduler is not None:
        # reached once before the work (and the results file) begins, not after minutes
        with dask_client(plan.scheduler, plan.workers, plan.connect_timeout_s):
            pass
    prepared = _prepare(plan)
    dates = prepared.feature_sets[0].dates
    if plan.walk_forward is not None and len(dates) <= plan.walk_forward[0]:
        train, test = plan.walk_forward
        raise ConfigError(
            f"--walk-forward {train}:{test}: the data has {counted(len(dates), 'session')};"
            f" the first training window alone needs {train} and at least one more is needed"
            " to test"
        )
    sweep = hashlib.sha256("\n".join(sorted(prepared.combos)).encode()).hexdigest()[:16]
    store = SweepStore(plan.db)
    try:
        store.begin_sweep(sweep, _about(plan, prepared, dates), _sql_types(prepared.grid))
        stored = store.stored(sweep)
        todo = [i for i, combo in enumerate(prepared.combos) if combo not in stored]
        note = prepared.grid.sampling_note()
        if note is not None:
            echo(note)
        echo(
            f"sweep {sweep}: {counted(len(prepared.combos), 'combination')} over"
            f" {counted(len(dates), 'session')} ({dates[0]} to {dates[-1]}),"
            f" {counted(len(prepared.feature_sets), 'feature table')};"
            f" {len(prepared.combos) - len(todo):,} already in {plan.db}, {len(todo):,} to compute"
        )
        if todo:
            _compute(plan, prepared, sweep, todo, store, echo, progress, on_chunk)
        figures = _measure(plan, prepared, sweep, dates, store)
    except (duckdb.Error, OSError) as problem:
        failure = write_failure(plan.db, problem, RESUMES)
        if failure is None:
            raise
        raise failure from None
    finally:
        store.close()
    for line in describe(figures, prepared, plan):
        echo(line)
    return SweepOutcome(sweep, prepared.combos, len(todo), figures)


def _prepare(plan: SweepPlan) -> _Prepared:
    """Load the grid, the feature set of each table setting, and every combination's vector."""
    preset = load_variant(plan.variant) if plan.preset is None else plan.preset
    grid = load_grid(plan.grid, preset, allow_large=plan.yes)
    table_keys = tuple(split_overrides(dict.fromkeys(grid.keys))[0])
    by_table: dict[tuple[Any, ...], int] = {}
    feature_sets: list[FeatureSet] = []
    identities: list[bytes] = []
    seen: dict[str, int] = {}
    rows, groups, vectors = [], [], []
    for row, override in enumerate(grid.overrides()):
        table = tuple(override[k] for k in table_keys)
        if table not in by_table:
            features = load_features(
                plan.variant, plan.data, plan.features, preset=preset,
                overrides=dict(zip(table_keys, table, strict=True)), model_path=plan.model,
            )
            if feature_sets and features.dates != feature_sets[0].dates:
                raise ConfigError(f"{grid.source}: feature tables of different sessions")
            by_table[table] = len(feature_sets)
            feature_sets.append(features)
            identities.append(_identity(features))
        group = by_table[table]
        rules = {k: v for k, v in override.items() if k not in table_keys}
        where = f"{grid.source}: " + ", ".join(f"{k}={v}" for k, v in override.items()) + ":"
        vector = kernel_vector(apply_overrides(feature_sets[group].preset, rules, where).strategy)
        combo = hashlib.sha256(identities[group] + vector.tobytes()).hexdigest()[:32]
        if combo in seen:
            continue
        seen[combo] = row
        rows.append(row)
        groups.append(group)
        vectors.append(vector)
    return _Prepared(grid, tuple(feature_sets), tuple(rows), tuple(seen), tuple(groups),
                     np.vstack(vectors))


def _identity(features: FeatureSet) -> bytes:
    """A digest of everything the kernel reads from a feature set, and the code reading it."""
    digest = hashlib.sha256(f"gexbot {__version__}\n".encode())
    for day in features.dates:
        digest.update(day.isoformat().encode())
    for array in kernel_inputs(features):
        digest.update(str(array.dtype).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.digest()


def _compute(
    plan: SweepPlan,
    prepared: _Prepared,
    sweep: str,
    todo: Sequence[int],
    store: SweepStore,
    echo: Callable[[str], None],
    progress: bool,
    on_chunk: Callable[[int], None] | None,
) -> None:
    """Evaluate the combinations `todo` on the cluster, storing each chunk as it ends."""
    from distributed import KilledWorker
    from tqdm import tqdm

    grid = prepared.grid
    done = 0

    def take(chunk: Chunk, result: ChunkResult) -> None:
        nonlocal done
        daily, trades, counts = result
        picked = [prepared.rows[i] for i in chunk.rows]
        frame = chunk_rows(
            [prepared.combos[i] for i in chunk.rows],
            prepared.feature_sets[chunk.group].table_key,
            {k: [grid.combinations[r][j] for r in picked] for j, k in enumerate(grid.keys)},
            daily, trades, counts,
        )
        done += store.add_results(sweep, frame, daily, trades,
                                  prepared.feature_sets[chunk.group].dates)
        bar.update(len(chunk.rows))
        if on_chunk is not None:
            on_chunk(done)

    try:
        with dask_client(plan.scheduler, plan.workers, plan.connect_timeout_s) as client:
            link = dashboard(client)
            echo(f"Dask dashboard: {link}" if link else "Dask: no dashboard (install bokeh)")
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            size = plan.chunk_size or _chunk_size(len(todo), workers)
            bar = tqdm(total=len(todo), unit=" combinations", disable=not progress,
                       smoothing=0.1)
            try:
                run_chunks(client, prepared.feature_sets, _chunks(prepared, todo, size), take)
            finally:
                bar.close()
    except KilledWorker as problem:
        raise ConfigError(
            f"workers died again and again running one chunk ({problem});"
            f" {counted(done, 'new combination')} stored in {plan.db}, the same command"
            " computes the rest"
        ) from None
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: {counted(done, 'new combination')} stored in {plan.db}; the same"
            " command computes the rest"
        ) from None


def _chunk_size(count: int, workers: int) -> int:
    """About four chunks per worker, at most MAX_CHUNK combinations each."""
    return max(1, min(MAX_CHUNK, math.ceil(count / (4 * workers))))


def _chunks(prepared: _Prepared, todo: Sequence[int], size: int) -> list[Chunk]:
    chunks = []
    for group in range(len(prepared.feature_sets)):
        mine = np.array([i for i in todo if prepared.groups[i] == group], dtype=np.int64)
        for start in range(0, len(mine), size):
            rows = mine[start : start + size]
            chunks.append(Chunk(group=group, rows=rows, matrix=prepared.vectors[rows]))
    return chunks


def _measure(
    plan: SweepPlan, prepared: _Prepared, sweep: str, dates: Sequence[date], store: SweepStore
) -> SweepFigures:
    """PBO, DSR and the walk-forward over every combination of the sweep; stored."""
    daily, trades = store.daily(sweep, prepared.combos, len(dates))
    metric = metrics.METRICS[plan.metric]
    walk = None
    if plan.walk_forward is not None:
        walk = walk_forward(daily, trades, *plan.walk_forward, metric)
    figures = sweep_figures(prepared.combos, daily, trades, dates, plan.metric, metric, walk)
    store.set_out_of_sample(sweep, figures.out_of_sample)
    store.set_walk_forward(sweep, figures.walk_forward_rows)
    store.set_pbo(sweep, figures.pbo_logits)
    store.set_summary(sweep, figures.summary)
    return figures


def _about(plan: SweepPlan, prepared: _Prepared, dates: Sequence[date]) -> dict[str, Any]:
    return {
        "variant": plan.variant,
        "data": plan.data.describe(),
        "grid": str(plan.grid),
        "combinations": len(prepared.combos),
        "sessions": len(dates),
        "first_session": dates[0],
        "last_session": dates[-1],
        "gexbot_version": __version__,
    }


def _sql_types(grid: Grid) -> dict[str, str]:
    """DOUBLE for numeric parameters, VARCHAR for words (a bucket name)."""
    return {
        key: "VARCHAR" if any(isinstance(c[j], str) for c in grid.combinations) else "DOUBLE"
        for j, key in enumerate(grid.keys)
    }


def describe(figures: SweepFigures, prepared: _Prepared, plan: SweepPlan) -> list[str]:
    """The lines a finished sweep prints: the best, the overfitting figures, the walk-forward."""
    s = figures.summary
    grid = prepared.grid
    values = grid.combinations[prepared.rows[figures.best]]
    setting = " ".join(f"{k}={v}" for k, v in zip(grid.keys, values, strict=True))
    lines = [
        f"best by {plan.metric}: {setting}",
        f"  PnL {signed_usd(s['best_pnl'])} | Sharpe {s['best_sharpe']:.2f} (annualised)",
    ]
    if figures.pbo_note is None:
        lines.append(
            f"overfitting: PBO {s['pbo']:.2f} ({counted(s['pbo_blocks'], 'block')},"
            f" {counted(s['pbo_splits'], 'split')}; the in-sample best lost money out of"
            f" sample in {s['pbo_oos_loss']:.0%} of them)"
        )
    else:
        lines.append(f"overfitting: no PBO ({figures.pbo_note})")
    lines.append(
        f"deflated Sharpe ratio of the best: {_maybe(s['dsr'])} (Sharpe"
        f" {s['dsr_sharpe_per_session']:.3f} a session against"
        f" {s['dsr_benchmark_per_session']:.3f} expected from the best of"
        f" {counted(len(prepared.combos), 'luck-only trial')})"
    )
    if s.get("wf_folds"):
        lines += [
            f"walk-forward {s['wf_train_sessions']}:{s['wf_test_sessions']} by {plan.metric},"
            f" {counted(s['wf_folds'], 'fold')}:",
            f"  out of sample (stitched): PnL {signed_usd(s['wf_oos_pnl'])} | Sharpe"
            f" {s['wf_oos_sharpe']:.2f} | {counted(s['wf_oos_trades'], 'trade')} | max drawdown"
            f" {usd(s['wf_oos_max_drawdown'])}",
            f"  in sample (best with hindsight, same sessions): PnL {signed_usd(s['wf_is_pnl'])}"
            f" | Sharpe {s['wf_is_sharpe']:.2f} | {counted(s['wf_is_trades'], 'trade')} | max"
            f" drawdown {usd(s['wf_is_max_drawdown'])}",
        ]
    return lines


def _maybe(value: float) -> str:
    return "n/a (the best never traded)" if value != value else f"{value:.2f}"
