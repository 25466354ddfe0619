"""Presets: every number of the strategy, validated strictly, each problem one line naming it."""

from __future__ import annotations

import base64
import os
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
    assert _error(_write(tmp_path, document)).endswith("(and 1 more problem)")
    document["strategy"]["bands"]["window"] = 0
    assert _error(_write(tmp_path, document)).endswith("(and 2 more problems)")


def test_a_misspelt_key_is_named_as_typed_with_the_key_it_resembles(tmp_path: Path) -> None:
    """The typo, not the key it left missing, is the problem named, and it is not counted twice."""
    document = _shipped()
    document["strategy"]["ofi"]["long_abve"] = document["strategy"]["ofi"].pop("long_above")
    path = _write(tmp_path, document)
    assert _error(path) == (
        f"{path}: strategy.ofi.long_abve: unknown key (did you mean long_above?)"
    )
    document["strategy"]["cooldown_minutes"] = -1
    message = _error(_write(tmp_path, document))
    assert "strategy.ofi.long_abve: unknown key (did you mean long_above?)" in message
    assert message.endswith("(and 1 more problem)")


def test_an_unknown_key_like_no_missing_one_gets_no_suggestion(tmp_path: Path) -> None:
    document = _shipped()
    document["strategy"]["ofi"]["colour"] = "blue"
    path = _write(tmp_path, document)
    assert _error(path) == f"{path}: strategy.ofi.colour: unknown key"


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
    values = ("key-123-abcdef", "secret-456-ghij", "refresh-789-klmn", "https://hook/abc")
    secrets = Secrets.from_env(dict(zip(
        ("SCHWAB_APP_KEY", "SCHWAB_APP_SECRET", "SCHWAB_REFRESH_TOKEN", "DISCORD_WEBHOOK_URL"),
        values, strict=True)))  # fmt: skip
    shown = repr(secrets)
    for value in values:
        assert value not in shown
    basic = base64.b64encode(b"key-123-abcdef:secret-456-ghij").decode()
    assert secrets.values() == (*values, basic)
    assert Secrets.from_env({"SCHWAB_APP_KEY": "  "}).app_key is None


def _leaves(document: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every number in a preset document."""
    found: list[tuple[str, Any]] = []
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            found.extend(_leaves(value, name + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found.append((name, value))
    return found


def _set(document: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        document = document[part]
    document[last] = value


ABSURD = [float("inf"), float("-inf"), float("nan"), 1e300, 10**400, 5e-324, 1e-320, -1,
          -1e300]
NUMBERS = [name for name, _ in _leaves(_shipped())]


def test_the_walk_reaches_every_number_a_preset_has() -> None:
    validated = load_variant("es").model_dump()
    assert [name for name, _ in _leaves(validated)] == NUMBERS
    assert [name for name, _ in _leaves(_shipped("nq"))] == NUMBERS
    assert len(NUMBERS) > 30


@pytest.mark.parametrize("key", NUMBERS)
def test_every_number_refuses_non_finite_huge_tiny_and_negative_values(
    tmp_path: Path, key: str
) -> None:
    for value in ABSURD:
        document = _shipped()
        _set(document, key, value)
        message = _error(_write(tmp_path, document))
        shown = key if key.count(".") < 3 else key.rsplit(".", 1)[0]
        assert f": {shown}" in message, (value, message)
        assert len(message) < 300


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["strategy"].update(starting_balance=float("inf")),
         "strategy.starting_balance: Input should be a finite number (got inf)"),
        (lambda d: d["strategy"].update(starting_balance=10**400),
         "strategy.starting_balance: Input should be a valid number (got an integer of 401"
         " digits)"),
        (lambda d: d["strategy"]["sizing"].update(kelly_fraction=1e-320),
         "strategy.sizing.kelly_fraction: Value error, too small to mean anything: use 0 or at"
         " least 1e-06"),
        (lambda d: d["strategy"]["gap"].update(suspend_until_prices=101),
         "strategy: Value error, gap.suspend_until_prices must not exceed price_buffer"),
        (lambda d: d["strategy"]["bands"].update(min_live_prices=101),
         "strategy: Value error, bands.min_live_prices must not exceed price_buffer"),
        (lambda d: d["strategy"]["hmm"].update(returns=390),
         "strategy.hmm.returns: Input should be less than 390"),
        (lambda d: d["strategy"].update(flatten_minutes_before_close=390),
         "strategy.flatten_minutes_before_close: Input should be less than 390"),
        (lambda d: d["sim"].update(strike_interval=0.01),
         "sim: Value error, base_price / strike_interval must not exceed 20,000"),
        (lambda d: d["sim"].update(strike_interval=200),
         "Value error, sim.strike_interval x chain.strike_count must not exceed sim.base_price"),
        (lambda d: d.update(symbol="$SPX\n2026-10-13 09:58:00 ES  LONG"), "symbol: String should"),
        (lambda d: d.update(model_path=""), "model_path: String should have at least 1"),
    ],
)
def test_values_that_would_corrupt_silently_are_refused(
    tmp_path: Path, change: Any, expected: str
) -> None:
    document = _shipped()
    change(document)
    assert expected in _error(_write(tmp_path, document))


def test_the_shipped_simulated_markets_fit_their_bounds() -> None:
    for variant in ("es", "nq"):
        sim = load_variant(variant).sim
        assert sim.base_price / sim.strike_interval < 3000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("variant: es\nvariant: nq\n", "line 2 not valid YAML (key 'variant' appears twice)"),
        ("strategy:\n  hurst: {min_lag: 2, min_lag: 3}\n", "key 'min_lag' appears twice"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "not a preset: nested more than 32 levels"),
        ("a: " + "[" * 40 + "]" * 40 + "\n", "not a preset: nested more than 32 levels"),
        ("variant: " + "9" * 5000 + "\n", "not a preset: Exceeds the limit (4300 digits)"),
    ],
)
def test_documents_no_preset_can_mean_are_one_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in _error(_write(tmp_path, text))


def test_a_duplicate_key_is_refused_even_where_both_values_agree(tmp_path: Path) -> None:
    text = preset_path("es").read_text() + "\nstrategy:\n  cooldown_minutes: 5\n"
    assert "key 'strategy' appears twice" in _error(_write(tmp_path, text))


def test_files_of_another_kind_are_one_line(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("symbol: café\n".encode("latin-1"))
    assert _error(latin).endswith("not a preset: is not UTF-8 text (byte 0xe9 at offset 11)")
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(bytes(range(256)) * 4)
    assert "not a preset: is not UTF-8 text" in _error(garbage)
    assert _error(tmp_path).endswith("cannot read preset (is a folder, not a file)")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    assert _error(big).endswith(
        "cannot read preset (is larger than 1024 KiB: not a file of this kind)"
    )


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert _error(fifo).endswith("cannot read preset (is not a regular file)")


def test_a_preset_of_another_variant_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _shipped("nq"))
    with pytest.raises(ConfigError) as caught:
        load_variant("es", path)
    assert str(caught.value) == (
        f"{path}: variant is 'nq', not 'es'; pass --variant nq, or a preset of es"
    )


@pytest.mark.parametrize("name", ["../../x", "es/../nq", "/etc/passwd", "", "ES", "es\n"])
def test_a_variant_name_never_builds_a_path(name: str) -> None:
    with pytest.raises(ConfigError, match="is not a variant name"):
        preset_path(name)


@pytest.mark.parametrize(
    "name", ["SCHWAB_APP_KEY", "SCHWAB_APP_SECRET", "SCHWAB_REFRESH_TOKEN", "DISCORD_WEBHOOK_URL"]
)
@pytest.mark.parametrize("value", ["x", "%", "\\", "abc123-+/=.", " short "])
def test_a_secret_too_short_to_be_real_is_refused_without_showing_it(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        Secrets.from_env({name: value})
    message = str(refused.value)
    assert message.startswith(f"{name} has {len(value.strip())} characters, too few")
    assert "at least 12" in message
    assert value.strip() not in message.removeprefix(name)
    assert Secrets.from_env({name: "x" * 12}).values()
