"""What every command's command line shares: a refusal is one line, with exit code 2.

argparse prints its usage block (a dozen lines for the daemon) before the problem; a user
reading a container's log, or a script reading the last line, wants the problem alone.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import NoReturn

from gexbot.errors import EXIT_CONFIG


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, refusing in one line: ``prog: problem; --help lists the options``."""

    def error(self, message: str) -> NoReturn:
        """Print the problem in one line and exit 2 (argparse's code for a bad command line)."""
        text = " ".join(message.split())
        self.exit(EXIT_CONFIG, f"{self.prog}: {text}; --help lists the options\n")


def iso_date(text: str) -> date:
    """An ISO date (YYYY-MM-DD), as argparse's `type`."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-10-01, got {text!r}") from None
