"""The container files agree with the CLI, the presets and each other; the images run for real.

The end-to-end test builds and runs both images on a Docker engine (`scripts/docker_e2e`), and
is skipped, saying why, where no engine can be had. The other tests read the files as text and
catch what a run on the simulated market cannot: the CMD's live options (the run adds
`--source sim`), the two variants drifting apart, the compose file, the plain docker commands
and `.env.example` disagreeing with the images.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from gexbot import live
from gexbot.model_io import read_model
from gexbot.run.runner import HEALTH_MAX_AGE_S
from gexbot.settings import load_variant

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "docker_e2e"
VARIANTS = ("es", "nq")
EXIT_UNAVAILABLE = 77


def instructions(variant: str) -> list[tuple[str, str]]:
    """(instruction, value) of Dockerfile.<variant>, comments left out, continuations joined."""
    text = (ROOT / f"Dockerfile.{variant}").read_bytes()
    parsed = DockerfileParser(fileobj=io.BytesIO(text))
    return [
        (step["instruction"], step["value"])
        for step in parsed.structure
        if step["instruction"] != "COMMENT"
    ]


def values(variant: str, name: str) -> list[str]:
    return [value for instruction, value in instructions(variant) if instruction == name]


def env(variant: str) -> dict[str, str]:
    return dict(word.split("=", 1) for value in values(variant, "ENV") for word in value.split())


def healthcheck(variant: str) -> tuple[dict[str, str], list[str]]:
    """The HEALTHCHECK's options (`interval` -> `30s`) and its exec-form command."""
    (value,) = values(variant, "HEALTHCHECK")
    head, _, command = value.partition("CMD ")
    options = dict(word.removeprefix("--").split("=", 1) for word in head.split())
    return options, json.loads(command)


def cmd(variant: str) -> list[str]:
    command = json.loads(values(variant, "CMD")[-1])
    assert isinstance(command, list)
    return command


def cmd_args(variant: str) -> argparse.Namespace:
    """The image's CMD as the daemon's own parser reads it."""
    command = cmd(variant)
    assert command[:3] == ["python", "-m", "gexbot.live"]
    return live.build_parser().parse_args(command[3:])


def option_value(argv: Sequence[str], option: str) -> str | None:
    """The value after `option` (the last one when repeated), else None."""
    found = None
    for index, word in enumerate(argv[:-1]):
        if word == option:
            found = argv[index + 1]
    return found


def seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", text)
    assert match, f"unexpected duration {text!r}"
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_two_dockerfiles_differ_only_in_the_variant() -> None:
    nq = (ROOT / "Dockerfile.nq").read_text()
    es = (ROOT / "Dockerfile.es").read_text()
    assert re.sub(r"(?<![a-z])nq(?![a-z])", "es", nq).replace("NQ", "ES") == es
    assert nq != es


@pytest.mark.parametrize("variant", VARIANTS)
def test_cmd_runs_the_live_daemon_of_its_variant(variant: str) -> None:
    args = cmd_args(variant)
    assert args.variant == variant
    assert args.source == "schwab"
    assert args.start is None, "a live run is on the wall clock"
    assert args.replay is None
    assert args.log_format == "json"
    assert args.http_host == "0.0.0.0"  # noqa: S104 (published by Docker, probed inside)


@pytest.mark.parametrize("variant", VARIANTS)
def test_database_recordings_and_token_file_are_on_the_data_volume(variant: str) -> None:
    args = cmd_args(variant)
    (volume,) = [PurePosixPath(v) for v in json.loads(values(variant, "VOLUME")[-1])]
    assert PurePosixPath(str(args.db)).parent == volume
    assert args.record is not None, "the images record every session by default"
    assert volume in PurePosixPath(str(args.record)).parents
    assert PurePosixPath(env(variant)["GEXBOT_TOKEN_FILE"]).parent == volume


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_presets_model_is_baked_in_where_the_daemon_looks(variant: str) -> None:
    preset = load_variant(variant)
    assert cmd_args(variant).model is None, "the image uses the preset's model path"
    (workdir,) = values(variant, "WORKDIR")
    copied = [value.split() for value in values(variant, "COPY")]
    model = [(src, dest) for src, dest in copied if src.startswith("models/")]
    assert model == [(str(preset.model_path), f"{PurePosixPath(preset.model_path).parent}/")]
    assert env(variant)["PYTHONPATH"] == workdir
    read_model(ROOT / preset.model_path)


@pytest.mark.parametrize("variant", VARIANTS)
def test_healthcheck_probes_the_daemons_own_endpoint_in_time(variant: str) -> None:
    options, command = healthcheck(variant)
    args = cmd_args(variant)
    assert command == [
        "python", "-m", "gexbot.shell.health", "--probe",
        f"http://127.0.0.1:{args.http_port}/healthz",
    ]  # fmt: skip
    assert seconds(options["timeout"]) > 3.0, "longer than the probe's own timeout"
    assert seconds(options["interval"]) < HEALTH_MAX_AGE_S
    assert int(options["retries"]) >= 1
    assert values(variant, "EXPOSE") == [str(args.http_port)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_dependencies_are_a_layer_of_their_own_before_the_code(variant: str) -> None:
    steps = instructions(variant)
    (base,) = values(variant, "FROM")
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base)
    assert env(variant)["PYTHONUNBUFFERED"] == "1"
    pip = next(i for i, (name, value) in enumerate(steps) if value.startswith("pip install"))
    assert "-r requirements.txt" in steps[pip][1]
    copies = [i for i, (name, _) in enumerate(steps) if name == "COPY"]
    assert steps[copies[0]][1].split()[0] == "requirements.txt"
    assert copies[0] < pip < copies[1], "a code change must not reinstall the dependencies"


def test_requirements_match_the_package_dependencies() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pinned = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert pinned == set(project["dependencies"])


def requirement_names(lines: list[str]) -> set[str]:
    """Normalized distribution names of requirement lines (`PyYAML>=6.0` -> `pyyaml`)."""
    found = (re.match(r"[A-Za-z0-9._-]+", line.strip()) for line in lines)
    return {re.sub(r"[._-]+", "-", m.group(0)).lower() for m in found if m and m.group(0)}


def test_the_research_extra_stays_out_of_the_images() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    research = requirement_names(extras["research"])
    assert research, "the research extra names no package"
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    installed = requirement_names([line for line in lines if not line.startswith("#")])
    assert "duckdb" in installed
    assert not research & installed, "the images install requirements.txt only"


def test_services_run_both_variants_from_their_dockerfiles() -> None:
    services = compose()["services"]
    assert set(services) == set(VARIANTS)
    for variant, service in services.items():
        assert service["build"] == {"context": ".", "dockerfile": f"Dockerfile.{variant}"}
        assert service["restart"] == "unless-stopped"
        assert service["env_file"] in (".env", [".env"])
        assert "command" not in service, "the image's CMD is the one the tests check"
        assert service["stop_signal"] == values(variant, "STOPSIGNAL")[-1]
        assert seconds(service["stop_grace_period"]) >= 30


def test_services_share_one_volume_and_one_token_file() -> None:
    spec = compose()
    volumes = set()
    tokens = set()
    for variant, service in spec["services"].items():
        (mount,) = service["volumes"]
        name, _, target = mount.partition(":")
        assert target == "/data"
        volumes.add(name)
        tokens.add(service.get("environment", {}).get("GEXBOT_TOKEN_FILE") or env(variant)[
            "GEXBOT_TOKEN_FILE"])  # fmt: skip
    assert len(volumes) == 1
    assert tokens == {env("es")["GEXBOT_TOKEN_FILE"]}
    (name,) = volumes
    assert name in spec["volumes"]
    assert len({str(cmd_args(v).db) for v in VARIANTS}) == 2, "each variant its own database"


def test_service_healthcheck_and_ports_match_the_images() -> None:
    ports = set()
    for variant, service in compose()["services"].items():
        options, command = healthcheck(variant)
        check = service["healthcheck"]
        assert check["test"] == ["CMD", *command]
        for key in ("interval", "timeout", "retries"):
            assert str(check[key]) == options[key]
        assert check["start_period"] == options["start-period"]
        (port,) = service["ports"]
        host, published, container = port.split(":")
        assert host == "127.0.0.1"
        assert container == str(cmd_args(variant).http_port)
        ports.add(published)
    assert len(ports) == 2


def commands() -> list[list[str]]:
    text = (ROOT / "runcommands.txt").read_text().replace("\\\n", " ")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [shlex.split(line) for line in lines]


def test_runcommands_build_both_images_for_two_platforms() -> None:
    builds = [c for c in commands() if c[:3] == ["docker", "buildx", "build"]]
    for variant in VARIANTS:
        multi = [
            c for c in builds if "--push" in c and option_value(c, "-f") == f"Dockerfile.{variant}"
        ]
        assert multi, f"no multi-arch build of Dockerfile.{variant}"
        assert option_value(multi[0], "--platform") == "linux/amd64,linux/arm64"
        assert multi[0][-1] == "."


def test_runcommands_run_both_daemons_like_compose() -> None:
    spec = compose()
    runs = [c for c in commands() if c[:2] == ["docker", "run"]]
    daemons = [c for c in runs if "-d" in c]
    assert len(daemons) == 2
    (volume,) = {option_value(c, "-v") for c in daemons}
    assert volume == spec["services"]["es"]["volumes"][0]
    assert volume.split(":")[0] == spec["volumes"]["gexbot-data"]["name"]
    for variant in VARIANTS:
        (run,) = [c for c in daemons if option_value(c, "--name") == f"gexbot-{variant}"]
        assert option_value(run, "--env-file") == ".env"
        assert option_value(run, "--restart") == "unless-stopped"
        assert option_value(run, "-p") == spec["services"][variant]["ports"][0]
        grace = seconds(spec["services"][variant]["stop_grace_period"])
        assert option_value(run, "--stop-timeout") == str(int(grace))
        assert run[-1] == spec["services"][variant]["image"]
    auth = [c for c in runs if c[-3:] == ["python", "-m", "gexbot.auth"]]
    assert auth, "no first-time authorization line"
    assert option_value(auth[0], "-v") == volume
    assert "--rm" in auth[0]


def read_env_names() -> set[str]:
    pattern = re.compile(r"[\"']((?:SCHWAB|GEXBOT|DISCORD)_[A-Z0-9_]+)[\"']")
    names: set[str] = set()
    for path in (ROOT / "gexbot").rglob("*.py"):
        names |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return names


def test_env_example_lists_every_variable_the_project_reads_with_a_comment() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    assignment = re.compile(r"#?\s*([A-Z][A-Z0-9_]*)=.*")
    listed: dict[str, int] = {}
    for number, line in enumerate(lines):
        match = assignment.fullmatch(line)
        if match:
            listed[match.group(1)] = number
    read = read_env_names()
    assert read, "the scan found no variable names"
    assert read <= set(listed), f"missing from .env.example: {sorted(read - set(listed))}"
    assert set(listed) <= read, f"not read by gexbot: {sorted(set(listed) - read)}"
    for name, number in listed.items():
        above = lines[number - 1] if number > 0 else ""
        comment = above.startswith("# ") and not assignment.fullmatch(above)
        assert comment, f"{name} has no comment line above it"


def test_env_example_holds_no_secret_values() -> None:
    for line in (ROOT / ".env.example").read_text().splitlines():
        name, eq, value = line.partition("=")
        if eq and not line.startswith("#") and name.startswith("SCHWAB_"):
            assert value == "", f"{name} must be blank in the example"


def compose_module() -> ModuleType:
    """scripts/docker_compose_run.py, which imports its neighbours by their plain names."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        return importlib.import_module("docker_compose_run")
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_the_e2e_compose_file_changes_only_names_ports_env_file_and_command() -> None:
    runs = compose_module()
    images = {
        v: runs.Image(variant=v, id=f"sha256:{v}", tag=f"gexbot-{v}:run", cmd=cmd(v), uid="10001",
                      gid="10001", probe="http://127.0.0.1:8080/healthz", size_mb=1.0, build_s=1.0)
        for v in VARIANTS
    }  # fmt: skip
    original = compose()
    derived = runs.derived_compose(
        original, images, "run", Path("/tmp/e.env"), 60.0, ROOT  # noqa: S108 (never written)
    )
    assert compose() == original, "the loaded file itself is left alone"
    for variant, service in derived["services"].items():
        before = original["services"][variant]
        changed = {key for key in service if service[key] != before.get(key)}
        assert changed == {"image", "container_name", "ports", "env_file", "command", "build"}
        assert service["ports"] == ["127.0.0.1::8080"]
        assert service["command"][: len(cmd(variant))] == cmd(variant)
        assert option_value(service["command"], "--source") == "sim"
        assert service["build"] == {**before["build"], "context": str(ROOT)}
    assert derived["volumes"]["gexbot-data"]["name"] == "run-gexbot-data"


def run_e2e(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, PATH=path) if path is not None else None
    return subprocess.run(  # noqa: S603 (our own script)
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False,
        timeout=3600, env=environ,
    )  # fmt: skip


def test_the_e2e_skips_saying_what_is_missing_without_docker(tmp_path: Path) -> None:
    done = run_e2e(path=str(tmp_path))
    assert done.returncode == EXIT_UNAVAILABLE, done.stdout + done.stderr
    assert "SKIPPED: no docker command on PATH" in done.stdout


def test_the_e2e_skips_saying_what_is_missing_without_an_engine(tmp_path: Path) -> None:
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(0o755)
    done = run_e2e(path=str(tmp_path))
    assert done.returncode == EXIT_UNAVAILABLE, done.stdout + done.stderr
    assert "dockerd is not installed (as root: apt-get install docker.io" in done.stdout


def test_the_e2e_tries_each_dockerd_setting_and_says_why_none_came_up(tmp_path: Path) -> None:
    for name, script in (
        ("docker", "echo 'Cannot connect to the Docker daemon' >&2\nexit 1"),
        ("dockerd", 'echo "dockerd $*: failed to start daemon: no overlay here" >&2\nexit 1'),
    ):
        (tmp_path / name).write_text(f"#!/bin/sh\n{script}\n")
        (tmp_path / name).chmod(0o755)
    log = tmp_path / "dockerd.log"
    done = run_e2e("--dockerd-log", str(log), path=str(tmp_path))
    assert done.returncode == EXIT_UNAVAILABLE, done.stdout + done.stderr
    if os.geteuid() != 0:
        assert "only root can start dockerd" in done.stdout
        return
    tried = log.read_text().splitlines()
    assert tried == [
        "dockerd : failed to start daemon: no overlay here",
        "dockerd --storage-driver=vfs --iptables=false --bridge=none: failed to start daemon:"
        " no overlay here",
    ]
    assert "dockerd did not come up with any of its settings (dockerd --storage-driver" in (
        done.stdout
    )
    assert str(log) in done.stdout


def test_both_images_build_and_run_on_a_real_docker_engine() -> None:
    done = run_e2e()
    output = done.stdout + done.stderr
    if done.returncode == EXIT_UNAVAILABLE:
        pytest.skip(output.strip().splitlines()[-1])
    print(output)
    assert done.returncode == 0, output[-6000:]
    assert "all checks passed" in done.stdout
