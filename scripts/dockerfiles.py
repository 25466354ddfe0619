"""Read the Dockerfiles and .dockerignore without a Docker engine.

The images cannot be built on every machine that runs the checks, so the tests and the smoke
script read the files themselves: the instructions, their exec-form arguments, the ENV values,
the HEALTHCHECK and which paths the build context keeps. Only what these files use is parsed
(no build stages, no ARG substitution, no heredocs); anything else is an error, so a Dockerfile
that outgrows the parser fails the checks instead of being half understood.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

KNOWN = {
    "FROM", "ENV", "WORKDIR", "RUN", "COPY", "USER", "VOLUME", "EXPOSE", "STOPSIGNAL",
    "HEALTHCHECK", "CMD", "LABEL",
}  # fmt: skip


class DockerfileError(ValueError):
    """A Dockerfile or .dockerignore that this parser does not understand."""


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction: its upper-case name, its argument text and its first line number."""

    name: str
    args: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON-array arguments (`CMD ["python", ...]`); DockerfileError for shell form."""
        try:
            value = json.loads(self.args)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise DockerfileError(f"line {self.line}: {self.name} is not in exec (JSON) form")
        return value


@dataclass(frozen=True, slots=True)
class Healthcheck:
    """HEALTHCHECK options (`interval` -> `30s`) and its exec-form command."""

    options: dict[str, str]
    command: list[str]


@dataclass(frozen=True, slots=True)
class Copy:
    """COPY sources (context-relative) and destination (absolute, WORKDIR applied)."""

    sources: list[str]
    dest: PurePosixPath
    into_directory: bool
    """The destination names a directory (`dir/` or `.`), so a file keeps its own name."""
    line: int

    def placed(self, context: Path) -> list[tuple[Path, PurePosixPath]]:
        """(source in `context`, where it lands in the image); a directory lands as its contents."""
        result = []
        for source in self.sources:
            local = context / source
            if local.is_dir():
                result.append((local, self.dest))
            elif self.into_directory or len(self.sources) > 1:
                result.append((local, self.dest / local.name))
            else:
                result.append((local, self.dest))
        return result


class Dockerfile:
    """A parsed single-stage Dockerfile."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.instructions = parse(path.read_text(encoding="utf-8"))
        stages = self.all("FROM")
        if len(stages) != 1:
            raise DockerfileError(f"{path}: expected one FROM, found {len(stages)}")

    def all(self, name: str) -> list[Instruction]:
        """Every instruction called `name`, in order."""
        return [ins for ins in self.instructions if ins.name == name]

    def last(self, name: str) -> Instruction:
        """The instruction that takes effect (the last one called `name`)."""
        found = self.all(name)
        if not found:
            raise DockerfileError(f"{self.path}: no {name} instruction")
        return found[-1]

    def base_image(self) -> str:
        """The FROM image reference."""
        return self.last("FROM").args.split()[0]

    def env(self) -> dict[str, str]:
        """ENV values, later ones winning."""
        values: dict[str, str] = {}
        for ins in self.all("ENV"):
            values |= parse_env(ins)
        return values

    def workdir_at(self, index: int) -> PurePosixPath:
        """The working directory in effect for the instruction at `index`."""
        current = PurePosixPath("/")
        for ins in self.instructions[:index]:
            if ins.name == "WORKDIR":
                current = current / ins.args.strip()
        return current

    def copies(self) -> list[Copy]:
        """Each COPY with its destination made absolute."""
        result = []
        for index, ins in enumerate(self.instructions):
            if ins.name != "COPY":
                continue
            words = [word for word in shlex.split(ins.args) if not word.startswith("--")]
            if len(words) < 2:
                raise DockerfileError(f"{self.path}:{ins.line}: COPY needs a source and a dest")
            target = words[-1]
            result.append(
                Copy(
                    sources=words[:-1],
                    dest=self.workdir_at(index) / target,
                    into_directory=target.endswith("/") or target == ".",
                    line=ins.line,
                )
            )
        return result

    def healthcheck(self) -> Healthcheck:
        """The HEALTHCHECK options and command."""
        ins = self.last("HEALTHCHECK")
        head, sep, command = ins.args.partition("CMD ")
        if not sep:
            raise DockerfileError(f"{self.path}:{ins.line}: HEALTHCHECK without CMD")
        options = {}
        for word in head.split():
            key, eq, value = word.removeprefix("--").partition("=")
            if not eq:
                raise DockerfileError(f"{self.path}:{ins.line}: bad HEALTHCHECK option {word}")
            options[key] = value
        return Healthcheck(options, Instruction("CMD", command.strip(), ins.line).exec_form())

    def volumes(self) -> list[str]:
        """Every VOLUME path."""
        paths: list[str] = []
        for ins in self.all("VOLUME"):
            paths += ins.exec_form() if ins.args.startswith("[") else ins.args.split()
        return paths


def parse(text: str) -> list[Instruction]:
    """Split Dockerfile text into instructions (comments dropped, continuations joined)."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(part for part in pending if part)
        pending = []
        name, _, args = joined.partition(" ")
        if name.upper() not in KNOWN:
            raise DockerfileError(f"line {start}: instruction {name} is not understood here")
        instructions.append(Instruction(name.upper(), args.strip(), start))
    if pending:
        raise DockerfileError("the last instruction ends with a line continuation")
    return instructions


def parse_env(ins: Instruction) -> dict[str, str]:
    """`ENV A=1 B="two words"` -> {"A": "1", "B": "two words"} (key=value form only)."""
    values = {}
    for word in shlex.split(ins.args):
        key, eq, value = word.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise DockerfileError(f"line {ins.line}: ENV must use KEY=value, got {word!r}")
        values[key] = value
    return values


class DockerIgnore:
    """The build context's exclusions: patterns matched against a path and its parents.

    As in Docker, the last pattern that matches decides, `!` re-includes, `**` spans
    directories and `*` does not cross a `/`.
    """

    def __init__(self, lines: Sequence[str]) -> None:
        self._rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = line.removeprefix("!").strip().removeprefix("./").strip("/")
            self._rules.append((keep, _compile(pattern)))

    @classmethod
    def from_file(cls, path: Path) -> DockerIgnore:
        """Read a .dockerignore (no file: nothing is excluded)."""
        if not path.exists():
            return cls([])
        return cls(path.read_text(encoding="utf-8").splitlines())

    def excluded(self, relpath: str) -> bool:
        """Whether the context-relative path `relpath` stays out of the build context."""
        parts = PurePosixPath(relpath).parts
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for keep, pattern in self._rules:
            if any(pattern.fullmatch(candidate) for candidate in candidates):
                verdict = not keep
        return verdict


def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        elif pattern[index] == "[":
            end = pattern.find("]", index)
            if end < 0:
                raise DockerfileError(f".dockerignore: unclosed [ in {pattern!r}")
            out.append(pattern[index : end + 1])
            index = end + 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out))


@dataclass(frozen=True, slots=True)
class LocalImage:
    """A directory standing in for an image's file system: `/data` becomes `root/data`."""

    root: Path

    def path(self, image_path: str | PurePosixPath) -> Path:
        """The local path of an absolute image path."""
        return self.root.joinpath(*PurePosixPath(image_path).parts[1:])

    def value(self, text: str) -> str:
        """An argument or ENV value with an absolute image path mapped to the local one."""
        return str(self.path(text)) if text.startswith("/") else text


def option_value(argv: Sequence[str], option: str) -> str | None:
    """The value after `option` in `argv` (the last one when repeated), else None."""
    found = None
    for index, word in enumerate(argv[:-1]):
        if word == option:
            found = argv[index + 1]
    return found


def local_command(
    argv: Sequence[str],
    image: LocalImage,
    python: str,
    replace: dict[str, str],
) -> list[str]:
    """An image command made to run here: its `python` is `python`, absolute paths are mapped.

    `replace` sets the value of options (`{"--http-port": "41234"}`), so a run here listens on
    loopback and on a free port instead of the container's address.
    """
    if not argv or argv[0] not in ("python", "python3"):
        raise DockerfileError(f"expected a python command, got {list(argv)!r}")
    out = [python]
    words = list(argv[1:])
    index = 0
    while index < len(words):
        word = words[index]
        out.append(image.value(word))
        if word in replace and index + 1 < len(words):
            out.append(replace[word])
            index += 1
        index += 1
    return out
