"""Ctrl-C (and SIGTERM) in the research commands: one line, exit 2, what is done is kept.

An interrupted command must not exit 0: `features build && backtest` would go on from half-built
tables. The end-to-end tests send the signal to the whole process group, as a terminal's Ctrl-C
does, the moment the command says it is at work (read from its output, not timed), and require
the workers of the local cluster and of the table build to stay silent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sweep_data import DATA_ARGS, features_dir

from gexbot import backtest, features
from gexbot import sweep as sweep_cli
from gexbot.errors import Interrupted
from gexbot.research import cluster, featureset, sweeper, tables
from gexbot.research.cluster import dask_client
from gexbot.research.featureset import load_features
from gexbot.research.markets import DataSpec

SIM = ["--variant", "es", "--source", "sim", "--seed", "5", "--start", "2026-10-05"]


def _one_critical_line(err: str, says: str) -> None:
    """`err` holds one line, CRITICAL, saying `says`, besides the table build's progress."""
    progress = (" building ", " built ", " rebuilding ")
    lines = [line for line in err.splitlines() if line.strip()
             if " CRITICAL " in line or not any(word in line for word in progress)]
    assert len(lines) == 1, err
    assert "CRITICAL " + says in lines[0]
    assert "Traceback" not in err


def _interrupt_when(command: list[str], cue: str, sig: signal.Signals, cwd: Path,
                    ) -> tuple[int, str, str]:
    """Run `python -m command` in its own process group; send `sig` to the group as soon as
    `cue` shows on its stderr or stdout; its exit code and output."""
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", *command], cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if cue in line:
            os.killpg(process.pid, sig)
            break
    # a worker left behind would hold the pipe open: communicate's timeout then fails the test
    rest, _ = process.communicate(timeout=300)
    return process.returncode, "".join(seen), rest


def test_the_local_workers_leave_ctrl_c_to_the_sweep() -> None:
    with dask_client(None, 1) as client:
        handlers = client.run(lambda: signal.getsignal(signal.SIGINT))
    assert list(handlers.values()) == [signal.SIG_IGN]


def test_ctrl_c_to_a_sweeps_process_group_is_one_line_and_exit_2(tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("strategy.ofi.long_above: {start: 1.0, stop: 3.0}\n"
                    "strategy.stop_sigma: {start: 1.5, stop: 3.0}\nrandom: 20000\n")
    code, before, after = _interrupt_when(
        ["gexbot.sweep", "--variant", "es", *DATA_ARGS, "--out", str(features_dir()),
         "--grid", str(grid), "--db", str(tmp_path / "r.db"), "--workers", "2",
         "--no-progress"], "Dask dashboard", signal.SIGINT, tmp_path)
    assert code == 2, before + after
    _one_critical_line(after, "interrupted: ")
    assert "new combinations stored in" in after or "new combination stored in" in after
    assert "the same command computes the rest" in after


@pytest.mark.parametrize(("sig", "workers"), [(signal.SIGINT, "2"), (signal.SIGTERM, "1")])
def test_a_stopped_table_build_is_one_line_and_exit_2(
    tmp_path: Path, sig: signal.Signals, workers: str
) -> None:
    code, before, after = _interrupt_when(
        ["gexbot.features", "build", *SIM, "--days", "30", "--out", str(tmp_path / "f"),
         "--workers", workers], "building 30 of 30 session tables", sig, tmp_path)
    assert code == 2, before + after
    _one_critical_line(after, "interrupted: ")
    assert "of 30 session tables built in" in after
    assert "the same command builds the rest" in after
    folder = next((tmp_path / "f").glob("es/*/*"))
    assert not [p for p in folder.iterdir() if not p.name.endswith(".parquet")]


def test_an_interrupted_build_keeps_what_it_built_and_the_rerun_builds_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["build", *SIM, "--days", "4", "--out", str(tmp_path / "f"), "--workers", "1"]
    build: Callable[[Any], int] = featureset._worker_build
    calls = []

    def stopped_at_the_third(job: Any) -> int:
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return build(job)

    monkeypatch.setattr(featureset, "_worker_build", stopped_at_the_third)
    assert features.main(args) == 2
    err = capsys.readouterr().err
    _one_critical_line(err, "interrupted: 2 of 4 session tables built in")
    assert len(list((tmp_path / "f").glob("es/*/*/*"))) == 2
    monkeypatch.setattr(featureset, "_worker_build", build)
    assert features.main(args) == 0
    assert "building 2 of 4 session tables" in capsys.readouterr().err


def test_a_table_cut_short_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cut_short(table: Any, where: Any) -> None:
        if hasattr(where, "write"):  # an open file
            where.write(b"PAR1 half")
        else:
            Path(where).write_bytes(b"PAR1 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(tables.pq, "write_table", cut_short)
    with pytest.raises(Interrupted, match="interrupted: 0 of 1 session table built in"):
        load_features("es", DataSpec.sim(5, date(2026, 10, 5), 1), tmp_path, workers=1)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_sweep_stopped_between_chunks_says_what_it_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def one_chunk_then_ctrl_c(client: Any, sets: Any, chunks: Any, take: Any) -> None:
        cluster.run_chunks(client, sets, chunks[:1], take)
        raise KeyboardInterrupt

    monkeypatch.setattr(sweeper, "run_chunks", one_chunk_then_ctrl_c)
    grid = tmp_path / "grid.yaml"
    grid.write_text("strategy.ofi.long_above: [1.5, 2.0, 2.5]\n")
    args = ["--variant", "es", *DATA_ARGS, "--out", str(features_dir()), "--grid", str(grid),
            "--db", str(tmp_path / "r.db"), "--workers", "1", "--no-progress"]
    assert sweep_cli.main(args) == 2
    captured = capsys.readouterr()
    _one_critical_line(captured.err, "interrupted: 1 new combination stored in")
    assert "best by" not in captured.out


def test_a_backtest_stopped_before_it_stores_says_so_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def ctrl_c(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(backtest, "backtest", ctrl_c)
    code = backtest.main([*SIM, "--days", "1", "--out", str(tmp_path / "f"), "--db",
                          str(tmp_path / "r.db")])
    assert code == 2
    _one_critical_line(capsys.readouterr().err,
                       f"interrupted: nothing stored in {tmp_path / 'r.db'}; the same command")
    assert not (tmp_path / "r.db").exists()
