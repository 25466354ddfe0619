"""Reading the small YAML and JSON documents gexbot is handed: presets, model files, headers.

Both parsers accept more than any document of ours can mean, and each excess corrupts silently
or crashes: a key given twice (the last one silently wins), nesting deep enough to exhaust the
interpreter's stack, a number too large for a float (it becomes infinity) or too small (it
becomes 0), a file of any size or kind (a FIFO blocks, `/dev/zero` never ends). Everything here
turns such input into a `DocumentError` saying what is wrong, for the caller to put after the
file's name.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

MAX_DEPTH = 32
"""Nesting of the deepest document of ours (a recording header holds a preset: 6 levels)."""
MAX_INT_DIGITS = 20
"""Digits of the longest integer literal a document of ours holds (a 64-bit seed)."""


class DocumentError(ValueError):
    """The document is not one gexbot can read; the message says why, without the file name."""


class NotAFileError(DocumentError):
    """The path names a folder, a device or FIFO, or a file far too large to be a document."""


def read_bytes(path: Path, limit: int) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them.

    OSError (a missing file among them) propagates for the caller to word; anything that is not
    a regular file (opening a FIFO would wait for a writer for ever) or is larger than `limit`
    is a `NotAFileError`.
    """
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise NotAFileError("is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise NotAFileError("is not a regular file")
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise NotAFileError(f"is larger than {limit // 1024} KiB: not a file of this kind")
    return data


def read_text(path: Path, limit: int) -> str:
    """The UTF-8 text of the regular file `path`, at most `limit` bytes: `read_bytes`, and a
    `DocumentError` for text that is not UTF-8."""
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise DocumentError(
            f"is not UTF-8 text (byte 0x{data[problem.start]:02x} at offset {problem.start})"
        ) from None


def depth(document: object) -> int:
    """How deeply lists and mappings nest in `document` (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _check_depth(document: object) -> None:
    if depth(document) > MAX_DEPTH:
        raise DocumentError(f"nested more than {MAX_DEPTH} levels deep")


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's mapping; `DocumentError` when a key appears twice."""
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DocumentError(f"key {key!r} appears twice")
            seen.add(key)
    return mapping


def _strict_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise DocumentError(f"an integer of {digits} digits is no number of this file")
    return int(text)


def _strict_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise DocumentError(f"the number {_clip(text)} is too large for a float")
    mantissa = re.split("[eE]", text)[0]
    if abs(number) < sys.float_info.min and any(digit in mantissa for digit in "123456789"):
        raise DocumentError(f"the number {_clip(text)} is too small for a float (it underflows)")
    return number


def _no_constant(text: str) -> float:
    raise DocumentError(f"{text} is not a number")


def _clip(text: str, width: int = 24) -> str:
    return text if len(text) <= width else f"{text[:width]}..."


def load_json(text: str | bytes, *, strict_numbers: bool = True) -> Any:
    """Parse one JSON document: unique keys, at most `MAX_DEPTH` deep.

    With `strict_numbers`, NaN and Infinity, integers longer than 20 digits and floats that
    overflow or underflow are refused too. json.JSONDecodeError (a ValueError) says where the
    text stops being JSON; every other refusal is a `DocumentError`.
    """
    try:
        if strict_numbers:
            document = json.loads(text, object_pairs_hook=unique_keys, parse_int=_strict_int,
                                  parse_float=_strict_float, parse_constant=_no_constant)
        else:
            document = json.loads(text, object_pairs_hook=unique_keys)
    except RecursionError:
        raise DocumentError(f"nested more than {MAX_DEPTH} levels deep") from None
    except (json.JSONDecodeError, DocumentError):
        raise
    except ValueError as problem:
        # The interpreter's own limit on integer literals (4300 digits), and bytes not UTF-8.
        raise DocumentError(str(problem).split(";")[0]) from None
    _check_depth(document)
    return document


def load_answer(content: str | bytes) -> Any:
    """Parse a server's JSON answer as it came, at the C parser's speed (a key given twice is
    its last value, as any client reads it).

    Only nesting deeper than the interpreter's stack is refused, as a `DocumentError` (a
    ValueError like every other reason the text is not JSON), never a RecursionError that would
    end the process: a server can send an answer of any shape.
    """
    try:
        return json.loads(content)
    except RecursionError:
        raise DocumentError("nested too deeply to read") from None


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that names a key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                twice = key in seen
                seen.add(key)
            except TypeError:
                continue  # an unhashable key: the base class says so
            if twice:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse one YAML document safely: no code, unique keys, at most `MAX_DEPTH` deep.

    yaml.YAMLError (with the line where it went wrong) or `DocumentError`.
    """
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader
    except RecursionError:
        raise DocumentError(f"nested more than {MAX_DEPTH} levels deep") from None
    except yaml.YAMLError:
        raise
    except ValueError as problem:
        raise DocumentError(str(problem).split(";")[0]) from None
    _check_depth(document)
    return document
