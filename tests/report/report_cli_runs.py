"""Running `python -m gexbot.report` in this process, and the files its refusals are fed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gexbot.report.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    """The exit code and the non-blank lines printed; never a traceback."""
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, [line for line in (captured.out + captured.err).splitlines() if line.strip()]


def assert_refused(capsys: pytest.CaptureFixture[str], argv: list[str], out: Path,
                   expected: str) -> None:
    """Exit 2 with one line holding `expected`, and no page (nor a half-written one) left."""
    code, lines = run(capsys, *argv)
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert expected in lines[0], lines
    assert not out.exists()
    assert not list(out.parent.rglob(f".{out.name}.*"))


def bytes_file(content: bytes) -> Callable[[Path], Path]:
    """A maker of a file holding `content`."""
    def make(path: Path) -> Path:
        path.write_bytes(content)
        return path

    return make
