"""Two variants on one database: each takes back only its own journal, state and meta.

The ES and the NQ daemon share one file. A journal (`<db>.<variant>.pending`), a state row and
every recovered minute belong to one variant and one database: here journals are left by a
killed process, renamed to the other variant, copied beside another database or left behind
by a renamed one, and nothing of one variant or database may reach another.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from test_journal import (
    _reader,
    _release,
    database_id,
    journal_of,
    kill_es_while_a_reader_holds_the_file,
    pending,
)
from test_store import decided, minute, query, state

from gexbot.errors import ConfigError
from gexbot.shell.journal import journal_path, legacy_journal_path, rejected_path
from gexbot.shell.store import RETRY_DELAY_S, START_RETRIES, Store

NQ_SPOT = 21_000.0


def _nq_minute(store: Store, n: int) -> None:
    assert store.commit(minute(n), [decided(n, variant="nq", spot=NQ_SPOT)], state(n, 50_000.0))


def test_nq_never_takes_back_the_minutes_or_the_state_of_a_killed_es_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "quant_trading_data.db"
    kill_es_while_a_reader_holds_the_file(db)
    es_journal = journal_path(db, "es").read_bytes()

    with caplog.at_level(logging.WARNING), Store(db, "nq") as nq:
        assert nq.restore() is None
        assert nq.pending_minutes == ()
        _nq_minute(nq, 0)
    assert caplog.messages == []
    assert journal_path(db, "es").read_bytes() == es_journal
    assert query(db, 'SELECT variant, "at", spot FROM decisions WHERE variant = \'nq\'') == [
        ("nq", minute(0), NQ_SPOT)
    ]
    assert query(db, "SELECT variant, count(*) FROM decisions GROUP BY 1 ORDER BY 1") == [
        ("es", 1), ("nq", 1)
    ]

    with Store(db, "es") as es:
        restored = es.restore()
        assert restored is not None
        assert (restored.last_minute, restored.balance) == (minute(5), 100_005.0)
    with Store(db, "nq") as nq:
        again = nq.restore()
        assert again is not None
        assert (again.last_minute, again.balance) == (minute(0), 50_000.0)
    assert query(db, "SELECT variant, count(*) FROM decisions GROUP BY 1 ORDER BY 1") == [
        ("es", 6), ("nq", 1)
    ]
    assert query(db, "SELECT DISTINCT variant FROM trades") == [("es",)]
    assert query(db, "SELECT min(spot), max(spot) FROM decisions WHERE variant = 'nq'") == [
        (NQ_SPOT, NQ_SPOT)
    ]


def test_a_journal_renamed_to_the_other_variant_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "quant.db"
    Store(db, "es").open().close()
    journal_of(db).append([pending(1), pending(2)])
    lines = journal_path(db, "es").read_bytes()
    journal_path(db, "es").rename(journal_path(db, "nq"))
    with caplog.at_level(logging.WARNING, logger="gexbot.store"), Store(db, "nq") as nq:
        assert nq.restore() is None
        assert nq.pending_minutes == ()
    assert caplog.messages == [
        f"{journal_path(db, 'nq')}: 2 line(s) set aside in quant.db.nq.pending-rejected"
        " (first, line 1: a minute of variant 'es', not 'nq'); kept 0 minute(s)"
    ]
    assert rejected_path(db, "nq").read_bytes() == lines
    assert not journal_path(db, "nq").exists()
    assert query(db, "SELECT count(*) FROM decisions") == [(0,)]
    assert query(db, "SELECT count(*) FROM state") == [(0,)]


def test_lines_naming_one_variant_but_carrying_another_are_set_aside(tmp_path: Path) -> None:
    db = tmp_path / "quant.db"
    Store(db, "nq").open().close()
    journal_of(db, "nq").append([pending(1, variant="es"), pending(2, variant="nq")])
    with Store(db, "nq") as nq:
        restored = nq.restore()
        assert restored is not None
        assert restored.last_minute == minute(2)
    assert query(db, 'SELECT variant, "at" FROM decisions') == [("nq", minute(2))]
    assert len(rejected_path(db, "nq").read_text().splitlines()) == 1


def test_a_journal_copied_beside_another_database_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, other = tmp_path / "first.db", tmp_path / "other.db"
    Store(first, "es").open().close()
    Store(other, "es").open().close()
    assert database_id(first) != database_id(other)
    journal_of(first).append([pending(1), pending(2)])
    shutil.copy(journal_path(first, "es"), journal_path(other, "es"))
    with caplog.at_level(logging.WARNING, logger="gexbot.store"), Store(other, "es") as store:
        assert store.restore() is None
    assert "(first, line 1: a minute of another database); kept 0 minute(s)" in caplog.text
    assert query(other, "SELECT count(*) FROM decisions") == [(0,)]
    with Store(first, "es") as store:
        restored = store.restore()
        assert restored is not None
        assert restored.last_minute == minute(2)


def test_a_renamed_database_takes_its_journal_along_and_nothing_else(tmp_path: Path) -> None:
    old, new = tmp_path / "quant.db", tmp_path / "renamed.db"
    Store(old, "es").open().close()
    journal_of(old).append([pending(1), pending(2)])
    old.rename(new)
    # The journal moves along with the database, and a copy stays behind under the old name.
    shutil.copy(journal_path(old, "es"), journal_path(new, "es"))
    with Store(new, "es") as store:
        restored = store.restore()
        assert restored is not None
        assert restored.last_minute == minute(2)
    # A new database under the old name is another database: the journal left there is not its.
    with Store(old, "es") as store:
        assert store.restore() is None
    assert query(old, "SELECT count(*) FROM decisions") == [(0,)]
    assert len(rejected_path(old, "es").read_text().splitlines()) == 2


def test_a_journal_of_an_older_gexbot_is_left_alone_and_never_taken_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "quant.db"
    legacy = legacy_journal_path(db)
    old_line = (
        '{"format":"gexbot-pending","version":1,"minute":"2026-11-17T10:32:00-05:00",'
        '"decisions":[],"trades":[],"state":"{}"}\n'
    )
    legacy.write_text(old_line)
    for variant in ("es", "nq"):
        with caplog.at_level(logging.WARNING, logger="gexbot.store"), Store(db, variant) as s:
            assert s.restore() is None
    assert legacy.read_text() == old_line
    assert caplog.messages[0].startswith(f"{legacy} was left by an older gexbot")
    assert query(db, "SELECT count(*) FROM decisions") == [(0,)]


def test_state_and_meta_rows_are_read_per_variant(tmp_path: Path) -> None:
    db = tmp_path / "quant.db"
    with Store(db, "es") as es:
        es.commit(minute(3), [decided(3)], state(3, 101_000.0))
        es.set_meta("auth_refused", "es refusal")
    with Store(db, "nq") as nq:
        assert nq.restore() is None
        assert nq.last_committed() is None
        assert nq.get_meta("auth_refused") is None
        _nq_minute(nq, 1)
    with Store(db, "es") as es, Store(db, "nq") as nq:
        es_state, nq_state = es.restore(), nq.restore()
        assert es_state is not None
        assert nq_state is not None
        assert (es_state.last_minute, es_state.balance) == (minute(3), 101_000.0)
        assert (nq_state.last_minute, nq_state.balance) == (minute(1), 50_000.0)
        assert es.get_meta("auth_refused") == "es refusal"
        assert nq.get_meta("auth_refused") is None


def test_a_start_waits_while_another_process_writes_then_opens(tmp_path: Path) -> None:
    db = tmp_path / "quant.db"
    with Store(db, "es") as es:
        es.commit(minute(0), [decided(0)], state(0))
    holder = _reader(db)  # the ES daemon writing a large batch, as NQ starts
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 10:
            _release(holder)

    try:
        with Store(db, "nq", retry_wait=wait) as nq:
            assert nq.restore() is None
    finally:
        if holder.poll() is None:
            _release(holder)
    assert waits == [RETRY_DELAY_S] * 10


def test_a_start_refuses_in_one_line_when_the_file_stays_held(tmp_path: Path) -> None:
    db = tmp_path / "quant.db"
    with Store(db, "es") as es:
        es.commit(minute(0), [decided(0)], state(0))
    holder = _reader(db)
    waits: list[float] = []
    try:
        with pytest.raises(ConfigError, match="held open by another process"):
            Store(db, "nq", retry_wait=waits.append).open()
    finally:
        _release(holder)
    assert waits == [RETRY_DELAY_S] * START_RETRIES
