"""The container files agree with the CLI, the presets and each other, checked without Docker.

No Docker engine runs where these tests run, so the Dockerfiles, the compose file and the plain
docker commands are read as text: a CMD option the CLI does not know, a model the preset does
not name, a health check on the wrong port, or the two variants drifting apart fails here
instead of on a server.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import signal
import sys
import threading
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pytest
import yaml

from gexbot import live
from gexbot.model_io import read_model
from gexbot.settings import load_variant

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("es", "nq")


def _load_parser() -> ModuleType:
    path = ROOT / "scripts" / "dockerfiles.py"
    spec = importlib.util.spec_from_file_location("gexbot_dockerfiles", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


df = _load_parser()


def dockerfile(variant: str) -> Any:
    """The parsed Dockerfile of `variant` (a `scripts/dockerfiles.py` Dockerfile)."""
    return df.Dockerfile(ROOT / f"Dockerfile.{variant}")


def cmd_args(variant: str) -> argparse.Namespace:
    """The image's CMD as the daemon's own parser reads it."""
    cmd = dockerfile(variant).last("CMD").exec_form()
    assert cmd[:3] == ["python", "-m", "gexbot.live"]
    return live.build_parser().parse_args(cmd[3:])


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
    assert args.replay is None
    assert args.log_format == "json"
    assert args.http_host == "0.0.0.0"  # noqa: S104 (published by Docker, probed inside)


@pytest.mark.parametrize("variant", VARIANTS)
def test_database_and_recordings_are_on_the_data_volume(variant: str) -> None:
    image = dockerfile(variant)
    args = cmd_args(variant)
    volumes = [PurePosixPath(v) for v in image.volumes()]
    assert volumes == [PurePosixPath("/data")]
    db = PurePosixPath(str(args.db))
    assert db.parent == volumes[0]
    assert variant in db.name
    assert args.record is not None, "the images record every session by default"
    assert volumes[0] in PurePosixPath(str(args.record)).parents
    token = PurePosixPath(image.env()["GEXBOT_TOKEN_FILE"])
    assert token.parent == volumes[0]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_presets_model_is_baked_in_where_the_daemon_looks(variant: str) -> None:
    image = dockerfile(variant)
    preset = load_variant(variant)
    assert cmd_args(variant).model is None, "the image uses the preset's model path"
    workdir = image.workdir_at(len(image.instructions))
    expected = workdir / preset.model_path
    placed = {dest: src for c in image.copies() for src, dest in c.placed(ROOT)}
    assert expected in placed, f"{expected} is not copied into the image"
    assert placed[expected] == ROOT / preset.model_path
    read_model(placed[expected])
    assert image.env()["PYTHONPATH"] == str(workdir)


@pytest.mark.parametrize("variant", VARIANTS)
def test_healthcheck_probes_the_daemons_own_endpoint_with_python(variant: str) -> None:
    image = dockerfile(variant)
    args = cmd_args(variant)
    health = image.healthcheck()
    assert health.command == [
        "python", "-m", "gexbot.shell.health", "--probe",
        f"http://127.0.0.1:{args.http_port}/healthz",
    ]  # fmt: skip
    assert seconds(health.options["timeout"]) > 3.0, "longer than the probe's own timeout"
    assert seconds(health.options["interval"]) < live.HEALTH_MAX_AGE_S
    assert int(health.options["retries"]) >= 1
    assert image.last("EXPOSE").args.split() == [str(args.http_port)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_stop_signal_is_one_the_daemon_finishes_its_minute_on(variant: str) -> None:
    name = dockerfile(variant).last("STOPSIGNAL").args.strip()
    assert name == "SIGTERM"
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        live._install_signal_handlers(threading.Event())
        assert callable(signal.getsignal(signal.Signals[name]))
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize("variant", VARIANTS)
def test_runs_as_the_unprivileged_user_that_owns_the_data_volume(variant: str) -> None:
    image = dockerfile(variant)
    user = image.last("USER")
    uid, _, gid = user.args.partition(":")
    assert uid not in ("", "0", "root")
    runs = image.all("RUN")
    setup = " ".join(r.args for r in runs)
    assert f"--uid {uid}" in setup
    assert f"--gid {gid}" in setup
    assert re.search(r"chown \S+ /data\b", setup)
    assert all(r.line < user.line for r in runs), "nothing runs as root after USER"


@pytest.mark.parametrize("variant", VARIANTS)
def test_base_env_and_dependency_layer(variant: str) -> None:
    image = dockerfile(variant)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", image.base_image())
    assert image.env()["PYTHONUNBUFFERED"] == "1"
    names = [i.name for i in image.instructions]
    copies = image.copies()
    assert copies[0].sources == ["requirements.txt"]
    pip = next(i for i in image.all("RUN") if i.args.startswith("pip install"))
    assert "-r requirements.txt" in pip.args
    assert names.index("COPY") < image.instructions.index(pip)
    assert all(c.line > pip.line for c in copies[1:]), "code changes must not rebuild deps"


def test_requirements_match_the_package_dependencies() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pinned = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert pinned == set(project["dependencies"])


def test_dockerignore_keeps_what_the_images_copy_and_nothing_secret() -> None:
    ignore = df.DockerIgnore.from_file(ROOT / ".dockerignore")
    for variant in VARIANTS:
        for copy in dockerfile(variant).copies():
            for source, _ in copy.placed(ROOT):
                files = [p for p in source.rglob("*.py")] if source.is_dir() else [source]
                for path in files:
                    assert not ignore.excluded(path.relative_to(ROOT).as_posix()), path
    assert not ignore.excluded("gexbot/presets/es.yaml")
    for path in (
        ".env", "gexbot/.env", ".env.local", "quant_trading_data.db", "models/x.db.wal",
        "recordings/es/2026-01-02.jsonl.gz", "gexbot/__pycache__/live.cpython-311.pyc",
        ".venv/bin/python", ".git/config", ".pytest_cache/v", "tests/test_docker.py",
    ):  # fmt: skip
        assert ignore.excluded(path), path


def test_dockerignore_patterns_follow_docker_rules() -> None:
    ignore = df.DockerIgnore(["*", "!keep/", "**/*.db", "# a comment", "!keep/this.db"])
    assert ignore.excluded("top.txt")
    assert not ignore.excluded("keep/a/b.txt")
    assert ignore.excluded("keep/a/other.db")
    assert not ignore.excluded("keep/this.db")


def test_parser_rejects_what_it_does_not_understand() -> None:
    with pytest.raises(df.DockerfileError, match="ADD is not understood"):
        df.parse("FROM python:3.11-slim\nADD x /x\n")
    with pytest.raises(df.DockerfileError, match="exec"):
        df.parse('CMD python -m gexbot.live\n')[0].exec_form()
    with pytest.raises(df.DockerfileError, match="KEY=value"):
        df.parse_env(df.parse("ENV A 1\n")[0])


def test_services_run_both_variants_from_their_dockerfiles() -> None:
    services = compose()["services"]
    assert set(services) == set(VARIANTS)
    for variant, service in services.items():
        assert service["build"] == {"context": ".", "dockerfile": f"Dockerfile.{variant}"}
        assert service["restart"] == "unless-stopped"
        assert service["env_file"] in (".env", [".env"])
        assert "command" not in service, "the image's CMD is the one the tests check"
        assert service["stop_signal"] == dockerfile(variant).last("STOPSIGNAL").args
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
        token = service.get("environment", {}).get("GEXBOT_TOKEN_FILE")
        tokens.add(token or dockerfile(variant).env()["GEXBOT_TOKEN_FILE"])
    assert len(volumes) == 1
    assert len(tokens) == 1
    (name,) = volumes
    assert name in spec["volumes"]
    assert tokens == {dockerfile("es").env()["GEXBOT_TOKEN_FILE"]}
    dbs = {str(cmd_args(v).db) for v in VARIANTS}
    assert len(dbs) == 2, "each variant its own database on the shared volume"


def test_service_healthcheck_and_ports_match_the_images() -> None:
    ports = set()
    for variant, service in compose()["services"].items():
        health = dockerfile(variant).healthcheck()
        check = service["healthcheck"]
        assert check["test"] == ["CMD", *health.command]
        for key in ("interval", "timeout", "retries"):
            assert str(check[key]) == health.options[key]
        assert check["start_period"] == health.options["start-period"]
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
            c for c in builds
            if "--push" in c and df.option_value(c, "-f") == f"Dockerfile.{variant}"
        ]  # fmt: skip
        assert multi, f"no multi-arch build of Dockerfile.{variant}"
        assert df.option_value(multi[0], "--platform") == "linux/amd64,linux/arm64"
        assert multi[0][-1] == "."


def test_runcommands_run_both_daemons_like_compose() -> None:
    spec = compose()
    runs = [c for c in commands() if c[:2] == ["docker", "run"]]
    daemons = [c for c in runs if "-d" in c]
    assert len(daemons) == 2
    (volume,) = {df.option_value(c, "-v") for c in daemons}
    assert volume == spec["services"]["es"]["volumes"][0]
    assert volume.split(":")[0] == spec["volumes"]["gexbot-data"]["name"]
    for variant in VARIANTS:
        (run,) = [c for c in daemons if df.option_value(c, "--name") == f"gexbot-{variant}"]
        assert df.option_value(run, "--env-file") == ".env"
        assert df.option_value(run, "--restart") == "unless-stopped"
        assert df.option_value(run, "-p") == spec["services"][variant]["ports"][0]
        assert run[-1] == spec["services"][variant]["image"]
    auth = [c for c in runs if c[-3:] == ["python", "-m", "gexbot.auth"]]
    assert auth, "no first-time authorization line"
    assert df.option_value(auth[0], "-v") == volume
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
