"""Stop signals from the first instant: SIGINT, SIGTERM and SIGHUP end the daemon cleanly.

Starting the daemon imports for about a second; a signal then used to kill it without a word
(SIGTERM, SIGHUP), and SIGHUP mid-run killed it with up to 120 decided minutes unwritten. The
processes here are real, signalled as soon as their handler is in place (read from
/proc/<pid>/status, so no test sleeps through a guessed start-up time).
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from cli_state import process_state_restored

from gexbot import live, reconcile, train_hmm
from gexbot.shell import signals

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="reads which signals a process handles from /proc")
SIM = ["--variant", "es", "--source", "sim", "--start", "2026-10-05", "--speed", "max"]


def _handles(pid: int, sig: signal.Signals) -> bool:
    """Whether process `pid` has its own handler for `sig` in place."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    found = re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.MULTILINE)
    return found is not None and bool(int(found.group(1), 16) >> (sig - 1) & 1)


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gexbot.live", *SIM, *args, "--db", str(tmp_path / "x.db")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _signal_when_handled(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Send `sig` as soon as the daemon's handlers are in (SIGHUP's is the last installed;
    Python handles SIGINT from its own start, so that one cannot tell)."""
    while not _handles(process.pid, signal.SIGHUP):
        try:
            process.wait(timeout=0.002)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail("the daemon ended before handling the signal")
    process.send_signal(sig)


def _consistent(db: Path) -> int:
    """Decided minutes in `db`, checked: each once, one after another within a session, the
    saved state at the last one."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute('SELECT "at" FROM decisions ORDER BY "at"').fetchall()
        state = con.execute('SELECT "at" FROM state').fetchall()
    minutes = [row[0] for row in rows]
    assert len(set(minutes)) == len(minutes)
    for a, b in itertools.pairwise(minutes):
        assert (b - a).total_seconds() == 60 or b.date() > a.date(), (a, b)
    assert state == ([(minutes[-1],)] if minutes else [])
    return len(minutes)


@pytest.mark.parametrize("sig", signals.STOP_SIGNALS, ids=lambda s: s.name)
def test_a_stop_signal_at_start_ends_the_daemon_cleanly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    process = _start(tmp_path, "--days", "1")
    _signal_when_handled(process, sig)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert f"{sig.name} received" in output
    assert "Traceback" not in output
    db = tmp_path / "x.db"
    if db.exists():  # the signal came once the database was open: every minute kept
        _consistent(db)
    else:
        assert "stopped before the first minute" in output


def test_sighup_mid_run_writes_every_decided_minute(tmp_path: Path) -> None:
    process = _start(tmp_path, "--days", "3")
    assert process.stdout is not None
    for line in process.stdout:
        if " SESSION " in line:
            break
    process.send_signal(signal.SIGHUP)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert "SIGHUP received: finishing the current minute" in output
    assert 0 < _consistent(tmp_path / "x.db") < 3 * 390


def test_handlers_are_in_place_before_the_heavy_imports() -> None:
    code = ("import sys; from gexbot.shell import signals; signals.install_early();"
            " import signal; print(all(callable(signal.getsignal(s))"
            " for s in signals.STOP_SIGNALS), 'pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: S603
                          check=True, timeout=60)
    assert done.stdout.split() == ["True", "False"]


def test_a_second_signal_stops_at_once() -> None:
    request = signals.StopRequest()
    saved = {sig: signal.getsignal(sig) for sig in signals.STOP_SIGNALS}
    said: list[str] = []
    try:
        request.install(said.append)
        signal.raise_signal(signal.SIGHUP)
        assert request.event.is_set()
        assert said == ["SIGHUP"]
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_signal_before_anyone_could_say_so_is_said_later() -> None:
    request = signals.StopRequest()
    saved = {sig: signal.getsignal(sig) for sig in signals.STOP_SIGNALS}
    said: list[str] = []
    try:
        request.install()
        signal.raise_signal(signal.SIGTERM)
        assert said == []
        request.install(said.append)
        assert said == ["SIGTERM"]
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@pytest.fixture
def restored() -> Iterator[None]:
    """Signal handlers and log handlers as they were, after an in-process command."""
    with process_state_restored():
        yield


def test_an_interrupted_training_says_nothing_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restored: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def signalled(*_args: object, **_kwargs: object) -> None:
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(train_hmm, "fit_hmm", signalled)
    out = tmp_path / "hmm_es.json"
    code = train_hmm.main(["--variant", "es", "--source", "sim", "--end", "2026-09-30",
                           "--sessions", "2", "--out", str(out)])
    assert code == 2
    assert "stopped before a model was written: nothing written" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_reconciliation_gives_no_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restored: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, folder = tmp_path / "live.db", tmp_path / "recordings"
    assert live.main([*SIM, "--days", "1", "--minutes", "5", "--db", str(db),
                      "--record", str(folder)]) == 0

    def signalled(*_args: object, **_kwargs: object) -> None:
        signal.raise_signal(signal.SIGHUP)

    monkeypatch.setattr(reconcile, "_replay", signalled)
    capsys.readouterr()
    assert reconcile.main(["--db", str(db), "--replay", str(folder)]) == 2
    said = capsys.readouterr().out
    assert "stopped before the comparison finished: no verdict" in said
    assert "identical" not in said
