"""Dotted overrides are validated by the preset schema and mapped onto the kernel's vector."""

from __future__ import annotations

import pytest

from gexbot.errors import ConfigError
from gexbot.research.enums import P_COOLDOWN, P_OFI_LONG, P_WIN_RATE, PARAM_NAMES
from gexbot.research.params import (
    apply_overrides,
    kernel_matrix,
    kernel_vector,
    parse_assignment,
    split_overrides,
    table_identity,
)
from gexbot.settings import load_variant

ES = load_variant("es")


def test_vector_holds_the_presets_numbers() -> None:
    vector = kernel_vector(ES.strategy)
    assert len(vector) == len(PARAM_NAMES)
    assert vector[P_OFI_LONG] == ES.strategy.ofi.long_above
    assert vector[P_WIN_RATE] == ES.strategy.sizing.win_rates["REVERSION"]
    assert vector[P_COOLDOWN] == ES.strategy.cooldown_minutes


def test_the_bucket_picks_the_win_rate() -> None:
    momentum = apply_overrides(ES, {"strategy.sizing.bucket": "MOMENTUM"})
    assert kernel_vector(momentum.strategy)[P_WIN_RATE] == ES.strategy.sizing.win_rates["MOMENTUM"]


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("strategy.ofi.long_above=2.5", "strategy.ofi.long_above", 2.5),
        ("strategy.cooldown_minutes=10", "strategy.cooldown_minutes", 10),
        ("strategy.sizing.bucket=MOMENTUM", "strategy.sizing.bucket", "MOMENTUM"),
    ],
)
def test_assignments_read_yaml_scalars(text: str, key: str, value: object) -> None:
    assert parse_assignment(text) == (key, value)


@pytest.mark.parametrize("text", ["strategy.ofi.long_above", "=2", "strategy.stop_sigma=",
                                  "strategy.stop_sigma=[1, 2]", "strategy.stop_sigma={a: 1}"])
def test_malformed_assignments_are_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^--set ") as caught:
        parse_assignment(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ({"strategy.ofi.long_abve": 2.5},
         "strategy.ofi.long_abve: unknown key (did you mean strategy.ofi.long_above?)"),
        ({"strategy.ofi.colour": 2.5}, "strategy.ofi.colour: unknown key"),
        ({"strategy.nothing.here": 1}, "unknown key"),
        ({"strategy.ofi": 1}, "is a section"),
        ({"strategy.ofi.long_above": "high"}, "strategy.ofi.long_above: Input should be"),
        ({"strategy.ofi.long_above": -1.0}, "greater than 0"),
        ({"strategy.cooldown_minutes": 2.5}, "strategy.cooldown_minutes"),
        ({"strategy.sizing.max_fraction": 1.5}, "less than or equal to 1"),
        ({"strategy.hurst.max_lag": 1}, "strategy.hurst"),
        ({"variant": "nq"}, "cannot be overridden"),
    ],
)
def test_bad_overrides_are_refused_in_one_line(override: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=r"^--set ") as caught:
        apply_overrides(ES, override)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_whole_number_floats_count_as_integers() -> None:
    assert apply_overrides(ES, {"strategy.cooldown_minutes": 10.0}).strategy.cooldown_minutes == 10


def test_kernel_matrix_refuses_keys_that_change_the_table() -> None:
    with pytest.raises(ConfigError, match=r"combination 1: strategy.bands.window: changes the"):
        kernel_matrix(ES, [{"strategy.ofi.long_above": 2.5}, {"strategy.bands.window": 30}])


def test_kernel_matrix_rows_follow_the_overrides() -> None:
    matrix = kernel_matrix(ES, [{}, {"strategy.ofi.long_above": 3.0}])
    assert matrix.shape == (2, len(PARAM_NAMES))
    assert matrix[0, P_OFI_LONG] == ES.strategy.ofi.long_above
    assert matrix[1, P_OFI_LONG] == 3.0


def test_split_and_table_identity_agree_on_what_changes_the_table() -> None:
    table, rules = split_overrides({"strategy.bands.window": 30, "strategy.stop_sigma": 2.0,
                                    "chain.strike_count": 30})
    assert table == {"strategy.bands.window": 30, "chain.strike_count": 30}
    assert rules == {"strategy.stop_sigma": 2.0}
    assert table_identity(apply_overrides(ES, rules)) == table_identity(ES)
    for key, value in table.items():
        assert table_identity(apply_overrides(ES, {key: value})) != table_identity(ES)
