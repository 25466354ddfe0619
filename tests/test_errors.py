"""Every command maps the exception tree to the same exit codes."""

from __future__ import annotations

import logging

import pytest

from gexbot.errors import (
    EXIT_AUTH,
    EXIT_BUG,
    EXIT_CONFIG,
    EXIT_OK,
    AuthError,
    CalendarError,
    ConfigError,
    DataError,
    ModelError,
    exit_code_of,
)

LOG = logging.getLogger("test.errors")


def _raising(problem: BaseException) -> int:
    raise problem


@pytest.mark.parametrize(
    ("problem", "code"),
    [
        (ConfigError("preset.yaml: strategy.ofi.window: unknown key"), EXIT_CONFIG),
        (ModelError("models/hmm_es.json: model file not found"), EXIT_CONFIG),
        (CalendarError("2029-01-02 is outside the exchange calendar"), EXIT_CONFIG),
        (AuthError("Schwab refused the refresh token"), EXIT_AUTH),
        (DataError("pricehistory: HTTP 503", "server_error"), EXIT_BUG),
    ],
)
def test_gexbot_errors_are_one_critical_line_and_their_code(
    problem: Exception, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="test.errors"):
        assert exit_code_of(lambda: _raising(problem), LOG) == code
    (record,) = caplog.records
    assert record.levelno == logging.CRITICAL
    assert record.getMessage() == str(problem)
    assert record.exc_info is None


def test_a_bug_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="test.errors"):
        assert exit_code_of(lambda: _raising(KeyError("balance")), LOG) == EXIT_BUG
    (record,) = caplog.records
    assert record.exc_info is not None
    assert "this is a bug" in record.getMessage()


def test_ctrl_c_and_success_exit_0() -> None:
    assert exit_code_of(lambda: _raising(KeyboardInterrupt()), LOG) == EXIT_OK
    assert exit_code_of(lambda: 0, LOG) == EXIT_OK
