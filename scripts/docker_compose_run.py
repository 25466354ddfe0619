"""Both images brought up by the compose file, sharing one volume and one token file.

Part of scripts/docker_e2e. The compose file is run with the run's own names, so that it never
touches a deployment on the same engine, and with the simulated market instead of Schwab.
"""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path
from typing import Any

import yaml
from docker_containers import Image, inspect, sim_args, wait_healthy
from docker_engine import Failure, run, say, tail_of

WRITE_STAND_IN_LOGIN = """\
import os
from datetime import UTC, datetime
from pathlib import Path
from gexbot.market.tokens import TokenFile, Tokens
tokens = Tokens(os.environ["E2E_TOKEN"], datetime.now(UTC))
TokenFile(Path(os.environ["GEXBOT_TOKEN_FILE"])).write(tokens)
"""
STAND_IN_TOKEN = "e2e-stand-in-refresh-token"  # noqa: S105 (not a credential: a marker)


def derived_compose(
    spec: dict[str, Any], images: dict[str, Image], run_id: str, env: Path, speed: float,
    repo: Path,
) -> dict[str, Any]:
    """The compose file with the run's own names, images, host ports, env file and command.

    Everything the checks are about stays as written: the shared volume and token file, the
    health check, the user, the stop signal and grace period, the restart policy.
    """
    spec = copy.deepcopy(spec)
    for name, service in spec["services"].items():
        if name not in images:
            raise Failure(f"docker-compose.yml: service {name} is not a variant")
        image = images[name]
        service.update(image=image.tag, container_name=f"{run_id}-compose-{name}",
                       env_file=str(env), command=[*image.cmd, *sim_args(speed)])  # fmt: skip
        service["ports"] = [re.sub(r"^([^:]+):\d+:", r"\1::", p) for p in service["ports"]]
        service["build"] = {**service["build"], "context": str(repo)}
    for volume in spec["volumes"].values():
        volume["name"] = f"{run_id}-{volume['name']}"
    return spec


def compose_run(
    repo: Path, images: dict[str, Image], compose: list[str], run_id: str, work: Path,
    grace: int, speed: float, keep: bool,
) -> str:
    """`compose up` of both services, the shared token file, `compose stop`; a figures line."""
    spec = yaml.safe_load((repo / "docker-compose.yml").read_text())
    (work / "empty.env").write_text("")
    path = work / "docker-compose.yml"
    derived = derived_compose(spec, images, run_id, work / "empty.env", speed, repo)
    path.write_text(yaml.safe_dump(derived))
    base = [*compose, "--project-name", run_id, "--file", str(path)]
    names = {service: derived["services"][service]["container_name"] for service in images}
    try:
        run([*base, "up", "--detach", "--no-build"], timeout=300)
        healthy = {service: wait_healthy(name) for service, name in names.items()}
        say("compose: both services healthy; checking the shared token file")
        run([*base, "exec", "-T", "-e", f"E2E_TOKEN={STAND_IN_TOKEN}", "nq", "python", "-c",
             WRITE_STAND_IN_LOGIN], timeout=120)  # fmt: skip
        fresh = run([*base, "run", "--rm", "-T", "es", "python", "-m", "gexbot.auth", "--status"],
                    timeout=300, check=False)  # fmt: skip
        running = run([*base, "exec", "-T", "es", "python", "-m", "gexbot.auth", "--status"],
                      timeout=120, check=False)  # fmt: skip
        seen = [[re.sub(r" \(.*", "", line) for line in r.stdout.splitlines()]
                for r in (fresh, running)]  # fmt: skip
        token = derived["services"]["es"]["environment"]["GEXBOT_TOKEN_FILE"]
        if fresh.returncode or running.returncode or seen[0] != seen[1] or token not in seen[0][0]:
            raise Failure(f"compose: the token file written by nq is not what es sees:\n"
                          f"{fresh.stdout}{fresh.stderr}---\n{running.stdout}{running.stderr}")
        if STAND_IN_TOKEN in fresh.stdout + running.stdout:
            raise Failure("compose: gexbot.auth --status printed the refresh token")
        began = time.monotonic()
        run([*base, "stop", "--timeout", str(grace)], timeout=grace + 60)
        stop_s = time.monotonic() - began
        for name in names.values():
            if inspect(name)["State"]["ExitCode"] != 0:
                raise Failure(f"{name}: exit code {inspect(name)['State']['ExitCode']}")
        if stop_s > grace / 2:
            raise Failure(f"compose stop took {stop_s:.1f} s of the {grace} s grace period")
    except Failure as problem:
        logs = run([*base, "logs", "--tail", "10"], timeout=60, check=False)
        raise Failure(f"{problem}\n--- compose logs ---\n{tail_of(logs.stdout, 20)}") from None
    finally:
        if not keep:
            run([*base, "down", "--volumes", "--remove-orphans"], timeout=300, check=False)
    return (f"compose ({' '.join(compose)}): es healthy after {healthy['es']:.1f} s, nq after"
            f" {healthy['nq']:.1f} s; one token file ({token}) seen alike by compose run --rm es"
            f" and the running es after nq wrote it; compose stop {stop_s:.1f} s, both exit 0")
