"""Check that the images' requirements install as binary wheels on every platform built for.

runcommands.txt builds the images for amd64 and arm64 with `docker buildx`; only the machine's
own architecture can be built here, so for each platform pip resolves `requirements.txt` as the
image's Python would, binary wheels only: a dependency without a wheel for one platform would
need a compiler the slim image lacks, and is caught here instead of in someone's arm64 build.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

from docker_engine import Failure, run

ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
GLIBC_MINOR = 36  # glibc 2.36 of Debian 12, the oldest base the slim Python images use now
LEGACY_TAGS = ("manylinux2014", "manylinux2010", "manylinux1")  # glibc 2.17, 2.12, 2.5
SHOWN = ("duckdb", "hmmlearn", "numpy")


def check_platform_wheels(repo: Path, base_image: str) -> list[str]:
    """Resolve requirements.txt for each `--platform` of runcommands.txt; a line per platform."""
    found = re.search(r"--platform[ =](\S+)", (repo / "runcommands.txt").read_text())
    if found is None:
        raise Failure("runcommands.txt: no docker buildx --platform list")
    version = re.fullmatch(r"python:(\d+\.\d+)[-\w.]*", base_image)
    if version is None:
        raise Failure(f"the base image {base_image} is not an official python one")
    lines = []
    for platform in found.group(1).split(","):
        if platform not in ARCH:
            raise Failure(f"runcommands.txt: no wheel tags known for {platform}")
        arch = ARCH[platform]
        # pip takes --platform tags literally: name every manylinux tag that glibc accepts.
        tags = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 4, -1)]
        tags += [f"{legacy}_{arch}" for legacy in LEGACY_TAGS]
        with tempfile.TemporaryDirectory(prefix="gexbot-wheels-") as folder:
            report = Path(folder) / "report.json"
            run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                 "--only-binary=:all:", *(f"--platform={tag}" for tag in tags),
                 "--python-version", version.group(1), "--implementation", "cp",
                 "--target", str(Path(folder) / "target"), "--report", str(report),
                 "-r", str(repo / "requirements.txt")], timeout=900)  # fmt: skip
            wheels = json.loads(report.read_text())["install"]
        named = ", ".join(
            f"{w['metadata']['name']} {w['metadata']['version']}"
            for w in wheels if w["metadata"]["name"].lower() in SHOWN
        )  # fmt: skip
        lines.append(f"{platform}: requirements.txt resolves to {len(wheels)} binary wheels"
                     f" for Python {version.group(1)} ({named}, ...)")
    return lines
