"""Every document the code, tests, scripts or docs point a reader to is in the repository.

A comment that sends a reader to a design note the repository does not hold is a dead end; the
notes a reader of the code needs are in docs/.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEARCHED = ("gexbot", "tests", "bench", "scripts", "docs")
NAMED = re.compile(r"[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b")


def _texts() -> dict[Path, str]:
    files = [REPO / "README.md"]
    for folder in SEARCHED:
        files += [p for p in (REPO / folder).rglob("*") if p.suffix in {".py", ".md", ""}
                  and p.is_file() and "__pycache__" not in p.parts]
    return {path: path.read_text(encoding="utf-8", errors="replace") for path in files}


def test_every_document_named_exists() -> None:
    missing = []
    for path, text in _texts().items():
        for name in set(NAMED.findall(text)):
            places = (REPO / name, path.parent / name, REPO / "docs" / name)
            if not any(place.is_file() for place in places):
                missing.append(f"{path.relative_to(REPO)}: {name}")
    assert missing == []


def test_the_design_notes_are_linked_from_the_readme() -> None:
    assert "docs/design.md" in (REPO / "README.md").read_text(encoding="utf-8")
