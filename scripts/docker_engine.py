"""A Docker engine to test the images on, and the base image they build on, for docker_e2e.

The end-to-end test must run wherever an engine can be had, so it finds one in this order: an
engine that already answers; else `dockerd` started here (root only), first with the engine's
defaults and, if that does not come up, with the settings sandboxes without overlayfs or
netfilter need; else it gives up with one line saying what is missing (`Unavailable`).

The base image `python:3.11-slim` comes from a registry. Where none can be reached, a stand-in
is made from Debian's own packages: `debootstrap` of the Debian release with the same Python
(3.11: bookworm), with `python` and `pip` on the path like the official image and pip allowed to
install into the system Python (Debian refuses that by default, PEP 668). The stand-in is
labelled as one, so a report can tell which base the images were built on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

DOCKERD_SETTINGS: tuple[tuple[str, ...], ...] = (
    (),  # the engine's defaults: overlay2 storage, the docker0 bridge, iptables rules
    ("--storage-driver=vfs", "--iptables=false", "--bridge=none"),
)
ENGINE_START_S = 60.0
STAND_IN_LABEL = "gexbot.base-stand-in"
DEBIAN_WITH_PYTHON = {"3.11": "bookworm"}
STAND_IN_PACKAGES = "python3,python3-pip,python3-venv,ca-certificates"
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
"""Certificate authorities this machine trusts beyond Debian's (a TLS-inspecting proxy's, say):
the stand-in trusts them too, so pip in a build reaches the package index the way the host does.
"""
SLIMMED = (
    "var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"
)


STARTED = time.monotonic()


def say(text: str) -> None:
    """One progress line of docker_e2e, with the seconds since its start."""
    print(f"docker_e2e [{time.monotonic() - STARTED:5.0f} s]: {text}", flush=True)


class Unavailable(Exception):
    """No Docker engine or base image can be had here; the message says what it would take."""


class Failure(Exception):
    """A command or a check failed; the message says which and why."""


def run(
    argv: Sequence[str], *, timeout: float, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its output; `Failure` (with its stderr) when it fails."""
    try:
        done = subprocess.run(  # noqa: S603 (docker, dockerd, debootstrap, tar: our own argv)
            list(argv), capture_output=True, text=True, timeout=timeout, check=False, input=stdin
        )
    except subprocess.TimeoutExpired:
        raise Failure(f"no answer within {timeout:.0f} s: {' '.join(argv)}") from None
    if check and done.returncode != 0:
        raise Failure(
            f"exit code {done.returncode}: {' '.join(argv)}\n{tail_of(done.stderr or done.stdout)}"
        )
    return done


def tail_of(text: str, lines: int = 15) -> str:
    """The last lines of a command's output, for a failure message."""
    return "\n".join(text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def exclusive(path: Path, wait_s: float, waiting: str) -> Iterator[None]:
    """Hold an exclusive lock on `path`; say `waiting` once when another holder makes us wait."""
    with path.open("a") as handle:
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Failure(f"{path} stayed locked for {wait_s:.0f} s") from None
                if not told:
                    print(waiting, flush=True)
                    told = True
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def engine_answers() -> bool:
    """True when `docker info` reaches an engine."""
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],  # noqa: S607 (docker on PATH)
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def ensure_engine(log_path: Path) -> str:
    """Make sure an engine answers; how it was had (which dockerd command, if started here)."""
    if shutil.which("docker") is None:
        raise Unavailable("no docker command on PATH (Debian: apt-get install docker.io)")
    if engine_answers():
        return "an engine that was already running"
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise Unavailable(
            "no Docker engine answers and dockerd is not installed"
            " (as root: apt-get install docker.io docker-compose)"
        )
    if os.geteuid() != 0:
        raise Unavailable("no Docker engine answers, and only root can start dockerd here")
    for settings in DOCKERD_SETTINGS:
        command = ["dockerd", *settings]
        if _start_dockerd(dockerd, settings, log_path):
            return f"started here: {' '.join(command)} (in the background, log {log_path})"
    raise Unavailable(
        f"dockerd did not come up with any of its settings ({tail_of(_read(log_path), 1)});"
        f" its log: {log_path}"
    )


def _start_dockerd(dockerd: str, settings: Sequence[str], log_path: Path) -> bool:
    """Start dockerd, left running in its own session; False (it stopped) if it never answers."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 (the installed dockerd)
            [dockerd, *settings], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + ENGINE_START_S
    while time.monotonic() < deadline and process.poll() is None:
        if engine_answers():
            return True
        time.sleep(0.5)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return False


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def image_exists(image: str) -> bool:
    """True when the engine holds `image`."""
    return run(["docker", "image", "inspect", image], timeout=30, check=False).returncode == 0


def describe_base(image: str) -> str:
    """`image`, whether it is a stand-in, and its size."""
    shown = run(
        ["docker", "image", "inspect", "--format",
         f'{{{{index .Config.Labels "{STAND_IN_LABEL}"}}}}|{{{{.Size}}}}', image],
        timeout=30,
    ).stdout.strip()  # fmt: skip
    stand_in, _, size = shown.rpartition("|")
    origin = f"stand-in ({stand_in})" if stand_in and stand_in != "<no value>" else "as pulled"
    return f"{image}, {origin}, {int(size) / 1e6:.0f} MB"


def ensure_base(image: str, work: Path, mirror: str | None) -> str:
    """The base image, pulled or else made as a stand-in; a line describing it."""
    if not image_exists(image):
        pulled = run(["docker", "pull", image], timeout=900, check=False)
        if pulled.returncode != 0:
            say(f"{image} cannot be pulled ({tail_of(pulled.stderr, 1)}); making a stand-in"
                " from Debian's packages")
            make_stand_in(image, work, mirror)
    return describe_base(image)


def make_stand_in(image: str, work: Path, mirror: str | None) -> None:
    """Import a debootstrapped Debian with the image's Python as `image`."""
    found = re.fullmatch(r"python:(\d+\.\d+)(?:-slim)?", image)
    release = DEBIAN_WITH_PYTHON.get(found.group(1)) if found else None
    if release is None:
        raise Unavailable(f"no Debian release known to ship the Python of {image}")
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        raise Unavailable(
            f"{image} cannot be pulled, and a stand-in needs root and debootstrap"
            " (apt-get install debootstrap)"
        )
    rootfs = work / "rootfs"
    try:
        run(["debootstrap", "--variant=minbase", f"--include={STAND_IN_PACKAGES}", release,
             str(rootfs), *([mirror] if mirror else [])], timeout=3600)  # fmt: skip
        _like_the_official_image(rootfs)
        version = run(["chroot", str(rootfs), "python", "-c",
                       "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                      timeout=60).stdout.strip()  # fmt: skip
        if found is None or not version.startswith(found.group(1) + "."):
            raise Failure(f"debootstrap {release} gave Python {version}, not the one of {image}")
        tarball = work / "rootfs.tar"
        run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], timeout=600)
        run(["docker", "import",
             "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "--change", "ENV LANG=C.UTF-8",
             "--change", f'LABEL {STAND_IN_LABEL}="debootstrap {release}, Python {version}"',
             "--change", 'CMD ["python3"]',
             str(tarball), image], timeout=600)  # fmt: skip
    finally:
        _remove_tree(rootfs)


def _like_the_official_image(rootfs: Path) -> None:
    """`python` and `pip` on the path, pip allowed to install, local CAs trusted, slimmed."""
    for name, target in (("python", "python3"), ("pip", "pip3")):
        link = rootfs / "usr/bin" / name
        if not link.exists():
            link.symlink_to(target)
    (rootfs / "etc/pip.conf").write_text("[global]\nbreak-system-packages = true\n")
    local = sorted(LOCAL_CAS.glob("*.crt")) if LOCAL_CAS.is_dir() else []
    for certificate in local:
        shutil.copy2(certificate, rootfs / "usr/local/share/ca-certificates" / certificate.name)
    if local:
        run(["chroot", str(rootfs), "update-ca-certificates"], timeout=120)
    for folder in SLIMMED:
        for entry in (rootfs / folder).glob("*"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _remove_tree(rootfs: Path) -> None:
    """Delete the debootstrap tree, first unmounting anything a failed run left mounted in it."""
    if not rootfs.exists():
        return
    for point in sorted(_mounts_inside(rootfs), reverse=True):
        run(["umount", "--lazy", point], timeout=60, check=False)
    if _mounts_inside(rootfs):
        raise Failure(f"{rootfs} still has file systems mounted inside; not deleting it")
    shutil.rmtree(rootfs)


def _mounts_inside(folder: Path) -> list[str]:
    inside = str(folder.resolve()) + "/"
    lines = Path("/proc/self/mounts").read_text().splitlines()
    return [point for point in (line.split()[1] for line in lines) if point.startswith(inside)]
