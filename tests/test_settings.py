"""Presets: every number of the strategy, validated strictly, each problem one line naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gexbot.errors import ConfigError
from gexbot.settings import Secrets, load_preset, load_variant, preset_path


def _shipped(variant: str = "es") -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(preset_path(variant).read_text())
    return loaded


def _write(tmp_path: Path, document: Any, name: str = "my.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_preset(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_shipped_presets_hold_the_designs_numbers() -> None:
    es, nq = load_variant("es"), load_variant("nq")
    assert (es.symbol, es.proxy, nq.symbol, nq.proxy) == ("$SPX", "SPY", "$NDX", "QQQ")
    assert (es.model_path, nq.model_path) == ("models/hmm_es.json", "models/hmm_nq.json")
    for preset in (es, nq):
        s = preset.strategy
        assert preset.chain.strike_count == 40
        assert preset.chain.contract_multiplier == 100
        assert s.price_buffer == 100
        assert (s.bands.window, s.bands.min_live_prices, s.bands.width_sigma) == (20, 10, 2.0)
        assert s.stop_sigma == 3.0
        assert (s.hurst.min_lag, s.hurst.max_lag, s.hurst.threshold) == (2, 19, 0.5)
        assert (s.ofi.window, s.ofi.short_below, s.ofi.long_above) == (5, 0.5, 2.0)
        assert (s.hmm.returns, s.hmm.min_variance_ratio, s.hmm.train_sessions) == (20, 1.5, 10)
        assert s.sizing.bucket == "REVERSION"
        assert s.sizing.win_rates == {"REVERSION": 0.79, "MOMENTUM": 0.59}
        assert (s.sizing.kelly_fraction, s.sizing.max_fraction) == (0.5, 0.05)
        assert s.sizing.slippage_points == 0.25
        assert s.cooldown_minutes == 5
        assert (s.gap.threshold, s.gap.suspend_until_prices) == (0.005, 15)
        assert s.flatten_minutes_before_close == 15
        assert s.starting_balance == 100_000
        assert preset.data.min_usable_per_side == 0.5
        assert preset.data.max_move_from_previous_close == 0.25
        assert preset.data.bars_expected_after_minutes == 2


def test_the_two_presets_differ_only_where_the_variant_does() -> None:
    es, nq = _shipped("es"), _shipped("nq")
    assert es["strategy"] == nq["strategy"]
    assert es["chain"] == nq["chain"]
    assert es["calendar"] == nq["calendar"] == "XNYS"


def test_a_users_preset_file_runs_with_its_own_numbers(tmp_path: Path) -> None:
    document = _shipped()
    document["strategy"]["cooldown_minutes"] = 10
    preset = load_variant("es", _write(tmp_path, document))
    assert preset.strategy.cooldown_minutes == 10


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["strategy"]["ofi"].update(long_abve=2.0),
         "strategy.ofi.long_abve: unknown key"),
        (lambda d: d.update(extra=1), "extra: unknown key"),
        (lambda d: d["strategy"]["bands"].update(window="20"),
         "strategy.bands.window: Input should be a valid integer (got '20')"),
        (lambda d: d["strategy"]["ofi"].update(window=0),
         "strategy.ofi.window: Input should be greater than or equal to 1 (got 0)"),
        (lambda d: d["strategy"]["sizing"]["win_rates"].update(REVERSION=1.5),
         "strategy.sizing.win_rates.REVERSION: Input should be less than 1 (got 1.5)"),
        (lambda d: d["strategy"].pop("stop_sigma"), "strategy.stop_sigma: Field required"),
        (lambda d: d["strategy"]["hurst"].update(min_lag=19),
         "strategy.hurst: Value error, max_lag must be greater than min_lag"),
        (lambda d: d["strategy"]["bands"].update(window=200),
         "strategy: Value error, bands.window must not exceed price_buffer"),
        (lambda d: d["strategy"]["sizing"].update(bucket="SCALP"), "strategy.sizing.bucket"),
        (lambda d: d.update(variant="ES!"), "variant: String should match pattern"),
    ],
)
def test_each_bad_value_is_one_line_naming_file_and_key(
    tmp_path: Path, change: Any, expected: str
) -> None:
    document = _shipped()
    change(document)
    path = _write(tmp_path, document)
    message = _error(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_several_problems_are_counted_in_the_one_line(tmp_path: Path) -> None:
    document = _shipped()
    document["strategy"]["ofi"]["window"] = 0
    document["strategy"]["cooldown_minutes"] = -1
    assert "(and 1 more problems)" in _error(_write(tmp_path, document))


def test_files_that_are_not_presets(tmp_path: Path) -> None:
    assert _error(tmp_path / "missing.yaml").endswith("missing.yaml: preset file not found")
    broken = _write(tmp_path, "variant: es\nstrategy: [unclosed\n", "broken.yaml")
    assert "broken.yaml: line 3 not valid YAML" in _error(broken)
    listed = _write(tmp_path, "- es\n- nq\n", "list.yaml")
    assert _error(listed).endswith("a preset must be a mapping of keys to values")


def test_the_shipped_preset_must_be_of_its_variant(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    document = _shipped()
    (tmp_path / "nq.yaml").write_text(yaml.safe_dump(document))
    monkeypatch.setattr("gexbot.settings.PRESET_DIR", tmp_path)
    with pytest.raises(ConfigError, match="variant is 'es', not 'nq'"):
        load_variant("nq")


def test_secrets_never_show_in_repr() -> None:
    secrets = Secrets.from_env({
        "SCHWAB_APP_KEY": "key-123", "SCHWAB_APP_SECRET": "secret-456",
        "SCHWAB_REFRESH_TOKEN": "refresh-789", "DISCORD_WEBHOOK_URL": "https://hook/abc",
    })
    shown = repr(secrets)
    for value in ("key-123", "secret-456", "refresh-789", "https://hook/abc"):
        assert value not in shown
    assert secrets.values() == ("key-123", "secret-456", "refresh-789", "https://hook/abc")
    assert Secrets.from_env({"SCHWAB_APP_KEY": "  "}).app_key is None
