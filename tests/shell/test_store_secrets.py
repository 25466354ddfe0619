"""The journal and the database keep no secret, in any spelling, of the free text they hold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from secret_search import HOSTILE_KEY, HOSTILE_REFRESH, HOSTILE_SECRET, basic, leaks, spellings
from test_store import READER, decided, minute, state

from gexbot.core.types import Action
from gexbot.shell.journal import journal_path
from gexbot.shell.logs import Redactor
from gexbot.shell.store import Store

SECRETS = (HOSTILE_KEY, HOSTILE_SECRET, HOSTILE_REFRESH, basic(HOSTILE_KEY, HOSTILE_SECRET))


def _reasons() -> list[str]:
    """Skip reasons quoting each spelling of each secret, as an error text from Schwab may."""
    return [f"http_400: quotes: HTTP 400 (Bad Request: {form})"
            for secret in SECRETS for form in sorted(spellings(secret))]  # fmt: skip


def test_a_reason_quoting_a_secret_is_masked_in_the_journal_the_file_and_the_meta(
    tmp_path: Path,
) -> None:
    db = tmp_path / "quant.db"
    redactor = Redactor(SECRETS)
    reasons = _reasons()
    with Store(db, "es", retry_wait=lambda _s: None,
               redact=redactor.redact) as store:  # fmt: skip
        store.commit(minute(0), [decided(0)], state(0))
        with subprocess.Popen(  # noqa: S603 (our own interpreter and script)
            [sys.executable, "-c", READER, str(db)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        ) as reader:  # fmt: skip
            assert reader.stdout is not None
            assert reader.stdout.readline().strip() == "1"
            for n, reason in enumerate(reasons, start=1):
                skipped = decided(n, action=Action.SKIP, reason=reason, features=None,
                                  blocked_by=())  # fmt: skip
                store.commit(minute(n), [skipped], state(n))
            store.set_meta("auth_waiting", json.dumps({"message": reasons[-1]}))
            journal = journal_path(db, "es").read_bytes()
            assert journal.count(b"\n") == len(reasons)
            assert reader.stdin is not None
            reader.stdin.close()
            assert reader.wait(timeout=60) == 0
        assert leaks(journal, SECRETS) == []
        assert journal.count(b"***") >= len(reasons)
        store.flush()
    written = b"".join(path.read_bytes() for path in tmp_path.iterdir() if path.is_file())
    assert leaks(written, SECRETS) == []
