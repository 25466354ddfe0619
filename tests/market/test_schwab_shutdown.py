"""SIGTERM while Schwab does not answer: the daemon still exits 0 within 5 seconds.

A request stuck in a long read (or in a Retry-After wait) must not hold the process: the minute
is abandoned undecided and the request threads, daemon threads, die with the process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
from fake_schwab import Fault
from test_schwab_e2e import ISSUED, KEY, REFRESH, SECRET, _fake, at

REPO = Path(__file__).resolve().parents[2]


def _decided(db: Path) -> int:
    """Minutes in the file, 0 while it does not exist or the daemon is writing it."""
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            row = con.execute("SELECT count(*) FROM decisions").fetchone()
    except duckdb.Error:
        return 0
    return int(row[0]) if row is not None else 0


def test_sigterm_during_a_hanging_request_exits_0_within_5_seconds(tmp_path: Path) -> None:
    faults = [Fault("chains", at("09:32"), "slow", times=-1)]
    with _fake(faults) as fake:
        fake.slow_s = 40.0
        env = {
            **os.environ, "SCHWAB_APP_KEY": KEY, "SCHWAB_APP_SECRET": SECRET,
            "SCHWAB_REFRESH_TOKEN": REFRESH, "SCHWAB_REFRESH_TOKEN_ISSUED_AT": ISSUED.isoformat(),
            "GEXBOT_SCHWAB_BASE_URL": fake.base_url, "GEXBOT_SCHWAB_TIMEOUT_S": "30",
            "GEXBOT_TOKEN_FILE": str(tmp_path / "token.json"), "DISCORD_WEBHOOK_URL": "",
        }
        db = tmp_path / "x.db"
        command = [sys.executable, "-m", "gexbot.live", "--variant", "es", "--source", "schwab",
                   "--start", "2026-11-12", "--days", "1", "--speed", "60", "--db", str(db)]
        with subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            cwd=REPO,
        ) as daemon:
            deadline = time.monotonic() + 60
            while _decided(db) < 2:  # 09:30 and 09:31, one simulated minute a second
                assert time.monotonic() < deadline, "the daemon never decided 09:31"
                time.sleep(0.05)
            time.sleep(1.5)  # 09:32 has begun: its chain request is waiting on the fake
            asked = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            output, _ = daemon.communicate(timeout=60)
            took = time.monotonic() - asked
    assert daemon.returncode == 0, output
    assert took < 5.0, f"exit took {took:.1f} s"
    assert "the minute is left undecided" in output
    with duckdb.connect(str(db), read_only=True) as con:
        (last,) = con.execute('SELECT max("at") FROM decisions').fetchone() or (None,)
    assert last == at("09:31")
