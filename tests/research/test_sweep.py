"""The sweep on a local cluster: its table, resuming, and the command's refusals."""

from __future__ import annotations

import re
import shlex
from datetime import date
from pathlib import Path

import duckdb
import pytest
from sweep_data import COMBINATIONS, DATA, DATA_ARGS, features_dir, plan, table

from gexbot import sweep as sweep_cli
from gexbot.errors import Interrupted, StorageError
from gexbot.research import metrics
from gexbot.research.cli import data_spec
from gexbot.research.evaluate import evaluate_many
from gexbot.research.featureset import load_features
from gexbot.research.grid import load_grid
from gexbot.research.sweepdb import SweepStore
from gexbot.research.sweeper import run_sweep
from gexbot.research.walkforward import parse_windows
from gexbot.settings import load_variant


def _quiet(line: str) -> None:
    print(line)


def test_a_sweep_stores_every_combination_with_its_statistics(tmp_path: Path) -> None:
    outcome = run_sweep(plan(tmp_path), _quiet, progress=False)
    assert len(outcome.combos) == COMBINATIONS
    assert outcome.computed == COMBINATIONS
    results = table(tmp_path / "results.db", "sweep_results", "combo")
    assert len(results) == COMBINATIONS
    assert results["combo"].is_unique
    assert sorted(set(results["strategy.ofi.window"])) == [5.0, 8.0]
    assert set(results["strategy.cooldown_minutes"]) == {5.0}
    # every row is what the kernel gives for that combination on its own feature table
    for _, row in results.sample(4, random_state=1).iterrows():
        features = load_features("es", DATA, features_dir(),
                                 overrides={"strategy.ofi.window": int(row["strategy.ofi.window"])})
        alone = evaluate_many(features, None, [{
            "strategy.ofi.long_above": row["strategy.ofi.long_above"],
            "strategy.hurst.threshold": row["strategy.hurst.threshold"],
            "strategy.bands.width_sigma": row["strategy.bands.width_sigma"],
        }])
        assert row["is_trades"] == alone.trades[0]
        assert row["is_pnl"] == pytest.approx(alone.daily_pnl.sum())
        assert row["is_sharpe"] == pytest.approx(metrics.sharpe(alone.daily_pnl)[0])
        assert row["oos_pnl"] == pytest.approx(alone.daily_pnl[0, 3:].sum())
        assert row["is_sessions"] == 5
        assert row["oos_sessions"] == 2
    assert results["is_trades"].sum() > 0
    assert results["wf_picked"].sum() == 2
    daily = table(tmp_path / "results.db", "sweep_daily", "combo, session")
    assert len(daily) == COMBINATIONS * 5
    walk = table(tmp_path / "results.db", "sweep_walk_forward", "session")
    assert len(walk) == 2
    assert walk["cum_pnl"].iloc[-1] == pytest.approx(walk["pnl"].sum())
    with duckdb.connect(str(tmp_path / "results.db"), read_only=True) as con:
        sweep = con.execute("SELECT * FROM sweeps").df().iloc[0]
    assert sweep["combinations"] == COMBINATIONS
    assert 0.0 <= sweep["pbo"] <= 1.0
    assert sweep["pbo_blocks"] == 2
    assert 0.0 <= sweep["dsr"] <= 1.0
    assert sweep["wf_folds"] == 2
    logits = table(tmp_path / "results.db", "sweep_pbo", "split")
    assert logits["split"].tolist() == list(range(sweep["pbo_splits"]))
    assert (logits["logit"] <= 0).mean() == pytest.approx(sweep["pbo"])
    best = results.set_index("combo").loc[sweep["best_combo"]]
    assert best["is_sharpe"] == results["is_sharpe"].max()
    assert sweep["wf_oos_pnl"] == pytest.approx(walk["pnl"].sum())


def test_an_interrupted_sweep_keeps_its_chunks_and_the_rerun_computes_the_rest(
    tmp_path: Path,
) -> None:
    whole = run_sweep(plan(tmp_path, "whole.db"), _quiet, progress=False)

    def interrupt(stored: int) -> None:
        if stored >= 4:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match=r"interrupted: .* new combinations stored in"):
        run_sweep(plan(tmp_path, "parts.db", chunk_size=2), _quiet, progress=False,
                  on_chunk=interrupt)
    with duckdb.connect(str(tmp_path / "parts.db"), read_only=True) as con:
        kept = con.execute("SELECT count(*) FROM sweep_results").fetchone()[0]
        days = con.execute("SELECT count(*) FROM sweep_daily").fetchone()[0]
    assert 4 <= kept < COMBINATIONS
    assert days == kept * 5
    again = run_sweep(plan(tmp_path, "parts.db", chunk_size=2), _quiet, progress=False)
    assert again.computed == COMBINATIONS - kept
    assert again.sweep == whole.sweep
    for name, order in (("sweep_results", "combo"), ("sweep_daily", "combo, session"),
                        ("sweep_walk_forward", "session"), ("sweep_pbo", "split"),
                        ("sweeps", "variant")):
        a, b = table(tmp_path / "whole.db", name, order), table(tmp_path / "parts.db", name, order)
        assert a.equals(b), name
    last = run_sweep(plan(tmp_path, "parts.db"), _quiet, progress=False)
    assert last.computed == 0


def test_a_sweep_without_walk_forward_clears_the_out_of_sample_of_an_earlier_run(
    tmp_path: Path,
) -> None:
    run_sweep(plan(tmp_path), _quiet, progress=False)
    again = run_sweep(plan(tmp_path, walk_forward=None), _quiet, progress=False)
    assert again.computed == 0
    results = table(tmp_path / "results.db", "sweep_results", "combo")
    out_of_sample = [c for c in results.columns if c.startswith("oos_")] + ["wf_picked"]
    assert len(out_of_sample) == 7
    assert results[out_of_sample].isna().all().all()
    assert table(tmp_path / "results.db", "sweep_walk_forward", "session").empty
    with duckdb.connect(str(tmp_path / "results.db"), read_only=True) as con:
        sweep = con.execute("SELECT pbo, dsr, wf_folds FROM sweeps").fetchone()
    assert sweep is not None
    assert 0.0 <= sweep[0] <= 1.0
    assert sweep[2] is None


def test_the_command_runs_a_sweep_and_prints_the_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("strategy.ofi.long_above: [1.5, 2.0]\nstrategy.stop_sigma: [2.0, 3.0]\n"
                    "random: 40\n")
    code = sweep_cli.main(["--variant", "es", *DATA_ARGS, "--out", str(features_dir()),
                           "--grid", str(grid), "--db", str(tmp_path / "r.db"), "--workers", "1",
                           "--walk-forward", "4:1", "--metric", "pnl", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{grid}: random: 40 draws gave 4 distinct combinations; the grid holds 4 in all" in out
    assert "4 combinations over 5 sessions (2026-10-01 to 2026-10-07), 1 feature table;" in out
    assert "walk-forward 4:1 by pnl, 1 fold:" in out
    assert "Dask dashboard: http://127.0.0.1:" in out
    assert "best by pnl: strategy.ofi.long_above=" in out
    assert "overfitting: PBO" in out
    assert "deflated Sharpe ratio of the best" in out
    assert "out of sample (stitched)" in out
    assert "in sample (best with hindsight" in out


@pytest.mark.parametrize(
    ("args", "grid", "message"),
    [
        ([], "strategy.ofi.long_abve: [1]", "grid.yaml: strategy.ofi.long_abve: unknown key"),
        ([], "strategy.ofi.long_above: [-1]", "strategy.ofi.long_above: Input should be greater"),
        ([], "{}", "the grid names no preset key"),
        ([], "strategy.hurst.min_lag: [30]", "max_lag must be greater than min_lag"),
        (["--walk-forward", "5:1"], "strategy.ofi.long_above: [1]", "the data has 5 sessions"),
        (["--walk-forward", "5"], "strategy.ofi.long_above: [1]", "expected TRAIN:TEST"),
        (["--workers", "0"], "strategy.ofi.long_above: [1]", "--workers must be at least 1"),
        (["--out", "{tmp}/grid.yaml"], "strategy.ofi.long_above: [1]", "is not a folder"),
        (["--workers", "100000"], "strategy.ofi.long_above: [1]", "--workers 100000: at most"),
        (["--connect-timeout", "nan"], "strategy.ofi.long_above: [1]",
         "--connect-timeout nan: expected seconds above 0"),
        (["--connect-timeout", "-5"], "strategy.ofi.long_above: [1]",
         "--connect-timeout -5: expected seconds above 0"),
        (["--db", "{tmp}"], "strategy.ofi.long_above: [1]", "is a folder; name a DuckDB file"),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], grid: str, message: str
) -> None:
    (tmp_path / "grid.yaml").write_text(grid + "\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code = sweep_cli.main(["--variant", "es", *DATA_ARGS, "--out", str(features_dir()),
                           "--grid", str(tmp_path / "grid.yaml"), "--no-progress",
                           *(["--db", str(tmp_path / "r.db")] if "--db" not in args else []),
                           *args])
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1 or "usage:" in captured.err, lines
    assert message in lines[-1]
    assert "Traceback" not in captured.out + captured.err


def test_a_full_disk_mid_sweep_is_one_line_and_the_rerun_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_: object) -> int:
        raise duckdb.IOException("IO Error: Could not write to file: No space left on device")

    monkeypatch.setattr(SweepStore, "add_results", full)
    with pytest.raises(StorageError) as refused:
        run_sweep(plan(tmp_path), _quiet, progress=False)
    assert str(refused.value) == (
        f"{tmp_path / 'results.db'}: no space left on device; free some space and start again:"
        " the same command then computes only the combinations not yet stored"
    )
    monkeypatch.undo()
    assert run_sweep(plan(tmp_path), _quiet, progress=False).computed == COMBINATIONS


def test_no_data_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = sweep_cli.main(["--variant", "es", "--grid", str(tmp_path / "g.yaml")])
    assert code == 2
    assert "name the data: --source sim" in capsys.readouterr().err


def test_unknown_metric_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit) as done:
        sweep_cli.main(["--variant", "es", "--grid", "g.yaml", "--metric", "luck"])
    assert done.value.code == 2


def test_the_readme_example_is_a_valid_sweep_command_and_grid(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("### Sweeps and walk-forward", 1)[1]
    commands = re.findall(r"```sh\n(.+?)\n```", section, flags=re.S)[0].splitlines()
    make_grid, command = commands
    lines = re.findall(r"'([^']+)'", make_grid.split("printf '%s\\n' ", 1)[1].split(" > ")[0])
    (tmp_path / "grid.yaml").write_text("\n".join(lines) + "\n")
    grid = load_grid(tmp_path / "grid.yaml", load_variant("es"))
    assert len(grid) == 4 * 6 * 5
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "gexbot.sweep"]
    args = sweep_cli.build_parser().parse_args(words[3:])
    spec = data_spec(args)
    assert (spec.source, spec.seed, spec.start, spec.days) == ("sim", 7, date(2026, 10, 1), 40)
    assert parse_windows(args.walk_forward) == (20, 5)
    assert f"{len(grid)} combinations over 40 sessions" in section
