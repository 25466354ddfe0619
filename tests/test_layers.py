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


def _calls(path: Path, names: set[str]) -> list[ast.Call]:
    """The calls in `path` of a function named one of `names` (plain or as an attribute)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in names:
                found.append(node)
    return found


def environment_reads(path: Path) -> list[str]:
    """Where `path` reads the process environment or a `.env` file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [f"line {node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"}]
    found += [f"line {node.lineno}: imports {node.module}" for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module in {"os", "dotenv"}
              and {a.name for a in node.names} & {"environ", "getenv", "dotenv_values",
                                                  "load_dotenv"}]
    return found


def test_only_the_environment_module_reads_the_environment() -> None:
    readers = {
        f"{path.relative_to(PACKAGE.parent)} {where}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "environment.py"
        for where in environment_reads(path)
    }
    assert readers == set()
    assert environment_reads(PACKAGE / "environment.py") != []


def test_no_transport_is_probed_for_its_methods() -> None:
    """Transports declare their hooks (`ManagedTransport`): nothing asks whether one has them."""
    probes = [
        f"{path.relative_to(PACKAGE.parent)}:{call.lineno} {ast.unparse(call)}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for call in _calls(path, {"hasattr", "getattr"})
        if call.args and "transport" in ast.unparse(call.args[0]).lower()
    ]
    assert probes == []


def test_the_checks_see_a_probe_and_an_environment_read(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom dotenv import load_dotenv\n"
                      "def f(market):\n    x = os.environ.get('A')\n"
                      "    return hasattr(market.transport, 'close')\n")
    assert len(environment_reads(module)) == 2
    assert [ast.unparse(c) for c in _calls(module, {"hasattr"})] == [
        "hasattr(market.transport, 'close')"
    ]
