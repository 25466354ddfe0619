"""The report's tests run its command in this process: leave the logging and signals as found."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_state import process_state_restored


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    with process_state_restored():
        yield
