"""A simulated run killed with SIGKILL at random moments and restarted ends as if never killed."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("kill_restart", REPO / "bench" / "kill_restart.py")
assert _spec is not None
assert _spec.loader is not None
kill_restart = importlib.util.module_from_spec(_spec)
sys.modules["kill_restart"] = kill_restart  # dataclasses look their module up by name
_spec.loader.exec_module(kill_restart)


def test_sigkill_at_random_moments_then_restart_gives_the_uninterrupted_tables(
    tmp_path: Path,
) -> None:
    seed = 20261201
    outcome = kill_restart.kill_and_restart(tmp_path, kills=5, rng=random.Random(seed), days=3)
    print(f"kill moments from random seed {seed}; decisions after each kill: {outcome.progress}")
    assert outcome.identical, outcome.differences
    assert outcome.restarts >= 2
    assert kill_restart.table_rows(tmp_path / "victim.db")["decisions"]
