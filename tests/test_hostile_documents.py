"""Every reader of a JSON or YAML document gexbot did not just write itself, given hostile text.

Presets, model files, recordings and the journal have tests of their own; these are the other
readers: the token file, a value given to `--set`, the state and the remembered refusals kept in
the database, a feature table's provenance. Nesting deeper than the interpreter's stack is the
case every one of them missed (a RecursionError is no ValueError, so it ended the process with a
traceback); each must refuse it in the way it refuses any other unreadable text.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gexbot.errors import ConfigError
from gexbot.market.refusal import RefusalWait
from gexbot.market.tokens import TokenFile
from gexbot.research.params import parse_assignment
from gexbot.research.tables import META_KEY, BadTable, read_session
from gexbot.shell.auth_gate import AuthGate
from gexbot.shell.state_codec import StateFormatError, state_from_json

DEEP = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a":' * 10_000 + "1" + "}" * 10_000
"""Far deeper than the interpreter's stack (1,000 frames), and within every size limit."""


def _token_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "tokens.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "not UTF-8":
        path.write_bytes(b'{"refresh_token": "caf\xe9"}')
    elif kind == "huge":
        path.write_bytes(b" " * (1 << 20))
    else:
        path.write_text({"deep list": DEEP, "deep object": DEEP_OBJECT}[kind])
    return path


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("deep list", "not a valid token file (nested more than 32 levels deep)"),
        ("deep object", "not a valid token file (nested more than 32 levels deep)"),
        ("not UTF-8", "not a token file (is not UTF-8 text (byte 0xe9 at offset 22))"),
        ("fifo", "not a token file (is not a regular file)"),
        ("huge", "not a token file (is larger than 64 KiB: not a file of this kind)"),
        ("folder", "not a token file (is a folder, not a file)"),
    ],
)
def test_a_token_file_no_writer_of_ours_made_is_one_config_error(
    tmp_path: Path, kind: str, says: str
) -> None:
    path = _token_file(tmp_path, kind)
    with pytest.raises(ConfigError) as raised:
        TokenFile(path).read()
    assert str(raised.value).startswith(f"GEXBOT_TOKEN_FILE {path}: {says}")


@pytest.mark.parametrize("raw", [DEEP, "{a: " * 10_000 + "1" + "}" * 10_000, "a: 1\na: 2"])
def test_a_set_value_nested_or_with_a_key_twice_is_no_value(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^--set strategy.x: .* is not a value"):
        parse_assignment(f"strategy.x={raw}")


def test_a_state_nested_beyond_the_stack_is_a_state_format_error() -> None:
    with pytest.raises(StateFormatError, match="nested too deeply"):
        state_from_json(DEEP)


def test_a_remembered_wait_nested_beyond_the_stack_is_unreadable() -> None:
    with pytest.raises(ValueError, match="nested more than 32 levels deep"):
        RefusalWait.from_json(DEEP_OBJECT)


class _Meta:
    """The database's meta table, holding what a hostile hand wrote there."""

    def __init__(self, text: str) -> None:
        self.text = text

    def get_meta(self, key: str) -> str | None:
        return self.text

    def set_meta(self, key: str, value: str) -> None:
        self.text = value


@pytest.mark.parametrize("text", [DEEP, DEEP_OBJECT])
def test_remembered_refusals_nested_beyond_the_stack_are_ignored_with_a_warning(
    text: str, caplog: pytest.LogCaptureFixture
) -> None:
    gate = AuthGate(_Meta(text), "fingerprint", lambda *_: None)
    assert gate.remembered() is None
    assert gate.waiting() is None
    assert "unreadable; ignoring it" in caplog.text
    assert "unreadable; ignored" in caplog.text


def test_a_feature_table_whose_provenance_nests_beyond_the_stack_is_no_feature_table(
    tmp_path: Path,
) -> None:
    path = tmp_path / "2026-10-05.parquet"
    table = pa.table({"x": [1.0]}).replace_schema_metadata({META_KEY: DEEP_OBJECT})
    pq.write_table(table, path)
    with pytest.raises(BadTable, match="not a gexbot feature table"):
        read_session(path)
