"""The sweep on a real Dask cluster: separate scheduler and worker processes on the loopback."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sweep_data import COMBINATIONS, DATA_ARGS, dask_cluster, features_dir, free_port, plan, table

from gexbot import sweep as sweep_cli
from gexbot.errors import ConfigError
from gexbot.research.sweeper import run_sweep

TABLES = (("sweep_results", "combo"), ("sweep_daily", "combo, session"),
          ("sweep_walk_forward", "session"), ("sweep_pbo", "split"), ("sweeps", "variant"))


def _same_tables(a: Path, b: Path) -> None:
    for name, order in TABLES:
        left, right = table(a, name, order), table(b, name, order)
        assert left.equals(right), name


def test_a_cluster_of_processes_gives_the_local_table_even_when_a_worker_dies(
    tmp_path: Path,
) -> None:
    local = run_sweep(plan(tmp_path, "local.db"), print, progress=False)
    with dask_cluster(workers=2) as (address, workers):
        remote = run_sweep(plan(tmp_path, "cluster.db", scheduler=address), print,
                           progress=False)
        assert remote.sweep == local.sweep
        assert remote.computed == COMBINATIONS
        _same_tables(tmp_path / "local.db", tmp_path / "cluster.db")

        killed: list[int] = []

        def kill_a_worker(stored: int) -> None:
            if not killed:
                os.kill(workers[0].pid, signal.SIGKILL)
                killed.append(stored)

        again = run_sweep(plan(tmp_path, "killed.db", scheduler=address, chunk_size=1), print,
                          progress=False, on_chunk=kill_a_worker)
        workers[0].wait(timeout=30)
        assert workers[0].returncode == -signal.SIGKILL
        assert killed
        assert killed[0] < COMBINATIONS
        assert again.computed == COMBINATIONS
        _same_tables(tmp_path / "local.db", tmp_path / "killed.db")


def test_an_unreachable_scheduler_is_one_line_naming_it_within_the_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    features_dir()
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ConfigError, match=f"--scheduler {address}: cannot reach"):
        run_sweep(plan(tmp_path, scheduler=address, connect_timeout_s=1.0), print,
                  progress=False)
    assert time.monotonic() - started < 60
    assert not (tmp_path / "results.db").exists()
    grid = tmp_path / "grid.yaml"
    for bad in (address, "tcp://no-such-host.invalid:8786", "not a scheduler"):
        code = sweep_cli.main(["--variant", "es", *DATA_ARGS, "--out", str(tmp_path / "f"),
                               "--grid", str(grid), "--db", str(tmp_path / "other.db"),
                               "--scheduler", bad, "--connect-timeout", "1", "--no-progress"])
        captured = capsys.readouterr()
        critical = [line for line in captured.err.splitlines() if "CRITICAL" in line]
        assert code == 2
        assert len(critical) == 1
        assert f"--scheduler {bad}: cannot reach a Dask scheduler there within 1 s" in critical[0]
        assert "Traceback" not in captured.out + captured.err
        # refused before the feature tables are built or the results database is created
        assert not (tmp_path / "f").exists()
        assert not (tmp_path / "other.db").exists()
