"""`gexbot.backtest` gives the daemon's own trades on the same data; every refusal is one line."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from gexbot import backtest, features
from gexbot.settings import preset_path

SIM = ["--source", "sim", "--seed", "6", "--start", "2026-11-23", "--days", "6"]
"""Six sessions with Thanksgiving's early close among them."""


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=900,
        check=False,
    )


def _trades(db: Path, table: str) -> list[dict[str, Any]]:
    extra = " EXCLUDE (run_id)" if table == "backtest_trades" else ""
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("SET TimeZone = 'America/New_York'")
        cursor = con.execute(f'SELECT *{extra} FROM {table} ORDER BY "timestamp"')  # noqa: S608
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _carrying_preset(folder: Path) -> Path:
    """The shipped ES preset, flattening at the close itself: positions are carried overnight."""
    document = yaml.safe_load(preset_path("es").read_text())
    document["strategy"]["flatten_minutes_before_close"] = 0
    document["strategy"]["bands"]["width_sigma"] = 1.0
    document["strategy"]["stop_sigma"] = 6.0
    document["strategy"]["ofi"]["long_above"] = 0.6
    document["strategy"]["ofi"]["short_below"] = 2.5
    path = folder / "carry.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize("custom", [False, True])
def test_backtest_of_the_sim_gives_the_daemons_trades(tmp_path: Path, custom: bool) -> None:
    preset = ["--preset", str(_carrying_preset(tmp_path))] if custom else []
    daemon = _run("gexbot.live", "--variant", "es", *SIM, *preset, "--db",
                  str(tmp_path / "daemon.db"))
    assert daemon.returncode == 0, daemon.stdout + daemon.stderr
    ran = _run("gexbot.backtest", "--variant", "es", *SIM, *preset, "--out",
               str(tmp_path / "features"), "--db", str(tmp_path / "results.db"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    theirs = _trades(tmp_path / "daemon.db", "trades")
    ours = _trades(tmp_path / "results.db", "backtest_trades")
    assert len(theirs) > 5
    assert ours == theirs
    if custom:
        assert any(t["entry_time"].date() != t["timestamp"].date() for t in ours)


def _drop_minutes(recording: Path, keep: Any) -> int:
    """Rewrite a recording without the exchanges whose clock minute `keep` refuses."""
    with gzip.open(recording, "rt", encoding="utf-8") as handle:
        header, *lines = handle.read().splitlines()
    kept = [line for line in lines if keep(datetime.fromisoformat(json.loads(line)["at"]))]
    with gzip.open(recording, "wt", encoding="utf-8") as handle:
        handle.write("\n".join([header, *kept]) + "\n")
    return len(lines) - len(kept)


def test_backtest_of_recordings_gives_the_replays_trades(tmp_path: Path) -> None:
    recorded = _run("gexbot.live", "--variant", "es", "--source", "sim", "--seed", "3",
                    "--start", "2026-12-22", "--days", "3", "--record", str(tmp_path / "rec"),
                    "--db", str(tmp_path / "recorded.db"))
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    files = sorted((tmp_path / "rec" / "es").glob("*.jsonl.gz"))
    assert len(files) == 3
    # Minutes the recorder "missed": scattered ones, and the end of the first day, so the
    # flatten time passes unseen and a position may be carried into the next session.
    dropped = _drop_minutes(files[0], lambda at: (at.hour, at.minute) < (15, 20)
                            and at.minute % 17 != 3)
    dropped += _drop_minutes(files[1], lambda at: at.minute % 23 != 5)
    assert dropped > 0
    replay = _run("gexbot.live", "--variant", "es", "--replay", str(tmp_path / "rec"), "--db",
                  str(tmp_path / "replay.db"))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    ran = _run("gexbot.backtest", "--variant", "es", "--replay", str(tmp_path / "rec"),
               "--out", str(tmp_path / "features"), "--db", str(tmp_path / "results.db"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "skipped minutes" in ran.stdout
    theirs = _trades(tmp_path / "replay.db", "trades")
    assert theirs
    assert _trades(tmp_path / "results.db", "backtest_trades") == theirs


def test_a_rerun_replaces_its_rows(tmp_path: Path) -> None:
    args = ["--variant", "es", "--source", "sim", "--seed", "2", "--start", "2026-10-05",
            "--days", "2", "--out", str(tmp_path / "f"), "--db", str(tmp_path / "r.db")]
    assert backtest.main(args) == 0
    assert backtest.main(args) == 0
    with duckdb.connect(str(tmp_path / "r.db"), read_only=True) as con:
        runs = con.execute("SELECT count(*) FROM backtest_runs").fetchone()
        days = con.execute("SELECT count(*) FROM backtest_equity").fetchone()
    assert runs == (1,)
    assert days == (2,)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One session's tables, for the refusals that need some."""
    out = tmp_path_factory.mktemp("tables")
    code = features.main(["build", "--variant", "es", "--source", "sim", "--seed", "4",
                          "--start", "2026-10-06", "--days", "1", "--out", str(out)])
    assert code == 0
    (table,) = out.glob("es/*/*")
    return table


def _one_line_refusal(capsys: pytest.CaptureFixture[str], code: int, says: str) -> None:
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert says in lines[0]
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--set", "strategy.ofi.long_abve=2.5"], "--set strategy.ofi.long_abve: unknown key"),
        (["--set", "strategy.ofi.long_above=high"], "strategy.ofi.long_above: Input should be"),
        (["--set", "strategy.ofi.long_above=-1"], "greater than 0"),
        (["--set", "strategy.ofi.long_above"], "expected KEY=VALUE"),
        (["--set", "variant=nq"], "cannot be overridden"),
        ([], "name the data"),
        (["--start", "2026-10-01", "--days", "2"], "add --source sim"),
        (["--source", "sim", "--days", "2"], "--start is needed"),
        (["--source", "sim", "--start", "2026-10-01", "--days", "0"], "--days must be"),
        (["--source", "sim", "--start", "2026-10-01", "--days", "1", "--workers", "0"],
         "--workers must be"),
        (["--source", "sim", "--start", "2026-10-01", "--days", "1", "--workers", "100000"],
         "--workers 100000: at most"),
        (["--replay", "no/such/folder"], "no such recording file or folder"),
        (["--source", "sim", "--start", "1999-01-04", "--days", "1"],
         "the simulated market runs from 2020-01-02"),
        (["--source", "sim", "--start", "2026-10-01", "--days", "1", "--model", "none.json"],
         "model file not found"),
        (["--source", "sim", "--start", "2026-10-01", "--days", "1", "--preset", "none.yaml"],
         "preset file not found"),
    ],
)
@pytest.mark.parametrize("command", ["backtest", "features"])
def test_bad_arguments_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, args: list[str], says: str
) -> None:
    common = ["--variant", "es", "--out", str(tmp_path / "f")]
    if command == "backtest":
        code = backtest.main([*common, *args, "--db", str(tmp_path / "r.db")])
    else:
        code = features.main(["build", *common, *args])
    _one_line_refusal(capsys, code, says)


@pytest.mark.parametrize("command", ["backtest", "features"])
def test_a_feature_folder_that_cannot_be_made_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    for out in (tmp_path / "notes.txt" / "features", Path("/proc/gexbot-features")):
        args = ["--variant", "es", "--source", "sim", "--seed", "4", "--start", "2026-10-06",
                "--days", "1", "--out", str(out)]
        if command == "backtest":
            code = backtest.main([*args, "--db", str(tmp_path / "r.db")])
        else:
            code = features.main(["build", *args])
        _one_line_refusal(capsys, code, "cannot create the feature table folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_recordings_of_another_variant_are_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "rec" / "nq"
    folder.mkdir(parents=True)
    header = {"format": "gexbot-recording", "version": 1, "variant": "nq",
              "session": "2026-10-06"}
    with gzip.open(folder / "2026-10-06.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps(header) + "\n")
    code = backtest.main(["--variant", "es", "--replay", str(folder), "--out",
                          str(tmp_path / "f"), "--db", str(tmp_path / "r.db")])
    _one_line_refusal(capsys, code, "recorded for variant 'nq', not 'es'")


@pytest.mark.parametrize(
    ("extra", "damage", "says"),
    [
        (["--variant", "nq"], None, "tables of variant es, not 'nq'"),
        (["--variant", "es", "--set", "strategy.bands.window=30"], None,
         "built with another strategy.bands.window"),
        (["--variant", "es"], b"PAR1 broken", "not a readable Parquet file"),
        (["--variant", "es", "--source", "sim", "--start", "2026-10-06", "--days", "1"], None,
         "not both"),
    ],
)
def test_bad_feature_folders_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], built: Path, extra: list[str],
    damage: bytes | None, says: str,
) -> None:
    folder = tmp_path / "copy"
    folder.mkdir()
    for table in built.glob("*.parquet"):
        (folder / table.name).write_bytes(damage if damage is not None else table.read_bytes())
    capsys.readouterr()
    code = backtest.main([*extra, "--features", str(folder), "--db", str(tmp_path / "r.db")])
    _one_line_refusal(capsys, code, says)


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_feature_folders_without_tables_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], folder: str
) -> None:
    (tmp_path / "empty").mkdir()
    code = backtest.main(["--variant", "es", "--features", str(tmp_path / folder), "--db",
                          str(tmp_path / "r.db")])
    _one_line_refusal(capsys, code, "feature table")


def test_a_results_database_that_is_not_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], built: Path
) -> None:
    bad = tmp_path / "r.db"
    bad.write_bytes(b"this is no database" * 100)
    capsys.readouterr()
    code = backtest.main(["--variant", "es", "--features", str(built), "--db", str(bad)])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert f"{bad} is not a DuckDB database" in err
    assert bad.read_bytes() == b"this is no database" * 100
    assert "Traceback" not in out + err


def test_tables_of_another_version_are_rebuilt_from_the_data_they_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], built: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "copy"
    folder.mkdir()
    for table in built.glob("*.parquet"):
        (folder / table.name).write_bytes(table.read_bytes())
    from gexbot.research import featureset

    monkeypatch.setattr(featureset, "__version__", "9.9.9")
    capsys.readouterr()
    code = backtest.main(["--variant", "es", "--features", str(folder), "--db",
                          str(tmp_path / "r.db")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "rebuilding 1 of 1 session table in" in err
    assert "this is 9.9.9" in err
    assert "trades" in out


def test_the_readme_research_commands_parse() -> None:
    """The worked example a newcomer pastes names options the commands have."""
    import re
    import shlex

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Research", 1)[1].split("\n## ", 1)[0]
    commands = [c.replace("\\\n", " ") for block in re.findall(r"```sh\n(.+?)```", section,
                                                               flags=re.S)
                for c in re.split(r"\n(?=python)", block)]
    parsed = 0
    for command in commands:
        words = shlex.split(command)
        if words[:3] == ["python", "-m", "gexbot.features"]:
            features.build_parser().parse_args(words[3:])
            parsed += 1
        elif words[:3] == ["python", "-m", "gexbot.backtest"]:
            backtest.build_parser().parse_args(words[3:])
            parsed += 1
    assert parsed >= 3
