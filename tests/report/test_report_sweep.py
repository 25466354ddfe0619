"""`python -m gexbot.report --sweep`: the sweep's page, its numbers against independent
computations, and one line (exit 2) or a page that says so for every bad results file."""

from __future__ import annotations

import math
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from report_cli_runs import assert_refused, bytes_file, run
from report_rows import HOSTILE, at, session, trade, write_db
from scipy import stats
from sweep_rows import COMBINATIONS, copy_of, execute, real_sweeps, written_sweep

from gexbot.errors import ConfigError
from gexbot.report import sweepstats as calc
from gexbot.report.source import READ_RETRIES
from gexbot.report.sweepsource import read_sweep

GRID_KEYS = ("strategy.ofi.long_above", "strategy.hurst.threshold",
             "strategy.bands.width_sigma")
ALL_CHARTS = ("sweep-grid", "sweep-is", "sweep-oos", "sweep-scatter", "sweep-walk",
              "sweep-pbo", "sweep-dsr")


def page_of(capsys: pytest.CaptureFixture[str], db: Path, out: Path, *extra: str) -> str:
    code, lines = run(capsys, "--sweep", str(db), "--out", str(out), *extra)
    assert code == 0, lines
    return out.read_text("utf-8")


def charts(page: str) -> set[str]:
    return {name for name in ALL_CHARTS if f'id="{name}"' in page}


class _Fetches(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [f"{tag} {value}" for name, value in attrs
                       if name in ("src", "href") and not str(value).startswith("data:")]


def fetched(page: str) -> list[str]:
    """What the page's tags would load from elsewhere (scripts are read as text, not tags)."""
    parser = _Fetches()
    parser.feed(page)
    return parser.found


def grid_key() -> str:
    return real_sweeps()[1].sweep


def noise(combinations: int, sessions: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(0.5, 10.0, (combinations, sessions)), 2)


# --- the page of a real sweep -------------------------------------------------------------


def test_the_page_of_a_real_sweep_holds_every_chart_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, grid, _ = real_sweeps()
    page = page_of(capsys, db, tmp_path / "sweep.html", "--sweep-id", grid.sweep[:6])
    assert charts(page) == set(ALL_CHARTS)
    assert fetched(page) == []  # everything inside: it opens offline
    assert f"gexbot sweep {grid.sweep}: ES" in page
    assert f"{COMBINATIONS} of {COMBINATIONS}" in page
    # the default axes: the two parameters with the most values, the third named as aggregated
    assert ("of those with the cell&#x27;s strategy.ofi.long_above and"
            " strategy.hurst.threshold, the one with the highest sharpe whatever its"
            " strategy.bands.width_sigma.") in page
    assert "In sample: the first 4 sessions" in page
    assert "Only" not in page.split("<section>")[1]  # no banner: the sweep is complete


def test_the_latest_sweep_is_shown_unless_asked_and_a_single_parameter_is_a_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, _, one = real_sweeps()
    page = page_of(capsys, db, tmp_path / "one.html")
    assert f"gexbot sweep {one.sweep}" in page
    assert "Only strategy.stop_sigma varies in this sweep: a line instead of a map." in page
    assert charts(page) == {"sweep-grid", "sweep-pbo", "sweep-dsr"}
    assert "this sweep ran without --walk-forward" in page


def test_the_axes_and_metric_chosen_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, grid, _ = real_sweeps()
    page = page_of(capsys, db, tmp_path / "xy.html", "--sweep-id", grid.sweep, "--x",
                   "strategy.bands.width_sigma", "--y", "strategy.ofi.long_above",
                   "--metric", "max_drawdown")
    assert ("cell&#x27;s strategy.bands.width_sigma and strategy.ofi.long_above, the one with"
            " the lowest max_drawdown whatever its strategy.hurst.threshold.") in page
    sweep = read_sweep(db, grid.sweep)
    axes = calc.choose_axes(sweep, None, "strategy.bands.width_sigma")
    assert axes == calc.Axes("strategy.ofi.long_above", "strategy.bands.width_sigma")


def test_with_the_daemons_database_the_page_holds_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = date(2026, 10, 5)
    run_db = write_db(tmp_path / "run.db", session("es", day),
                      [trade("es", at(day, 3), at(day, 9))])
    page = page_of(capsys, real_sweeps()[0], tmp_path / "both.html", "--db", str(run_db))
    assert 'id="equity-0"' in page
    assert 'id="sweep-grid"' in page
    assert "gexbot report: ES" in page


# --- the numbers, against independent computations ----------------------------------------


def test_the_daily_pnl_and_logits_read_are_the_tables_rows(tmp_path: Path) -> None:
    db, grid, _ = real_sweeps()
    sweep = read_sweep(db, grid.sweep)
    with duckdb.connect(str(db), read_only=True) as con:
        frame = con.execute("SELECT combo, session, pnl FROM sweep_daily WHERE sweep = ?",
                            [grid.sweep]).df()
        logits = con.execute("SELECT logit FROM sweep_pbo WHERE sweep = ? ORDER BY split",
                             [grid.sweep]).fetchnumpy()["logit"]
    pivot = frame.pivot(index="combo", columns="session", values="pnl")
    expected = pivot.loc[sweep.results["combo"]].to_numpy()
    assert np.array_equal(sweep.daily, expected)
    assert sweep.keys == GRID_KEYS
    assert sweep.logits is not None
    assert np.array_equal(sweep.logits, logits)
    ordered = sweep.results[list(GRID_KEYS)].to_records(index=False).tolist()
    assert ordered == sorted(ordered)  # grid order


def test_in_and_out_of_sample_match_the_sweeps_own_columns_and_the_textbook_formula() -> None:
    db, grid, _ = real_sweeps()
    sweep = read_sweep(db, grid.sweep)
    parts = calc.split(sweep, "sharpe")
    assert parts is not None
    assert (parts.train, parts.sessions) == (4, 8)
    # the sessions after the first training window are what the sweep calls out of sample
    np.testing.assert_allclose(parts.outside, sweep.results["oos_sharpe"], rtol=1e-9,
                               atol=1e-12)
    first = sweep.daily[:, :4]
    sd = first.std(axis=1, ddof=1)
    textbook = np.where(sd > 0, first.mean(axis=1) / np.where(sd > 0, sd, 1) * math.sqrt(252), 0)
    np.testing.assert_allclose(parts.inside, textbook, rtol=1e-9, atol=1e-12)
    pnl = calc.split(sweep, "pnl")
    assert pnl is not None
    np.testing.assert_allclose(pnl.outside, sweep.results["oos_pnl"], rtol=1e-9, atol=1e-9)


def test_each_cell_is_the_best_combination_sharing_its_two_values(tmp_path: Path) -> None:
    values = {"a": [1.0, 2.0, 3.0], "b": ["lo", "hi"], "c": [0.1, 0.2, 0.3, 0.4]}
    daily = noise(24, 30)
    daily[5] = daily[4]  # a tie within a cell: the grid's earlier row is shown
    db = written_sweep(tmp_path / "r.db", values, daily, walk=(10, 5))
    sweep = read_sweep(db)
    score = calc.stored(sweep.results, "is_sharpe")
    cells = calc.cells(sweep.results, calc.Axes("a", "b"), score, "sharpe")
    frame = sweep.results.assign(score=score, row=np.arange(len(score)))
    best = (frame.sort_values(["score", "row"], ascending=[False, True])
            .groupby(["b", "a"]).head(1).set_index(["b", "a"]))
    assert cells.y.names == ["hi", "lo"]
    assert cells.x.names == ["1", "2", "3"]
    for i, b in enumerate(cells.y.names):
        for j, a in enumerate((1.0, 2.0, 3.0)):
            assert cells.row[i, j] == best.loc[(b, a), "row"]
            assert cells.count[i, j] == 4
    worst = calc.cells(sweep.results, calc.Axes("a", "b"), score * 0 + 1, "max_drawdown")
    assert worst.row[0, 0] == frame[(frame.b == "hi") & (frame.a == 1.0)]["row"].min()
    parts = calc.split(sweep, "sharpe")
    assert parts is not None
    chosen = calc.cells(sweep.results, calc.Axes("a", "b"), parts.inside, "sharpe")
    shown = chosen.values(parts.outside)  # out of sample, as chosen in sample
    for i in range(2):
        for j in range(3):
            assert shown[i, j] == parts.outside[chosen.row[i, j]]
            same = (chosen.y.codes == i) & (chosen.x.codes == j)
            assert parts.inside[chosen.row[i, j]] == parts.inside[same].max()


def test_a_random_grid_is_binned_and_every_value_lands_in_its_bin() -> None:
    values = pd.Series(np.random.default_rng(1).uniform(0.2, 0.9, 500))
    labels = calc.axis_labels(values, limit=30)
    assert len(labels.names) == 30
    edges = np.linspace(values.min(), values.max(), 31)
    assert labels.positions is not None
    for value, code in zip(values, labels.codes, strict=True):
        assert edges[code] - 1e-12 <= value <= edges[code + 1] + 1e-12
    with_gap = calc.axis_labels(pd.Series([1.0, np.nan, 2.0]))
    assert with_gap.names == ["1", "2", "n/a"]
    assert with_gap.codes.tolist() == [0, 2, 1]


def test_the_rank_correlation_is_spearmans() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=40), rng.normal(size=40)
    b[:10] = a[:10] * 3
    a[3], b[7] = np.nan, np.inf
    known = np.isfinite(a) & np.isfinite(b)
    expected = stats.spearmanr(a[known], b[known]).statistic
    assert calc.rank_correlation(a, b) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(calc.rank_correlation(np.ones(5), np.arange(5.0)))


def test_pbo_and_the_deflated_sharpe_ratio_shown_are_the_stored_and_the_textbook_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daily = noise(12, 40, seed=11)
    daily[7] += 2.0  # one combination with an edge: the best
    db = written_sweep(tmp_path / "r.db", {"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0, 4.0]},
                       daily, walk=(20, 10))
    sweep = read_sweep(db)
    fit = calc.overfitting(sweep)
    assert fit.pbo is not None
    assert sweep.logits is not None
    assert fit.pbo.pbo == pytest.approx(float(np.mean(sweep.logits <= 0)))
    assert fit.pbo.pbo == pytest.approx(sweep.about["pbo"])
    assert fit.best == 7
    # Bailey and López de Prado (2014), written out with scipy
    sharpes = daily.mean(axis=1) / daily.std(axis=1, ddof=1)
    gamma = 0.5772156649015329
    n = len(sharpes)
    sr0 = math.sqrt(np.var(sharpes, ddof=1)) * (
        (1 - gamma) * stats.norm.ppf(1 - 1 / n) + gamma * stats.norm.ppf(1 - 1 / (n * math.e)))
    best = daily[7]
    skew, kurt = stats.skew(best), stats.kurtosis(best, fisher=False)
    sr = sharpes[7]
    dsr = stats.norm.cdf((sr - sr0) * math.sqrt(len(best) - 1)
                         / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))
    assert fit.dsr.benchmark == pytest.approx(sr0, rel=1e-9)
    assert fit.dsr.dsr == pytest.approx(dsr, rel=1e-9)
    assert fit.dsr.dsr == pytest.approx(sweep.about["dsr"], rel=1e-9)
    page = page_of(capsys, db, tmp_path / "fit.html")
    assert f"<td>{dsr:.2f}</td>" in page
    assert f"<td>{sweep.about['pbo']:.2f}</td>" in page
    assert f"<td>{sr:.3f} against {sr0:.3f}</td>" in page


def test_logits_that_contradict_the_stored_pbo_are_measured_again(tmp_path: Path) -> None:
    db = written_sweep(tmp_path / "r.db", {"a": [1.0, 2.0, 3.0, 4.0]}, noise(4, 24))
    execute(db, "UPDATE sweep_pbo SET logit = -logit")
    sweep = read_sweep(db)
    fit = calc.overfitting(sweep)
    assert calc.stored_pbo(sweep) is None
    assert fit.pbo is not None
    assert fit.pbo.pbo == pytest.approx(sweep.about["pbo"])


def test_histogram_bins_every_finite_value_once() -> None:
    values = np.array([0.1, 0.2, 0.2, 0.9, np.nan, np.inf])
    centres, counts, width = calc.histogram(values, bins=4)
    assert counts.sum() == 4
    assert len(centres) == 4
    assert width == pytest.approx(0.2)
    single = calc.histogram(np.array([2.0, 2.0]))
    assert single[1].tolist() == [2]
    assert single[2] == pytest.approx(0.2)


# --- pages that say so ------------------------------------------------------------------------


def test_a_sweep_stopped_half_way_says_so_and_shows_what_it_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = copy_of(real_sweeps()[0], tmp_path)
    key = grid_key()
    with duckdb.connect(str(db)) as con:  # as Ctrl-C after the 14th combination leaves it
        for statement in (
            "DELETE FROM sweep_results WHERE sweep = $k AND combo IN (SELECT combo FROM"
            " sweep_results WHERE sweep = $k ORDER BY combo LIMIT 10)",
            "DELETE FROM sweep_daily WHERE sweep = $k AND combo NOT IN"
            " (SELECT combo FROM sweep_results WHERE sweep = $k)",
            "DELETE FROM sweep_walk_forward WHERE sweep = $k",
            "DELETE FROM sweep_pbo WHERE sweep = $k",
            "UPDATE sweeps SET metric = NULL, best_combo = NULL, pbo = NULL, dsr = NULL,"
            " wf_train_sessions = NULL WHERE sweep = $k",
        ):
            con.execute(statement, {"k": key})
    page = page_of(capsys, db, tmp_path / "half.html", "--sweep-id", key)
    assert f"Only 14 of {COMBINATIONS} combinations are stored" in page
    assert "No out-of-sample period yet: the sweep stopped" in page
    assert charts(page) == {"sweep-grid", "sweep-pbo", "sweep-dsr"}  # PBO measured again
    assert "14, 8</td>" in page  # trials, sessions: the stored ones


def test_nan_statistics_show_as_n_a_and_a_map_with_nothing_to_show_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = copy_of(real_sweeps()[0], tmp_path)
    execute(db, "UPDATE sweep_results SET is_sharpe = 'NaN'::DOUBLE, oos_sharpe = NULL",
            "UPDATE sweeps SET pbo = 'NaN'::DOUBLE, dsr = NULL, best_metric = 'inf'::DOUBLE")
    page = page_of(capsys, db, tmp_path / "nan.html", "--sweep-id", grid_key())
    assert "No combination has a sharpe in the results file" in page
    assert "<td>n/a</td><td>n/a</td><td>n/a</td></tr>" in page  # best, PBO, DSR listed
    assert {"sweep-is", "sweep-oos", "sweep-pbo", "sweep-dsr"} <= charts(page)
    assert "NaN" not in page.split("<footer")[0].split("</script>")[-1]


def test_a_sweep_that_never_traded_draws_on_a_scale_of_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = written_sweep(tmp_path / "r.db", {"a": [1.0, 2.0], "b": [3.0, 4.0]}, np.zeros((4, 8)),
                       walk=(4, 2))
    page = page_of(capsys, db, tmp_path / "flat.html")
    assert page.count('"zmax":1.0,"zmin":-1.0') == 3  # the whole period, in and out of sample
    assert "Deflated Sharpe ratio of the best: n/a (the best never traded)" in page


def test_text_from_the_file_is_escaped_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = HOSTILE.replace('"', "")  # a column name: the sweep's writer quotes it
    db = written_sweep(tmp_path / "r.db", {key: [HOSTILE, "b&c"], "n": [1.0, 2.0]},
                       noise(4, 10), walk=(4, 2), grid=HOSTILE, sweep=HOSTILE,
                       combos=[HOSTILE, "x", "y", "z"])
    page = page_of(capsys, db, tmp_path / "h.html")
    assert HOSTILE not in page
    assert key not in page
    assert "<img" not in page
    assert "window.__pwned" in page  # shown, as text
    code, lines = run(capsys, "--sweep", str(db), "--out", str(tmp_path / "h2.html"),
                      "--x", "n<script>")
    assert code == 2
    assert len(lines) == 1


# --- refusals ---------------------------------------------------------------------------------


def _sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE sweeps (sweep TEXT)")
    return path


def _duckdb(*statements: str) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        with duckdb.connect(str(path)) as con:
            for statement in statements:
                con.execute(statement)
        return path

    return make


def _real(*statements: str) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        copy_of(real_sweeps()[0], path.parent, path.name)
        execute(path, *statements)
        return path

    return make


def _daemon(path: Path) -> Path:
    return write_db(path, session("es", date(2026, 10, 5)))


def _sweeps_table_only(path: Path) -> Path:
    _real()(path)
    execute(path, "DELETE FROM sweeps")
    return path


REFUSALS: list[tuple[str, Callable[[Path], Path], list[str], str]] = [
    ("missing file", lambda p: p, [], "no such file; pass the file python -m gexbot.sweep"),
    ("a directory", lambda p: (p.mkdir(), p)[1], [], "is a directory"),
    ("random bytes", bytes_file(os.urandom(4096)), [], "is not a DuckDB database (it does not"
     " start as one); gexbot leaves it untouched: pass another --sweep"),
    ("an empty file", bytes_file(b""), [], "is not a DuckDB database (an empty file)"),
    ("a SQLite file", _sqlite, [], "is not a DuckDB database (a SQLite database)"),
    ("an empty DuckDB file", _duckdb(), [], "it has no sweeps table); pass the file"),
    ("the daemon's database", _daemon, [], "it is a daemon's database: pass it as --db"),
    ("a sweeps table alone", _duckdb("CREATE TABLE sweeps (sweep VARCHAR)"), [],
     "lacks the column(s) variant"),
    ("no sweep in it", _sweeps_table_only, [], "holds no sweep yet"),
    ("a sweep id not there", _real(), ["--sweep-id", "ffff"], "--sweep-id ffff names none"),
    ("an id naming two", _real("UPDATE sweeps SET sweep = 'a' || sweep"), ["--sweep-id", "a"],
     "--sweep-id a names more than one"),
    ("an empty grid", _real("DELETE FROM sweep_results", "DELETE FROM sweep_daily"), [],
     "holds no combination yet"),
    ("keys not a list", _real("UPDATE sweeps SET keys = '{\"a\": 1}'"), [],
     "are not a list of parameter names"),
    ("a key without a column", _real("UPDATE sweeps SET keys = '[\"strategy.nope\"]'"), [],
     "sweep_results has no column for the parameter strategy.nope"),
    ("daily rows missing", _real("DELETE FROM sweep_daily WHERE rowid % 5 = 0"), [],
     "not one row per combination and session"),
    ("a NaN daily PnL", _real("UPDATE sweep_daily SET pnl = 'NaN'::DOUBLE WHERE rowid = 200"),
     [], "PnL values are missing or not finite"),
    ("an unknown --x", _real(), ["--x", "strategy.nope"], "--x strategy.nope: sweep"),
    ("--x and --y alike", _real(), ["--sweep-id", "{grid}", "--x", "strategy.ofi.long_above",
                                    "--y", "strategy.ofi.long_above"], "both name"),
    ("--variant without --db", _real(), ["--variant", "es"], "--variant chooses rows of the"),
    ("out is a directory", _real(), ["--out", "{tmp}"], "is a directory; name the HTML"),
]


@pytest.mark.parametrize(("case", "make", "extra", "expected"), REFUSALS,
                         ids=[case for case, *_ in REFUSALS])
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    make: Callable[[Path], Path],
    extra: list[str],
    expected: str,
) -> None:
    db = make(tmp_path / "input.db")
    out = tmp_path / "out.html"
    args = [a.replace("{tmp}", str(tmp_path)).replace("{grid}", grid_key()) for a in extra]
    if "--out" not in args:
        args += ["--out", str(out)]
    assert_refused(capsys, ["--sweep", str(db), *args], out, expected)


def test_a_results_file_given_as_the_daemons_database_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run(capsys, "--db", str(real_sweeps()[0]), "--out", str(tmp_path / "o.html"))
    assert code == 2
    assert len(lines) == 1
    assert "(it has no decisions table); it holds sweeps: pass it as --sweep" in lines[0]


def test_sweep_options_without_a_sweep_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for option in (["--sweep-id", "ab"], ["--x", "a"], ["--metric", "pnl"]):
        code, lines = run(capsys, *option)
        assert code == 2
        assert len(lines) == 1
        assert "add --sweep RESULTS_DB" in lines[0]


def test_the_file_is_free_for_the_sweep_as_soon_as_it_is_read(tmp_path: Path) -> None:
    db = copy_of(real_sweeps()[0], tmp_path)
    assert len(read_sweep(db).results) == 4
    with duckdb.connect(str(db)) as writer:  # refused while a read-only handle stays open
        writer.execute("UPDATE sweeps SET grid = 'again'")


def test_a_sweep_still_running_is_retried_then_refused_in_one_line(tmp_path: Path) -> None:
    db = copy_of(real_sweeps()[0], tmp_path)
    holder = subprocess.Popen(  # noqa: S603 (our interpreter)
        [sys.executable, "-c",
         "import sys; from gexbot.research.sweepdb import SweepStore;"
         " s = SweepStore(sys.argv[1]); print('held', flush=True); sys.stdin.read()", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        waits: list[float] = []
        with pytest.raises(ConfigError, match=re.escape(
                "python -m gexbot.sweep keeps its results file while it runs")) as refused:
            read_sweep(db, wait=waits.append)
        assert len(waits) == READ_RETRIES
        assert "\n" not in str(refused.value)
    finally:
        holder.communicate(input="", timeout=30)
    assert len(read_sweep(db).results) == 4
