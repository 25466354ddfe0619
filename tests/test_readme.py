"""The README's two opening commands are the ones that work: CI runs the second one verbatim."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from gexbot.live import build_parser

REPO = Path(__file__).resolve().parents[1]


def _opening_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.+?)\n```", text)[:2]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, test_command = _opening_commands()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci
    assert test_command.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install")
    assert test_command.endswith("./scripts/check")


def test_first_command_installs_and_runs_the_simulated_default() -> None:
    run_command, _ = _opening_commands()
    install, daemon = run_command.split(" && pip install -e . && ")
    assert install == "python3 -m venv .venv && . .venv/bin/activate"
    words = shlex.split(daemon)
    assert words[:3] == ["python", "-m", "gexbot.live"]
    args = build_parser().parse_args(words[3:])
    assert (args.variant, args.source, args.days, args.speed) == ("es", "sim", 5, None)
    assert args.db is None  # the default quant_trading_data.db in the working directory
