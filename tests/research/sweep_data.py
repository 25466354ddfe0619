"""What the sweep tests share: a few simulated sessions' feature tables, a grid, a cluster.

The tables are built once per test process (in a temporary folder removed at exit), because
simulating the market costs far more than any sweep over it.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from gexbot.research.featureset import load_features
from gexbot.research.markets import DataSpec
from gexbot.research.sweeper import SweepPlan

DATA = DataSpec.sim(seed=7, start=date(2026, 10, 1), days=5)
DATA_ARGS = ["--source", "sim", "--seed", "7", "--start", "2026-10-01", "--days", "5"]
GRID = """\
strategy.ofi.window: [5, 8]
strategy.ofi.long_above: [1.5, 2.5]
strategy.hurst.threshold: [0.45, 0.6]
strategy.bands.width_sigma: {linspace: [1.5, 2.5, 3]}
strategy.cooldown_minutes: [5, 5.0]
"""
COMBINATIONS = 2 * 2 * 2 * 3
"""Distinct combinations of GRID: 5 and 5.0 minutes are one setting."""


@functools.cache
def features_dir() -> Path:
    """A folder holding the feature tables of DATA for both OFI windows of GRID."""
    folder = Path(tempfile.mkdtemp(prefix="gexbot-sweep-tests-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for window in (5, 8):
        load_features("es", DATA, folder, overrides={"strategy.ofi.window": window})
    return folder


def plan(tmp_path: Path, db: str = "results.db", **changes: object) -> SweepPlan:
    """A sweep of GRID over DATA into `tmp_path / db`."""
    grid = tmp_path / "grid.yaml"
    if not grid.exists():
        grid.write_text(GRID, encoding="utf-8")
    fields: dict[str, object] = {
        "variant": "es", "data": DATA, "grid": grid, "db": tmp_path / db,
        "features": features_dir(), "workers": 1, "walk_forward": (3, 1),
    }
    fields.update(changes)
    return SweepPlan(**fields)  # type: ignore[arg-type]


def table(db: Path, name: str, order: str) -> pd.DataFrame:
    """A whole table, in a stable order, for comparing two databases."""
    with duckdb.connect(str(db), read_only=True) as con:
        query = f"SELECT * EXCLUDE (sweep) FROM {name} ORDER BY {order}"  # noqa: S608 (ours)
        frame = con.execute(query).df()
    return frame.reset_index(drop=True)


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def dask_cluster(workers: int = 2) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """`dask scheduler` and `dask worker`s as separate processes on the loopback.

    Yields the scheduler's address and the worker processes (without nannies, so killing one
    kills the worker); everything is stopped on the way out.
    """
    from distributed import Client

    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", port,
         "--no-dashboard"], **quiet)]
    worker_processes = [
        subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "dask", "worker", address, "--nthreads", "1", "--no-nanny",
             "--no-dashboard", "--host", "127.0.0.1", "--name", f"test-worker-{i}"], **quiet)
        for i in range(workers)
    ]
    processes += worker_processes
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address, worker_processes
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
