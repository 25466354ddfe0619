"""Log setup: formats, level resolution, and that no secret ever reaches the output."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from secret_search import HOSTILE_KEY, HOSTILE_SECRET, basic, leaks, spellings

from gexbot.errors import ConfigError
from gexbot.shell.logs import EVENT_AT, Redactor, resolve_level, setup_logging

APP_KEY = "AppKey-7f3a9c1e"
APP_SECRET = "s3cr3t/with+plus=and&amp"  # noqa: S105 (a fake, as every value here)
WEBHOOK = "https://discord.com/api/webhooks/123456/Tok_en-XYZ987"
ACCESS_TOKEN = "I0.access+token/abc=="  # noqa: S105


@pytest.fixture(autouse=True)
def _restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {h: list(h.filters) for h in handlers}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler, kept in filters.items():
        handler.filters[:] = kept
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_text_lines_show_level_only_when_not_info() -> None:
    out = io.StringIO()
    setup_logging("DEBUG", "text", [], stream=out)
    log = logging.getLogger("gexbot.test")
    log.info("hello %s", "world")
    log.warning("careful")
    info, warning = _lines(out)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d hello world", info)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING careful", warning)


def test_event_lines_carry_their_own_minute_instead_of_wall_time() -> None:
    out = io.StringIO()
    setup_logging("INFO", "text", [], stream=out)
    line = "2026-11-20 10:31:00 ES  LONG     fill 6,801.25"
    logging.getLogger("gexbot.notify").info("%s", line, extra={EVENT_AT: "2026-11-20T10:31"})
    assert _lines(out) == [line]


def test_json_lines_are_one_object_each_with_extras() -> None:
    out = io.StringIO()
    setup_logging("INFO", "json", [], stream=out)
    log = logging.getLogger("gexbot.test")
    log.info("closed %s", "LONG", extra={"pnl": 5.44, "exit_reason": "TARGET"})
    log.error("second")
    first, second = (json.loads(line) for line in _lines(out))
    assert first["level"] == "INFO"
    assert first["logger"] == "gexbot.test"
    assert first["msg"] == "closed LONG"
    assert first["pnl"] == 5.44
    assert first["exit_reason"] == "TARGET"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["ts"])
    assert second["level"] == "ERROR"
    assert second["msg"] == "second"


def test_json_lines_include_the_traceback() -> None:
    out = io.StringIO()
    setup_logging("INFO", "json", [], stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("gexbot.test").exception("failed")
    record = json.loads(_lines(out)[0])
    assert record["msg"] == "failed"
    assert "RuntimeError: boom" in record["exc"]


def test_level_filters_records() -> None:
    out = io.StringIO()
    setup_logging("warning", "text", [], stream=out)
    log = logging.getLogger("gexbot.test")
    log.info("hidden")
    log.warning("shown")
    assert len(_lines(out)) == 1
    assert _lines(out)[0].endswith("WARNING shown")


def test_level_comes_from_argument_then_environment_then_info() -> None:
    assert resolve_level("debug", {"GEXBOT_LOG_LEVEL": "ERROR"}) == logging.DEBUG
    assert resolve_level(None, {"GEXBOT_LOG_LEVEL": "error"}) == logging.ERROR
    assert resolve_level(None, {}) == logging.INFO
    assert resolve_level(None, {"GEXBOT_LOG_LEVEL": " "}) == logging.INFO


def test_invalid_level_is_a_config_error_naming_its_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError, match=r"--log-level: unknown log level 'LOUD'"):
        setup_logging("LOUD", "text", [], stream=io.StringIO())
    env = {"GEXBOT_LOG_LEVEL": "verbose"}
    with pytest.raises(ConfigError, match=r"GEXBOT_LOG_LEVEL: unknown log level 'verbose'"):
        setup_logging(None, "text", [], env=env, stream=io.StringIO())
    monkeypatch.setenv("GEXBOT_LOG_LEVEL", "verbose")  # only the environment given counts
    setup_logging(None, "text", [], stream=io.StringIO())


def test_invalid_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--log-format"):
        setup_logging("INFO", "xml", [], stream=io.StringIO())  # type: ignore[arg-type]


def test_lines_go_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "text", [])
    logging.getLogger("gexbot.test").info("to stdout")
    captured = capsys.readouterr()
    assert captured.out.rstrip().endswith("to stdout")
    assert "to stdout" not in captured.err


def test_second_setup_replaces_the_first_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging("INFO", "text", [], stream=first)
    setup_logging("INFO", "text", [], stream=second)
    logging.getLogger("gexbot.test").info("once")
    assert first.getvalue() == ""
    assert len(_lines(second)) == 1


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_reaches_the_output(fmt: str) -> None:
    out = io.StringIO()
    hostile = [HOSTILE_KEY, HOSTILE_SECRET, basic(HOSTILE_KEY, HOSTILE_SECRET)]
    redactor = setup_logging(
        "DEBUG", fmt, [APP_KEY, APP_SECRET, WEBHOOK, *hostile], stream=out  # type: ignore[arg-type]
    )
    redactor.add(ACCESS_TOKEN)
    log = logging.getLogger("gexbot.test")
    secrets = [APP_KEY, APP_SECRET, WEBHOOK, ACCESS_TOKEN, *hostile]
    logged = 0
    for secret in secrets:
        log.warning("as argument %s in %r", secret, {"token": secret})
        for form in spellings(secret):
            logged += 1
            log.info("plain " + form)
            log.warning("as argument %s", form)
            log.info("as extra", extra={"url": f"https://x.example/?code={form}"})
            try:
                raise ValueError(f"server said: {form}")
            except ValueError:
                log.exception("request failed for %s", form)
    log.debug('POST /api/webhooks/123456/Tok_en-XYZ987 HTTP/1.1" 204 0')
    text = out.getvalue()
    assert text.count("***") >= logged * 3
    assert leaks(text, hostile) == []
    assert leaks(text, secrets, pieces=False) == []
    assert "Tok_en-XYZ987" not in text
    assert "ValueError: server said: ***" in text.replace("\\n", "\n")


def test_a_malformed_call_is_still_redacted() -> None:
    record = logging.LogRecord("t", logging.INFO, "", 0, "%d apples", (APP_KEY,), None)
    Redactor([APP_KEY]).filter(record)
    assert record.getMessage() == "%d apples ('***',)"


def test_redactor_masks_longest_secret_first_and_ignores_empty() -> None:
    redactor = Redactor(["abc-def-ghi-jkl", "", "abc-def-ghi-jkl-mno"])
    assert redactor.redact("xx abc-def-ghi-jkl-mno yy abc-def-ghi-jkl") == "xx *** yy ***"


def test_a_secret_too_short_to_mask_is_refused() -> None:
    with pytest.raises(ValueError, match="a secret of 3 characters is too short to mask"):
        Redactor(["abc"])


def test_redactor_added_later_applies_to_next_records() -> None:
    out = io.StringIO()
    redactor = setup_logging("INFO", "text", [], stream=out)
    log = logging.getLogger("gexbot.test")
    log.info("token %s", ACCESS_TOKEN)
    redactor.add(ACCESS_TOKEN)
    log.info("token %s", ACCESS_TOKEN)
    before, after = _lines(out)
    assert before.endswith(f"token {ACCESS_TOKEN}")
    assert after.endswith("token ***")
