"""Minutes a reader kept out of the database survive a kill; batches write in one go.

The reader and the killed daemon are real subprocesses, so the file locks are DuckDB's own.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_store import READER, closed, decided, minute, query, state, wait_minute

import gexbot.shell.journal as journal_module
from gexbot.core.types import Action, Closed
from gexbot.errors import StorageError
from gexbot.shell.journal import Journal, PendingMinute, journal_path, rejected_path
from gexbot.shell.schema import decision_row, trade_row
from gexbot.shell.state_codec import state_to_json
from gexbot.shell.store import Store

REPO = Path(__file__).resolve().parents[2]
JOURNALING_VICTIM = """
import sys
from pathlib import Path
from gexbot.shell.state_codec import state_to_json
from gexbot.shell.store import Store
from test_store import closed, decided, minute, state
with Store(Path(sys.argv[1]), "es", retry_wait=lambda s: None) as store:
    store.commit(minute(0), [decided(0)], state(0))
    print(0, flush=True)
    sys.stdin.readline()
    for n in range(1, 6):
        extra = [closed(n)] if n == 3 else []
        store.commit(minute(n), [decided(n), *extra], state(n, 100_000.0 + n))
        print(n, flush=True)
    sys.stdin.readline()
"""


def _reader(db: Path) -> subprocess.Popen[str]:
    reader = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", READER, str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "1"
    return reader


def _release(reader: subprocess.Popen[str]) -> None:
    assert reader.stdin is not None
    reader.stdin.close()
    assert reader.wait(timeout=60) == 0


def kill_es_while_a_reader_holds_the_file(db: Path) -> None:
    """An ES store writes minute 0, then journals minutes 1-5 (a reader holds the file) and is
    killed: minute 0 is in the file, 1-5 only in `<db>.es.pending`."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{Path(__file__).parent}"}
    with subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", JOURNALING_VICTIM, str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env=env,
    ) as victim:
        assert victim.stdout is not None
        assert victim.stdin is not None
        assert victim.stdout.readline().strip() == "0"
        reader = _reader(db)
        victim.stdin.write("go\n")
        victim.stdin.flush()
        assert [victim.stdout.readline().strip() for _ in range(5)] == ["1", "2", "3", "4", "5"]
        victim.send_signal(signal.SIGKILL)
    _release(reader)
    assert query(db, 'SELECT "at" FROM decisions') == [(minute(0),)]
    assert len(journal_path(db, "es").read_text().splitlines()) == 5


def test_daemon_killed_while_a_reader_holds_the_file_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "quant.db"
    kill_es_while_a_reader_holds_the_file(db)

    with caplog.at_level(logging.WARNING, logger="gexbot.store"), Store(db, "es") as store:
        restored = store.restore()
        assert restored is not None
        assert restored.last_minute == minute(5)
        assert restored.balance == 100_005.0
        assert store.pending_minutes == ()
    assert f"{db}: 5 minute(s) recovered from quant.db.es.pending" in caplog.messages
    assert not journal_path(db, "es").exists()
    assert query(db, 'SELECT "at" FROM decisions ORDER BY "at"') == [
        (minute(n),) for n in range(6)
    ]
    assert query(db, "SELECT count(*) FROM trades") == [(1,)]
    assert query(db, 'SELECT "at" FROM state') == [(minute(5),)]


def database_id(db: Path) -> str:
    """The id the database keeps for itself (journal lines must name it)."""
    ((identity,),) = query(db, "SELECT value FROM meta WHERE variant = '' AND key = 'database_id'")
    return str(identity)


def journal_of(db: Path, variant: str = "es", identity: str | None = None) -> Journal:
    """The journal a store of `variant` on `db` keeps (the database must exist)."""
    return Journal(db, variant, identity or database_id(db), logging.getLogger("test.journal"))


def pending(n: int, *extra: Closed, variant: str = "es") -> PendingMinute:
    """Minute `n` as the store journals it."""
    return PendingMinute(
        minute(n), (decision_row(decided(n, variant=variant)),),
        tuple(trade_row(event.trade) for event in extra), state_to_json(state(n)),
    )


def test_journal_already_written_to_the_file_is_not_written_again(tmp_path: Path) -> None:
    db = tmp_path / "quant.db"
    with Store(db, "es") as store:
        for n in range(3):
            wait_minute(store, n, *([closed(n)] if n == 1 else []))
    # A kill between the database write and the journal's removal leaves both behind.
    journal_of(db).append([pending(1, closed(1)), pending(2)])
    with Store(db, "es") as store:
        restored = store.restore()
        assert restored is not None
        assert restored.last_minute == minute(2)
    assert not journal_path(db, "es").exists()
    assert query(db, "SELECT count(*) FROM decisions") == [(3,)]
    assert query(db, "SELECT count(*) FROM trades") == [(1,)]


def test_a_line_cut_short_by_a_kill_is_set_aside_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "quant.db"
    Store(db, "es").open().close()
    journal = journal_of(db)
    journal.append([pending(0)])
    whole = journal.path.read_text()
    journal.path.write_text(whole + whole[: len(whole) // 2])
    with caplog.at_level(logging.WARNING, logger="test.journal"):
        items = journal.load()
    assert [item.minute for item in items] == [minute(0)]
    assert items[0].decisions == (decision_row(decided(0)),)
    assert caplog.messages == [
        f"{journal.path}: 1 line(s) set aside in quant.db.es.pending-rejected (first, line 2:"
        " not JSON (cut short by a kill?)); kept 1 minute(s)"
    ]
    assert rejected_path(db, "es").read_text() == whole[: len(whole) // 2] + "\n"


def test_journal_lines_keep_every_value_of_the_rows(tmp_path: Path) -> None:
    db = tmp_path / "quant.db"
    Store(db, "es").open().close()
    journal = journal_of(db)
    item = pending(4, closed(4))
    journal.append([item])
    (loaded,) = journal.load()
    assert loaded == item
    line = json.loads(journal.path.read_text())
    assert (line["format"], line["variant"], line["database"]) == (
        "gexbot-pending", "es", database_id(db)
    )


def test_batches_wait_in_memory_and_go_out_together(tmp_path: Path) -> None:
    db = tmp_path / "quant.db"
    durable = []
    with Store(db, "es", batch_minutes=4) as store:
        for n in range(12):
            durable.append(wait_minute(store, n, *([closed(n)] if n == 5 else [])))
            if n == 4:
                assert store.pending_minutes == (minute(3), minute(4))
                assert store.last_committed() == minute(2)
        # Batches of 1, 2, 4, then 4 again: a fresh start writes its first minute at once.
        assert durable == [True, False, True, False, False, False, True,
                           False, False, False, True, False]
        assert store.flush()
        assert store.last_committed() == minute(11)
        assert not wait_minute(store, 12)
    assert query(db, 'SELECT "at" FROM decisions ORDER BY "at"') == [
        (minute(n),) for n in range(13)
    ]
    assert query(db, "SELECT count(*) FROM trades") == [(1,)]
    assert query(db, 'SELECT "at" FROM state') == [(minute(12),)]


def test_a_batch_lost_to_a_kill_leaves_the_last_written_state(tmp_path: Path) -> None:
    db = tmp_path / "quant.db"
    store = Store(db, "es", batch_minutes=8).open()
    for n in range(5):
        store.commit(minute(n), [decided(n)], state(n))
    store._lock.release()  # what a kill leaves: minutes 3 and 4 never reached the file
    with Store(db, "es") as reopened:
        restored = reopened.restore()
        assert restored is not None
        assert restored.last_minute == minute(2)


def test_batch_size_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_minutes must be at least 1"):
        Store(tmp_path / "x.db", "es", batch_minutes=0)


def test_free_text_is_redacted_before_it_is_written(tmp_path: Path) -> None:
    db = tmp_path / "quant.db"

    def redact(text: str) -> str:
        return text.replace("tok-123", "***")

    with Store(db, "es", redact=redact) as store:
        store.commit(minute(0), [decided(0, action=Action.SKIP, features=None, blocked_by=(),
                                         reason="http_400: quotes: bad token tok-123")], state(0))
        store.set_meta("auth_refused", '{"message": "refused tok-123"}')
    assert query(db, "SELECT reason FROM decisions") == [("http_400: quotes: bad token ***",)]
    assert query(db, "SELECT value FROM meta WHERE variant = 'es'") == [
        ('{"message": "refused ***"}',)
    ]
    assert b"tok-123" not in db.read_bytes()


def test_a_full_disk_while_journaling_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "quant.db"
    with Store(db, "es", retry_wait=lambda _: None) as store:
        assert store.commit(minute(0), [decided(0)], state(0))
        reader = _reader(db)
        try:
            def full(_fd: int, _data: object) -> int:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(journal_module.os, "write", full)
            with pytest.raises(StorageError) as caught:
                store.commit(minute(1), [decided(1)], state(1))
            monkeypatch.undo()
        finally:
            _release(reader)
    assert str(caught.value).startswith(f"{db.with_name('quant.db.es.pending')}: no space left")
    assert "\n" not in str(caught.value)
