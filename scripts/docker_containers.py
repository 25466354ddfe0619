"""The built images as containers: `docker run` of one variant on the simulated market.

Part of scripts/docker_e2e. A container gets its image's own CMD with the simulated market added,
and is checked from outside (Docker's health status, exit codes) and from inside (`docker exec`
of the small Python programs below, in the image's own interpreter).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from docker_engine import Failure, run, say, tail_of

SESSION = "2026-10-13"
"""A past session: every run decides the same simulated minutes, whatever the day."""
RESTART_MINUTES = 5
HEALTHY_WITHIN_S = 240.0
DUMP = """\
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
order = {"decisions": '"at"', "trades": '"timestamp", entry_time'}
print(json.dumps({name: [[str(value) for value in row] for row in con.execute(
    f"SELECT * FROM {name} WHERE variant = ? ORDER BY {by}", [sys.argv[2]]).fetchall()]
    for name, by in order.items()}))
"""
PID1 = """\
import json
fields = dict(line.split(":", 1) for line in open("/proc/1/status") if ":" in line)
print(json.dumps({"uid": fields["Uid"].split(), "gid": fields["Gid"].split(),
                  "argv": open("/proc/1/cmdline").read().split("\\0")[:-1]}))
"""
OWNERS = """\
import json, os
found = [["/data", os.lstat("/data").st_uid, os.lstat("/data").st_gid]]
for folder, dirs, files in os.walk("/data"):
    for name in dirs + files:
        path = os.path.join(folder, name)
        found.append([path, os.lstat(path).st_uid, os.lstat(path).st_gid])
print(json.dumps(found))
"""
METRICS = """\
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
except OSError:
    print("")  # not serving yet: nothing decided yet
"""


@dataclass(frozen=True)
class Image:
    """A built image and what the checks read from it."""

    variant: str
    id: str
    tag: str
    cmd: list[str]
    uid: str
    gid: str
    probe: str
    size_mb: float
    build_s: float

    def option(self, name: str) -> str:
        """The value of a CMD option (`--db` -> `/data/es.db`)."""
        if name not in self.cmd[:-1]:
            raise Failure(f"the {self.variant} image's CMD has no {name}")
        return self.cmd[self.cmd.index(name) + 1]


def sim_args(speed: float | None) -> list[str]:
    """What turns an image's CMD into a run on the simulated market."""
    pace = "max" if speed is None else f"{speed:g}"
    return ["--source", "sim", "--start", SESSION, "--days", "1", "--speed", pace]


def inspect(container: str) -> dict[str, Any]:
    """`docker inspect` of a container."""
    found: dict[str, Any] = json.loads(run(["docker", "inspect", container], timeout=30).stdout)[0]
    return found


def docker_time(text: str) -> datetime:
    """A Docker timestamp (nanoseconds, Z) as a datetime."""
    found = re.fullmatch(r"([^.]+)(?:\.(\d+))?Z", text)
    if found is None:
        raise Failure(f"unexpected Docker time {text!r}")
    return datetime.fromisoformat(f"{found.group(1)}.{(found.group(2) or '0')[:6]:0<6}+00:00")


def wait_healthy(container: str) -> float:
    """Wait for Docker's health check to pass; seconds from the start to the passing probe."""
    deadline = time.monotonic() + HEALTHY_WITHIN_S
    while time.monotonic() < deadline:
        state = inspect(container)["State"]
        health = state.get("Health") or {}
        if health.get("Status") == "healthy":
            started = docker_time(state["StartedAt"])
            passed = [docker_time(p["End"]) for p in health.get("Log") or []
                      if p["ExitCode"] == 0 and docker_time(p["Start"]) >= started]  # fmt: skip
            healthy_at = passed[0] if passed else datetime.now(started.tzinfo)
            return (healthy_at - started).total_seconds()
        if not state["Running"] or health.get("Status") == "unhealthy":
            raise Failure(f"{container}: {health.get('Status') or state['Status']}"
                          f" (exit code {state['ExitCode']}) before it was healthy")
        time.sleep(0.5)
    raise Failure(f"{container}: not healthy within {HEALTHY_WITHIN_S:.0f} s")


def python_in(container: str, code: str, *args: str) -> Any:
    """Run Python code in a running container; its JSON output."""
    out = run(["docker", "exec", container, "python", "-c", code, *args], timeout=60).stdout
    return json.loads(out)


def check_process_and_volume(container: str, image: Image) -> None:
    """PID 1 is the daemon as the image's user, who owns everything on the volume."""
    pid1 = python_in(container, PID1)
    if pid1["argv"][:3] != image.cmd[:3] or image.variant not in pid1["argv"]:
        raise Failure(f"{container}: PID 1 is {' '.join(pid1['argv'])}, not the daemon")
    if image.uid in ("0", "root") or set(pid1["uid"]) != {image.uid}:
        raise Failure(f"{container}: the daemon runs as uid {pid1['uid']}, not {image.uid}")
    if set(pid1["gid"]) != {image.gid}:
        raise Failure(f"{container}: the daemon runs as gid {pid1['gid']}, not {image.gid}")
    owners = python_in(container, OWNERS)
    foreign = [f"{p} ({u}:{g})" for p, u, g in owners if (str(u), str(g)) != (image.uid, image.gid)]
    if foreign:
        raise Failure(f"{container}: not owned by {image.uid}:{image.gid}: {', '.join(foreign)}")
    paths = {p for p, _, _ in owners}
    db, record = image.option("--db"), image.option("--record")
    recordings = [p for p in paths if p.startswith(f"{record}/{image.variant}/")
                  and p.endswith(".jsonl.gz")]  # fmt: skip
    if db not in paths or not recordings:
        raise Failure(f"{container}: no {db} or no recording under {record}: {sorted(paths)}")


def stop(container: str, grace: int) -> float:
    """`docker stop`: seconds it took; exit code 0, well inside the grace period."""
    began = time.monotonic()
    run(["docker", "stop", "--time", str(grace), container], timeout=grace + 60)
    took = time.monotonic() - began
    state = inspect(container)["State"]
    if state["ExitCode"] != 0 or state.get("OOMKilled"):
        raise Failure(f"{container}: exit code {state['ExitCode']} after docker stop")
    if took > grace / 2:
        raise Failure(f"{container}: docker stop took {took:.1f} s of the {grace} s grace period")
    return took


def decided(container: str, image: Image) -> int:
    """Minutes the running daemon has decided since its start (from its /metrics)."""
    metrics = image.probe.rsplit("/", 1)[0] + "/metrics"
    out = run(["docker", "exec", container, "python", "-c", METRICS, metrics], timeout=60).stdout
    found = re.search(r"^gexbot_loop_latency_seconds_count (\S+)$", out, re.MULTILINE)
    if found is None and out.strip():
        raise Failure(f"{container}: /metrics has no gexbot_loop_latency_seconds_count")
    return int(float(found.group(1))) if found else 0


def tables(volume: str, image: Image) -> dict[str, list[list[str]]]:
    """The variant's decisions and trades on `volume`, read by a throwaway container."""
    out = run(["docker", "run", "--rm", "--network", "none", "-v", f"{volume}:/data", image.id,
               "python", "-c", DUMP, image.option("--db"), image.variant], timeout=300).stdout
    found: dict[str, list[list[str]]] = json.loads(out)
    return found


def variant_run(image: Image, run_id: str, grace: int, speed: float, keep: bool) -> str:
    """One variant on a fresh volume: started, checked, stopped, restarted, compared."""
    name, reference = f"{run_id}-{image.variant}", f"{run_id}-{image.variant}-reference"
    try:
        run(["docker", "run", "-d", "--name", name, "--network", "none", "-v", f"{name}:/data",
             "--stop-timeout", str(grace), image.id, *image.cmd, *sim_args(speed)],
            timeout=120)  # fmt: skip
        healthy_s = wait_healthy(name)
        say(f"{name}: healthy after {healthy_s:.1f} s")
        check_process_and_volume(name, image)
        stop_s = stop(name, grace)
        before = tables(name, image)
        say(f"{name}: stopped in {stop_s:.1f} s after {len(before['decisions'])} minutes;"
            " starting it again")
        run(["docker", "start", name], timeout=120)
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while decided(name, image) < RESTART_MINUTES:
            if time.monotonic() > deadline or not inspect(name)["State"]["Running"]:
                raise Failure(f"{name}: fewer than {RESTART_MINUTES} minutes after docker start")
            time.sleep(0.5)
        restop_s = stop(name, grace)
        after = tables(name, image)
        say(f"{name}: stopped again; an uninterrupted run of as many minutes to compare")
        first, total = len(before["decisions"]), len(after["decisions"])
        if total < first + RESTART_MINUTES or after["decisions"][:first] != before["decisions"]:
            raise Failure(f"{name}: {first} decisions before docker start, {total} after")
        run(["docker", "run", "--rm", "--network", "none", "-v", f"{reference}:/data", image.id,
             *image.cmd, *sim_args(None), "--minutes", str(total)], timeout=600)  # fmt: skip
        if after != tables(reference, image):
            raise Failure(f"{name}: the stopped and restarted run's tables differ from an"
                          f" uninterrupted run of the same {total} minutes")
        check_json_stdout(name)
    except Failure as problem:
        logs = run(["docker", "logs", "--tail", "15", name], timeout=60, check=False)
        raise Failure(f"{problem}\n--- docker logs {name} ---\n"
                      f"{tail_of(logs.stdout + logs.stderr)}") from None
    finally:
        if not keep:
            run(["docker", "rm", "--force", name], timeout=120, check=False)
            run(["docker", "volume", "rm", name, reference], timeout=120, check=False)
    return (f"{image.variant} (docker run): healthy after {healthy_s:.1f} s; docker stop"
            f" {stop_s:.1f} s, exit 0; docker start resumed after {first} minutes and went on"
            f" to {total}, equal to an uninterrupted run; docker stop {restop_s:.1f} s, exit 0")


def check_json_stdout(container: str) -> None:
    """Every line the daemon wrote to stdout, over both starts, is a JSON object."""
    out = run(["docker", "logs", container], timeout=60).stdout
    for number, line in enumerate(out.splitlines(), start=1):
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise Failure(f"{container}: stdout line {number} is not a JSON object: {line}")
