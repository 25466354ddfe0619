"""What each layer may import (docs/design.md, "The layers"), checked on every module's source.

Imports inside functions and under TYPE_CHECKING count too: a layer that reaches up only
lazily still depends on what it reaches.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gexbot"
SHARED = ("gexbot", "gexbot.errors", "gexbot.settings", "gexbot.documents", "gexbot.redaction",
          "gexbot.net", "gexbot.cli")
"""Modules every layer may use: the version, the error tree, the preset schema, masking, whether
an address is loopback, and the one-line refusal of a command line (the health probe's)."""
ALLOWED = {
    "core": ("gexbot.core", "gexbot.errors", "gexbot.settings"),
    "market": ("gexbot.core", "gexbot.market", *SHARED),
    "shell": ("gexbot.core", "gexbot.market", "gexbot.shell", "gexbot.model_io", *SHARED),
}


def gexbot_imports(path: Path) -> set[str]:
    """The gexbot modules `path` imports, wherever in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "gexbot" or name.startswith("gexbot.")}


def allowed(name: str, prefixes: tuple[str, ...]) -> bool:
    """`name` is one of `prefixes` or inside one of them (`gexbot` itself: the version only)."""
    return any(
        name == prefix or (prefix != "gexbot" and name.startswith(prefix + "."))
        for prefix in prefixes
    )


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_from_below(layer: str) -> None:
    against = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name in sorted(gexbot_imports(path))
        if not allowed(name, ALLOWED[layer])
    ]
    assert against == []


def test_the_check_sees_a_lazy_import_against_the_layers(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from gexbot.shell.logs import Redactor\n")
    assert gexbot_imports(module) == {"gexbot.shell.logs"}
    assert not allowed("gexbot.shell.logs", ALLOWED["market"])
