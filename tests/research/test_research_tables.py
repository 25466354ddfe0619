"""Feature tables are cached by what they depend on and rebuilt, with one line, when it changes."""

from __future__ import annotations

import json
import logging
import os
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from gexbot.errors import ConfigError
from gexbot.research import featureset
from gexbot.research.featureset import load_features
from gexbot.research.markets import DataSpec
from gexbot.settings import load_variant

SPEC = DataSpec.sim(3, date(2026, 11, 25), 2)  # a regular session and Thanksgiving's early close


def _files(folder: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.parquet")}


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gexbot.research"]


def test_tables_are_built_once_then_reused(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    first = load_features("es", SPEC, tmp_path, workers=2)
    assert first.n_sessions == 2
    assert first.dates == (date(2026, 11, 25), date(2026, 11, 27))
    assert [f["early_close"] for f in first.facts] == [False, True]
    assert first.n_minutes == 390 + 210
    built = _files(first.directory)
    assert len(built) == 2
    caplog.clear()
    again = load_features("es", SPEC, tmp_path, workers=2)
    assert _lines(caplog) == []
    assert _files(again.directory) == built
    for name, column in first.columns.items():
        assert np.array_equal(column, again.columns[name], equal_nan=column.dtype.kind == "f")


def test_feature_parameters_get_their_own_tables(tmp_path: Path) -> None:
    base = load_features("es", SPEC, tmp_path)
    wider = load_features("es", SPEC, tmp_path, overrides={"strategy.bands.window": 30})
    same = load_features("es", SPEC, tmp_path, overrides={"strategy.ofi.long_above": 3.0})
    assert wider.directory != base.directory
    assert same.directory == base.directory
    assert not np.array_equal(wider.columns["band_sigma"], base.columns["band_sigma"],
                              equal_nan=True)


def test_another_version_is_rebuilt_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(featureset, "__version__", "0.0.1")
    old = load_features("es", SPEC, tmp_path)
    monkeypatch.undo()
    caplog.set_level(logging.INFO)
    load_features("es", SPEC, tmp_path)
    lines = _lines(caplog)
    assert any("rebuilding 2 of 2 session tables" in line and "built by gexbot 0.0.1" in line
               for line in lines), lines
    assert len([line for line in lines if "rebuilding" in line]) == 1
    assert old.directory.exists()


def test_another_model_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    load_features("es", SPEC, tmp_path)
    document = json.loads(load_variant("es").model_file().read_text())
    document["means"] = [m * 1.5 for m in document["means"]]
    other = tmp_path / "other_model.json"
    other.write_text(json.dumps(document))
    caplog.set_level(logging.INFO)
    load_features("es", SPEC, tmp_path, model_path=other)
    assert any("built with another HMM model" in line for line in _lines(caplog))


@pytest.mark.parametrize("damage", [b"not parquet at all", b""])
def test_a_corrupt_table_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                    damage: bytes) -> None:
    good = load_features("es", SPEC, tmp_path)
    victim = good.directory / "2026-11-27.parquet"
    victim.write_bytes(damage)
    caplog.set_level(logging.INFO)
    again = load_features("es", SPEC, tmp_path)
    assert any("rebuilding 1 of 2" in line and "not a readable Parquet file" in line
               for line in _lines(caplog))
    assert np.array_equal(again.columns["spot"], good.columns["spot"], equal_nan=True)


def test_a_table_is_never_written_through_a_link_planted_beside_it(tmp_path: Path) -> None:
    good = load_features("es", SPEC, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("a user's file\n")
    table = good.directory / "2026-11-27.parquet"
    table.unlink()
    for name in (f".{table.name}.{os.getpid()}.partial", f".{table.name}.partial"):
        (good.directory / name).symlink_to(victim)
    again = load_features("es", SPEC, tmp_path, workers=1)
    assert victim.read_text() == "a user's file\n"
    assert np.array_equal(again.columns["spot"], good.columns["spot"], equal_nan=True)
    assert not [p for p in good.directory.glob(".*") if not p.is_symlink()]


def test_a_truncated_table_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = load_features("es", SPEC, tmp_path)
    victim = good.directory / "2026-11-25.parquet"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    caplog.set_level(logging.INFO)
    load_features("es", SPEC, tmp_path)
    assert any("rebuilding 1 of 2" in line for line in _lines(caplog))


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (DataSpec(source="sim", seed=1, start=None, days=2), "--start is needed"),
        (DataSpec.sim(1, date(2026, 10, 1), 0), "--days must be at least 1"),
        (DataSpec.sim(-1, date(2026, 10, 1), 1), "--seed must be a non-negative"),
        (DataSpec.recordings([]), "--replay needs at least one"),
    ],
)
def test_specs_that_name_no_data_are_refused(tmp_path: Path, spec: DataSpec, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_features("es", spec, tmp_path)


def test_a_folder_without_recordings_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    folder.mkdir()
    with pytest.raises(ConfigError, match="no recordings"):
        load_features("es", DataSpec.recordings([folder]), tmp_path)


def test_builds_of_other_windows_share_one_folder(tmp_path: Path) -> None:
    """Tables of one seed built by runs of different windows serve `--features` together."""
    from gexbot.research.featureset import open_features

    first = load_features("es", DataSpec.sim(3, date(2026, 11, 24), 1), tmp_path)
    second = load_features("es", DataSpec.sim(3, date(2026, 11, 25), 1), tmp_path)
    assert first.directory == second.directory
    both = open_features(first.directory, "es", load_variant("es"))
    assert both.dates == (date(2026, 11, 24), date(2026, 11, 25))
