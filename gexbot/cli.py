"""What every command's command line shares: a refusal is one line, with exit code 2.

argparse prints its usage block (a dozen lines for the daemon) before the problem; a user
reading a container's log, or a script reading the last line, wants the problem alone. What a
line quotes from outside (an argument, a pasted address, a server's words) has its control
characters escaped, so it stays one line and cannot drive the terminal.
"""

from __future__ import annotations

import argparse
import re
from datetime import date
from typing import NoReturn

from gexbot.errors import EXIT_CONFIG

_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """`text` with control characters written as escapes (``\\n``, ``\\x1b``): one line, inert.

    A message quotes what came from outside (a recorded error text, a header value, a file
    name, an argument); a newline in it would start what reads as a line of its own, and a
    terminal escape could rewrite the lines above.
    """
    return _CONTROL.sub(lambda found: repr(found.group(0))[1:-1], text)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, refusing in one line: ``prog: problem; --help lists the options``."""

    def error(self, message: str) -> NoReturn:
        """Print the problem in one line and exit 2 (argparse's code for a bad command line)."""
        text = escape_controls(" ".join(message.split()))
        self.exit(EXIT_CONFIG, f"{self.prog}: {text}; --help lists the options\n")


def iso_date(text: str) -> date:
    """An ISO date (YYYY-MM-DD), as argparse's `type`."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-10-01, got {text!r}") from None
