"""The DuckDB store: schema, rows, restore, idempotency, atomicity, readers and the lock.

Rows are checked by reading the file with a separate DuckDB connection, not through the store,
against values written out here by hand. Other processes (a reader, a second daemon) are real
subprocesses synchronised through pipes.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

import gexbot.shell.store as store_module
from gexbot.core.session import EASTERN
from gexbot.core.types import (
    EMPTY,
    Action,
    Blocker,
    Closed,
    Decided,
    Direction,
    Event,
    ExitReason,
    Features,
    GexRegime,
    HmmState,
    Position,
    State,
    Trade,
    frozen_array,
)
from gexbot.errors import ConfigError
from gexbot.shell import reader
from gexbot.shell.journal import journal_path
from gexbot.shell.store import RETRY_DELAY_S, Store

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 17, 10, 31, tzinfo=EASTERN)
FEATURES = Features(
    net_gex=1.25e9, gex_regime=GexRegime.POSITIVE, excluded_contracts=3, ofi=0.42,
    hurst=0.37, hmm_state=HmmState.LOW, band_mid=6801.5, band_upper=6812.0,
    band_lower=6791.0, band_sigma=5.25,
)
READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM decisions").fetchone()[0], flush=True)
sys.stdin.readline()
"""
SECOND_DAEMON = """
import sys
from pathlib import Path
from gexbot.errors import ConfigError
from gexbot.shell.store import Store
try:
    Store(Path(sys.argv[1]), "es").open().close()
except ConfigError as problem:
    print(problem)
else:
    print("opened")
"""
CRASHER = """
import sys
from pathlib import Path
from gexbot.shell.store import Store
from test_store import MINUTES, ONE, T0, closed, decided, minute, state
with Store(Path(sys.argv[1]), "es", batch_minutes=8 if sys.argv[2] == "batch" else 1) as store:
    saved = store.restore()
    start = 0 if saved is None else (saved.last_minute - T0) // ONE + 1
    for n in range(start, MINUTES):
        balance = 100_000.0 + n
        store.commit(minute(n), [decided(n, balance=balance), closed(n)], state(n, balance))
        print(n, flush=True)
"""
MINUTES = 40
ONE = timedelta(minutes=1)


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def decided(n: int, **changes: Any) -> Decided:
    values: dict[str, Any] = {
        "variant": "es", "at": minute(n), "spot": 6805.25, "features": FEATURES,
        "position": None, "target": None, "stop": None, "action": Action.WAIT, "reason": None,
        "blocked_by": (Blocker.HMM, Blocker.BAND), "balance": 100_000.0,
    }
    return Decided(**{**values, **changes})


def state(n: int, balance: float = 100_000.0, position: Position | None = None) -> State:
    return State(
        balance=balance, position=position, cooldown_until=None, session_date=T0.date(),
        prices=frozen_array([6800.0 + n, 6801.5]), ofi_samples=EMPTY, first_spot=6799.0,
        previous_close=6790.0, day_start_balance=100_000.0, day_trades=0, last_minute=minute(n),
    )


def closed(n: int) -> Closed:
    trade = Trade(
        variant="es", symbol="$SPX", direction=Direction.LONG, bucket="REVERSION",
        entry_time=minute(n - 7), entry_price=6790.25, exit_time=minute(n), exit_price=6801.5,
        size_usd=4200.0, exit_regime=GexRegime.POSITIVE, exit_reason=ExitReason.TARGET,
        pnl=6.958,
    )
    return Closed(trade=trade, balance=100_006.958)


def wait_minute(store: Store, n: int, *extra: Event) -> bool:
    return store.commit(minute(n), [decided(n), *extra], state(n))


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the file the way a user would, with a connection of its own."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "quant.db"


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def store(db: Path, waits: list[float]) -> Iterator[Store]:
    with Store(db, "es", retry_wait=waits.append) as opened:
        yield opened


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_tables_have_the_documented_columns_in_order(store: Store, db: Path) -> None:
    store.close()
    trades = query(db, "DESCRIBE trades")
    decisions = query(db, "DESCRIBE decisions")
    assert [row[0] for row in trades] == [
        "timestamp", "symbol", "action", "price", "size", "regime", "pnl",
        "entry_time", "entry_price", "exit_reason", "bucket", "variant",
    ]
    assert [row[0] for row in decisions] == [
        "variant", "at", "spot", "net_gex", "gex_regime", "ofi", "hurst", "hmm_state",
        "band_mid", "band_upper", "band_lower", "position", "target", "stop", "action",
        "reason", "blocked_by", "balance", "excluded_contracts",
    ]
    zoned = "TIMESTAMP WITH TIME ZONE"
    assert {row[0]: row[1] for row in trades}["timestamp"] == zoned
    assert {row[0]: row[1] for row in decisions}["at"] == zoned


def test_decisions_round_trip_with_and_without_features(store: Store, db: Path) -> None:
    short = decided(
        2, action=Action.SHORT, position=Direction.SHORT, target=6801.5, stop=6830.75,
        blocked_by=(), balance=99_990.5,
    )
    skip = decided(1, spot=None, features=None, action=Action.SKIP, blocked_by=(),
                   reason="quote_missing: no quote for $SPX")
    assert store.commit(minute(0), [decided(0)], state(0))
    assert store.commit(minute(1), [skip], state(1))
    assert store.commit(minute(2), [short], state(2))
    store.close()
    rows = query(db, 'SELECT * FROM decisions ORDER BY "at"')
    full = (1.25e9, "POSITIVE", 0.42, 0.37, "LOW", 6801.5, 6812.0, 6791.0)
    assert rows == [
        ("es", minute(0), 6805.25, *full, None, None, None, "WAIT", None, "hmm,band",
         100_000.0, 3),
        ("es", minute(1), None, *(None,) * 8, None, None, None, "SKIP",
         "quote_missing: no quote for $SPX", None, 100_000.0, None),
        ("es", minute(2), 6805.25, *full, "SHORT", 6801.5, 6830.75, "SHORT", None, None,
         99_990.5, 3),
    ]
    assert all(row[1].utcoffset() is not None for row in rows)


def test_closed_event_becomes_one_trade_row(store: Store, db: Path) -> None:
    close = decided(0, action=Action.CLOSE, reason="TARGET", blocked_by=(Blocker.POSITION,))
    assert store.commit(minute(0), [close, closed(0)], state(0, 100_006.958))
    store.close()
    assert query(db, "SELECT * FROM trades") == [
        (minute(0), "$SPX", "LONG", 6801.5, 4200.0, "POSITIVE", 6.958,
         minute(-7), 6790.25, "TARGET", "REVERSION", "es"),
    ]
    assert query(db, "SELECT reason, blocked_by FROM decisions") == [("TARGET", "position")]


def test_frames_read_back_new_york_times(store: Store, db: Path) -> None:
    wait_minute(store, 0, closed(0))
    trades, decisions = reader.trades_frame(db, "es"), reader.decisions_frame(db)
    assert str(trades["timestamp"].dt.tz) == "America/New_York"
    assert trades["timestamp"].tolist() == [minute(0)]
    assert trades["entry_time"].tolist() == [minute(-7)]
    assert decisions["at"].tolist() == [minute(0)]
    assert reader.trades_frame(db, "nq").empty
    assert reader.decisions_frame(db, since=minute(1)).empty


def test_state_is_restored_after_reopening(db: Path) -> None:
    position = Position(
        direction=Direction.SHORT, bucket="REVERSION", entry_time=minute(3),
        entry_price=6812.75, size_usd=2345.5, target=6801.25, stop=6830.5,
        entry_regime=GexRegime.POSITIVE, session_date=date(2026, 11, 17),
    )
    with Store(db, "es") as first:
        assert first.restore() is None
        assert first.last_committed() is None
        first.commit(minute(3), [decided(3)], state(3, 99_876.5, position))
    with Store(db, "es") as second:
        back = second.restore()
        assert second.last_committed() == minute(3)
    assert back is not None
    assert (back.balance, back.position, back.last_minute) == (99_876.5, position, minute(3))
    assert back.prices.tobytes() == frozen_array([6803.0, 6801.5]).tobytes()


def test_same_minute_twice_writes_once_and_state_never_goes_back(db: Path) -> None:
    with Store(db, "es") as store:
        assert store.commit(minute(5), [decided(5), closed(5)], state(5, 100_006.958))
        assert store.commit(minute(5), [decided(5), closed(5)], state(5, 1.0))
        assert store.commit(minute(4), [decided(4)], state(4, 2.0))
    with Store(db, "es") as rerun:
        assert rerun.commit(minute(5), [decided(5), closed(5)], state(5, 3.0))
        restored = rerun.restore()
    assert restored is not None
    assert restored.balance == 100_006.958
    assert query(db, 'SELECT "at" FROM decisions') == [(minute(5),)]
    assert query(db, "SELECT count(*) FROM trades") == [(1,)]


def test_failure_inside_the_transaction_leaves_nothing_of_the_minute(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(con: duckdb.DuckDBPyConnection, rows: object) -> None:
        raise RuntimeError("disk on fire")

    with Store(db, "es") as store:
        wait_minute(store, 0)
        monkeypatch.setattr(store_module, "write_trades", broken)
        with pytest.raises(RuntimeError, match="disk on fire"):
            store.commit(minute(1), [decided(1), closed(1)], state(1, 100_006.958))
        assert reader.decisions_frame(db)["at"].tolist() == [minute(0)]
        assert reader.trades_frame(db).empty
        assert store.last_committed() == minute(0)
        restored = store.restore()
        assert restored is not None
        assert restored.last_minute == minute(0)
        assert query(db, 'SELECT "at" FROM state') == [(minute(0),)]
        monkeypatch.undo()
    assert query(db, 'SELECT "at" FROM decisions ORDER BY "at"') == [(minute(0),), (minute(1),)]
    assert query(db, 'SELECT "at" FROM state') == [(minute(1),)]


def test_reader_holding_the_file_leaves_minutes_pending_then_all_are_written(
    store: Store, db: Path, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    assert wait_minute(store, 0)
    with subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", READER, str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as reader:
        try:
            assert reader.stdout is not None
            assert reader.stdout.readline().strip() == "1"
            with caplog.at_level(logging.WARNING, logger="gexbot.store"):
                assert wait_minute(store, 1)
                assert wait_minute(store, 2, closed(2))
            assert store.pending_minutes == (minute(1), minute(2))
            assert len(journal_path(db, "es").read_text().splitlines()) == 2
            assert waits == [RETRY_DELAY_S] * 6
            assert [record.getMessage() for record in caplog.records] == [
                f"{db}: database held by another process (a reader or the other variant's"
                " daemon); 1 minute(s) pending",
                f"{db}: database held by another process (a reader or the other variant's"
                " daemon); 2 minute(s) pending",
            ]
            assert not store.flush()
        finally:
            assert reader.stdin is not None
            reader.stdin.close()
            assert reader.wait(timeout=60) == 0
    assert wait_minute(store, 3)
    assert store.pending_minutes == ()
    assert not journal_path(db, "es").exists()
    assert store.last_committed() == minute(3)
    store.close()
    assert query(db, 'SELECT "at" FROM decisions ORDER BY "at"') == [
        (minute(0),), (minute(1),), (minute(2),), (minute(3),)
    ]
    assert query(db, "SELECT count(*) FROM trades") == [(1,)]
    assert query(db, 'SELECT "at" FROM state') == [(minute(3),)]


@pytest.mark.parametrize("mode", ["batch", "per-commit"])
def test_sigkill_at_any_moment_then_restart_loses_and_doubles_nothing(db: Path, mode: str) -> None:
    command = [sys.executable, "-c", CRASHER, str(db), mode]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{Path(__file__).parent}"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as victim:  # noqa: S603
        assert victim.stdout is not None
        seen = [victim.stdout.readline() for _ in range(20)]
        victim.kill()
    assert seen[-1].strip() == "19"
    ((at, text),) = query(db, 'SELECT "at", state FROM state')
    last = (at - T0) // ONE
    assert last >= (19 if mode == "per-commit" else 19 - 7)  # a batch holds up to 8 minutes
    assert query(db, 'SELECT "at" FROM decisions ORDER BY "at"') == [
        (minute(n),) for n in range(last + 1)
    ]
    assert query(db, "SELECT count(*), max(pnl) FROM trades") == [(last + 1, 6.958)]
    assert f'"balance":{100_000.0 + last}' in text
    subprocess.run(command, env=env, capture_output=True, timeout=120, check=True)  # noqa: S603
    assert query(db, 'SELECT count(DISTINCT "at"), count(*) FROM decisions') == [
        (MINUTES, MINUTES)
    ]
    assert query(db, "SELECT count(DISTINCT entry_time), count(*) FROM trades") == [
        (MINUTES, MINUTES)
    ]
    assert query(db, 'SELECT "at" FROM state') == [(minute(MINUTES - 1),)]


def test_batched_writes_leave_the_file_free_in_between(db: Path) -> None:
    with Store(db, "es", batch_minutes=4) as store:
        for n in range(4):
            wait_minute(store, n)
        assert store.pending_minutes == (minute(3),)
        done = subprocess.run(  # noqa: S603 (our own interpreter and script)
            [sys.executable, "-c", READER, str(db)],
            input="", capture_output=True, text=True, timeout=60, check=True,
        )
    assert done.stdout.strip() == "3"
    assert query(db, "SELECT count(*) FROM decisions") == [(4,)]


def test_second_daemon_on_the_same_file_is_refused(store: Store, db: Path) -> None:
    def second() -> str:
        done = subprocess.run(  # noqa: S603 (our own interpreter and script)
            [sys.executable, "-c", SECOND_DAEMON, str(db)],
            capture_output=True, text=True, env=_env(), timeout=60, check=True,
        )
        return done.stdout.strip()

    assert second() == (
        f"{db} is in use by another gexbot ES daemon (pid {os.getpid()});"
        " stop it or pass another --db"
    )
    store.close()
    assert second() == "opened"


def test_meta_is_kept_per_variant_and_survives_reopening(db: Path) -> None:
    with Store(db, "es") as store:
        assert store.get_meta("auth_failed") is None
        assert store.set_meta("auth_failed", "2026-11-17")
        assert store.set_meta("auth_failed", "2026-11-18")
    with Store(db, "nq") as other:
        assert other.get_meta("auth_failed") is None
    with Store(db, "es") as store:
        assert store.get_meta("auth_failed") == "2026-11-18"


def test_not_a_database_is_one_line_and_creates_nothing(db: Path) -> None:
    db.write_text("timestamp,symbol\n")
    with pytest.raises(ConfigError, match="is not a DuckDB database") as caught:
        Store(db, "es").open()
    assert "\n" not in str(caught.value)
    assert sorted(path.name for path in db.parent.iterdir()) == [db.name]


def test_seed_trades_table_is_extended_and_kept(db: Path) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute(
            'CREATE TABLE trades ("timestamp" TIMESTAMPTZ, symbol VARCHAR, action VARCHAR,'
            " price DOUBLE, size DOUBLE, regime VARCHAR, pnl DOUBLE)"
        )
        con.execute("INSERT INTO trades VALUES (?, '$SPX', 'SHORT', 6000, 1000, 'POSITIVE', 5)",
                    [minute(-60)])
    with Store(db, "es") as store:
        wait_minute(store, 0, closed(0))
    rows = query(db, 'SELECT "timestamp", pnl, variant FROM trades ORDER BY "timestamp"')
    assert rows == [(minute(-60), 5.0, None), (minute(0), 6.958, "es")]


def test_foreign_table_is_refused(db: Path) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE decisions (id INTEGER, note VARCHAR)")
    with pytest.raises(ConfigError, match="table decisions has columns id, note"):
        Store(db, "es").open()


def test_unreadable_saved_state_says_what_to_do(db: Path) -> None:
    with Store(db, "es") as store:
        wait_minute(store, 0)
    with duckdb.connect(str(db)) as con:
        con.execute("""UPDATE state SET state = '{"format": "gexbot-state", "version": 99}'""")
    with Store(db, "es") as store, pytest.raises(
        ConfigError, match=r"saved state unreadable \(version 99.*move the database aside"
    ):
        store.restore()


def test_events_of_another_variant_are_a_bug(store: Store) -> None:
    with pytest.raises(ValueError, match="nq"):
        store.commit(minute(0), [decided(0, variant="nq")], state(0))
    assert store.pending_minutes == ()
