"""SIGKILL the daemon at random moments of a simulated multi-day run, restart it, compare tables.

    python bench/kill_restart.py                  # 30 kills over 3 ES sessions, seed 3
    python bench/kill_restart.py --kills 100 --days 5 --rng 11

An uninterrupted run of `python -m gexbot.live --source sim --speed max` writes the reference
database. Then the same command runs on a fresh database and is killed with SIGKILL at a random
moment (uniform over the start-up and the part of the run still to go), restarted with the same
arguments, killed again, ... until it has used its kills, and finally runs to its end. Its
`trades` and `decisions` must equal the reference's row for row: nothing lost, nothing written
twice. Prints how many decisions were in the file after each kill (so one sees the kills spread
over the run, not all in start-up) and the verdict. The test suite runs a few kills through
`kill_and_restart`.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

TABLES = {
    "trades": 'SELECT * FROM trades ORDER BY "timestamp", entry_time',
    "decisions": 'SELECT * FROM decisions ORDER BY "at"',
}


@dataclass(frozen=True)
class Outcome:
    """What a kill-and-restart campaign saw."""

    kills: int
    progress: tuple[int, ...]
    """Decisions in the file after each kill."""
    restarts: int
    reference_s: float
    identical: bool
    differences: tuple[str, ...]


def daemon_command(db: Path, variant: str, days: int, start: str, seed: int) -> list[str]:
    """The daemon's command line for a simulated run into `db`."""
    return [
        sys.executable, "-m", "gexbot.live", "--variant", variant, "--source", "sim",
        "--days", str(days), "--start", start, "--seed", str(seed), "--speed", "max",
        "--db", str(db), "--log-level", "WARNING",
    ]


def table_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the compared tables, in a fixed order."""
    with duckdb.connect(str(db), read_only=True) as con:
        return {name: con.execute(sql).fetchall() for name, sql in TABLES.items()}


def _committed_minutes(db: Path) -> int:
    """Decisions in the file of a stopped daemon (0 when it never created its tables)."""
    if not db.exists():
        return 0
    with duckdb.connect(str(db), read_only=True) as con:
        found = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'decisions'"
        ).fetchone()
        if not found or not found[0]:
            return 0
        row = con.execute("SELECT count(*) FROM decisions").fetchone()
    return int(row[0]) if row is not None else 0


def kill_and_restart(
    folder: Path, kills: int, rng: random.Random, *, variant: str = "es", days: int = 3,
    start: str = "2026-10-05", seed: int = 3,
) -> Outcome:
    """Run the reference, then the killed-and-restarted run, and compare their tables."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference = folder / "reference.db"
    began = time.perf_counter()
    subprocess.run(  # noqa: S603 (our own interpreter and module)
        daemon_command(reference, variant, days, start, seed),
        check=True, capture_output=True, env=env, timeout=900,
    )
    reference_s = time.perf_counter() - began

    began = time.perf_counter()
    subprocess.run(  # noqa: S603 (our own interpreter and module)
        [*daemon_command(folder / "startup.db", variant, 1, start, seed), "--minutes", "1"],
        check=True, capture_output=True, env=env, timeout=900,
    )
    startup_s = time.perf_counter() - began
    total = len(table_rows(reference)["decisions"])

    victim = folder / "victim.db"
    command = daemon_command(victim, variant, days, start, seed)
    progress: list[int] = []
    restarts = 0
    for _ in range(kills):
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        remaining = 1.0 - (progress[-1] if progress else 0) / total
        time.sleep(rng.uniform(0.05, startup_s + remaining * (reference_s - startup_s)))
        finished = process.poll() is not None
        if not finished:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        restarts += 1
        if finished:
            break
        progress.append(_committed_minutes(victim))
        if progress[-1] == total:
            break
    subprocess.run(command, check=True, capture_output=True, env=env, timeout=900)  # noqa: S603

    expected, got = table_rows(reference), table_rows(victim)
    differences = tuple(
        f"{name}: {len(got[name])} rows, expected {len(expected[name])}"
        for name in TABLES
        if got[name] != expected[name]
    )
    return Outcome(
        kills=len(progress), progress=tuple(progress), restarts=restarts + 1,
        reference_s=reference_s, identical=not differences, differences=differences,
    )


def main() -> None:
    """Run a campaign and print what it saw."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--variant", default="es", choices=["es", "nq"])
    parser.add_argument("--rng", type=int, default=5, help="seed of the kill moments")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        outcome = kill_and_restart(
            Path(folder), args.kills, random.Random(args.rng), variant=args.variant,
            days=args.days,
        )
    print(f"reference run: {outcome.reference_s:.1f} s ({args.days} {args.variant} sessions)")
    print(f"kills: {outcome.kills} (rng seed {args.rng}), restarts: {outcome.restarts}")
    print(f"decisions in the file after each kill: {', '.join(map(str, outcome.progress))}")
    print("trades and decisions identical to the uninterrupted run:"
          f" {'yes' if outcome.identical else 'NO'}")
    for line in outcome.differences:
        print(f"  {line}")
    sys.exit(0 if outcome.identical else 1)


if __name__ == "__main__":
    main()
