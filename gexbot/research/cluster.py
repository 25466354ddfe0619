"""The sweep on Dask: a cluster to run on, chunks of combinations out, results back as they end.

Dask's own idioms, nothing around them: `Client(address)` for a cluster someone started
(`dask scheduler` and `dask worker`s), else a `LocalCluster` of worker processes on this
machine; each feature set is scattered to the workers once and every chunk names it, so the
arrays are not sent again with each chunk; `client.map` over the chunks and `as_completed` to
take each result as it ends. When a worker dies the scheduler gives its chunks to another
(Dask's `allowed-failures`); a chunk's result is taken once, whoever computed it.

The workers import gexbot: a remote cluster needs the same gexbot (with the research extra)
installed on every worker.

Ctrl-C in a terminal reaches the whole process group, the local cluster's worker processes too;
left to it, each dies with a traceback and the scheduler logs the chunks and the feature arrays
it lost. Stopping them is the sweep's job (it closes the cluster), so the local workers ignore
SIGINT from their first instant (`dask_setup`, Dask's preload hook) and the scheduler's account
of a shutdown the user asked for is not printed.
"""

from __future__ import annotations

import logging
import signal
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from gexbot.errors import ConfigError
from gexbot.research.evaluate import evaluate_vectors
from gexbot.research.featureset import FeatureSet
from gexbot.shell.signals import stop_signals_held

log = logging.getLogger("gexbot.sweep")

QUIET_LOGGERS = {"distributed": logging.WARNING, "distributed.nanny": logging.ERROR,
                 "tornado.application": logging.CRITICAL}
"""Dask's own chatter about starting and stopping workers is not the sweep's news; a worker
that dies still shows, as the scheduler's warning. Errors of callbacks in Dask's event loop
(tornado's) reach the sweep as the failure of its own calls; the one a Ctrl-C sets off in
Dask's `sync` (it cancels a call not yet started) would only add a traceback."""
SHUTDOWN_LOGGERS = ("distributed", "distributed.scheduler", "distributed.client",
                    "distributed.nanny", "distributed.worker", "distributed.core")
"""Silenced once the user has asked the sweep to stop: what they say then is the shutdown."""
CONNECT_TIMEOUT_S = 10.0
"""How long to try an existing scheduler before saying it cannot be reached."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Combinations evaluated together: their rows of the sweep and their kernel vectors."""

    group: int
    rows: np.ndarray
    matrix: np.ndarray


ChunkResult = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(daily PnL, trades per session, counts) of a chunk, rows in the chunk's order."""


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in each local worker process as it starts (restarts too)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def evaluate_chunk(matrix: np.ndarray, features: FeatureSet) -> ChunkResult:
    """What a worker runs: the compiled rules for every row of `matrix` over `features`."""
    result = evaluate_vectors(features, matrix)
    return result.daily_pnl, result.session_trades, result.counts


@contextmanager
def dask_client(
    scheduler: str | None, workers: int, timeout_s: float = CONNECT_TIMEOUT_S
) -> Iterator[Any]:
    """A Client of the cluster at `scheduler`, or of a LocalCluster of `workers` processes.

    An unreachable or malformed address is one ConfigError naming it, after at most
    `timeout_s` seconds.
    """
    dask = _distributed()
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    if scheduler is None:
        cluster = client = None
        try:
            with stop_signals_held():  # a stop asked while the workers start lands below
                cluster = dask.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address="127.0.0.1:0",
                    silence_logs=logging.CRITICAL,  # a chunk's error reaches the sweep
                    preload=[__name__],
                )
                client = dask.Client(cluster)
            yield client
        except KeyboardInterrupt:
            _quiet_shutdown()
            raise
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
        return
    try:
        client = dask.Client(scheduler, timeout=timeout_s)
    except (OSError, TimeoutError, ValueError, TypeError) as problem:
        raise ConfigError(
            f"--scheduler {scheduler}: cannot reach a Dask scheduler there within"
            f" {timeout_s:g} s ({_first_line(problem)})"
        ) from None
    try:
        yield client
    except KeyboardInterrupt:
        _quiet_shutdown()
        raise
    finally:
        client.close()


def _quiet_shutdown() -> None:
    for name in SHUTDOWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def dashboard(client: Any) -> str | None:
    """The cluster's dashboard address, when it serves one."""
    try:
        link = client.dashboard_link
    except (AttributeError, KeyError):
        return None
    return str(link) if link else None


def run_chunks(
    client: Any,
    feature_sets: Sequence[FeatureSet],
    chunks: Sequence[Chunk],
    on_result: Callable[[Chunk, ChunkResult], None],
) -> None:
    """Evaluate `chunks` on the cluster; `on_result` sees each chunk once, as it finishes.

    Feature sets are scattered (to every worker) once, before any chunk is submitted.
    """
    if not chunks:
        return
    wanted = sorted({chunk.group for chunk in chunks})
    scattered = {
        group: client.scatter(feature_sets[group], broadcast=True, hash=False)
        for group in wanted
    }
    futures = []
    by_key: dict[str, Chunk] = {}
    for group in wanted:
        mine = [chunk for chunk in chunks if chunk.group == group]
        with warnings.catch_warnings():
            # the chunks' parameter matrices are the work itself, sent once: not a mistake
            warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
            submitted = client.map(
                evaluate_chunk, [chunk.matrix for chunk in mine], features=scattered[group]
            )
        for future, chunk in zip(submitted, mine, strict=True):
            by_key[future.key] = chunk
        futures.extend(submitted)
    try:
        for future, result in _distributed().as_completed(futures, with_results=True):
            on_result(by_key[future.key], result)
            future.release()
    except KeyboardInterrupt:
        _quiet_shutdown()  # before the cancellations below, which the client would report
        raise
    finally:
        for future in futures:
            future.cancel()


def _distributed() -> Any:
    """Dask's distributed package, imported when a sweep needs it (the daemon never does)."""
    import distributed

    return distributed


def _first_line(problem: BaseException) -> str:
    text = str(problem).strip()
    return text.splitlines()[0] if text else type(problem).__name__
