"""The recording file: gzip-compressed JSON Lines, one header line, appended to, never rewritten.

A day's file is a sequence of gzip members, one per process that wrote to it, which `zcat` and
every gzip library read as one stream. Each line is followed by a zlib sync flush written to
the OS at once, so a process killed at any moment leaves a file whose every complete line can
be decoded; only its last member lacks the gzip trailer. The next writer closes that member
properly (cutting off the few bytes of the line that was being written, which no reader could
decode) before it appends its own, so the file is a valid gzip stream again.

Reading (`recdecode`) is tolerant of what a kill leaves behind and of damage in the middle of
a file, and bounds what one line may cost. A header's values are data: `check_header` takes a
variant only if it is a variant name (it names files) and a session only if it is a date.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import struct
import zlib
from datetime import date
from pathlib import Path
from typing import Any

from gexbot.documents import load_json
from gexbot.errors import ConfigError
from gexbot.market.recdecode import Decoded, decode
from gexbot.settings import VARIANT_PATTERN

FORMAT = "gexbot-recording"
VERSION = 1
SUFFIX = ".jsonl.gz"
LEVEL = 6
HEADER_LIMIT = 1 << 20
"""Bytes of the longest header line read (a header with preset and model is about 4 KB)."""
_HEADER = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"
"""Deflate, no flags, no modification time (so equal content gives equal bytes), unknown OS."""


def day_path(directory: Path, variant: str, day: date) -> Path:
    """Where the recording of `variant` on session `day` lives: DIR/<variant>/<day>.jsonl.gz."""
    return Path(directory) / variant / f"{day.isoformat()}{SUFFIX}"


def header_line(variant: str, day: date, extra: dict[str, Any]) -> dict[str, Any]:
    """The first line of a day's file: the format keys first, then whatever else is known."""
    return {"format": FORMAT, "version": VERSION, "variant": variant,
            "session": day.isoformat(), **extra}


def is_header_line(line: bytes) -> bool:
    """Whether a raw line is a recording header (of any version)."""
    try:
        item = load_json(line, strict_numbers=False)
    except ValueError:
        return False
    return isinstance(item, dict) and item.get("format") == FORMAT


def check_header(header: object, path: Path) -> dict[str, Any]:
    """The header if it is one this version reads; ConfigError naming the file otherwise."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a gexbot recording (line 1 is not its header)")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"{path}: recording header has no valid version")
    if version > VERSION:
        raise ConfigError(
            f"{path}: recording format version {version} is newer than this gexbot reads"
            f" ({VERSION}); upgrade gexbot"
        )
    variant = header.get("variant")
    if not isinstance(variant, str) or not variant:
        raise ConfigError(f"{path}: recording header names no variant")
    if not re.fullmatch(VARIANT_PATTERN, variant):
        raise ConfigError(
            f"{path}: recording header's variant {_clip(variant)} is not a variant name"
            " (lower-case letters and digits)"
        )
    session = header.get("session")
    try:
        if not isinstance(session, str) or len(session) != len("2026-11-20"):
            raise ValueError(session)
        date.fromisoformat(session)
    except ValueError:
        raise ConfigError(
            f"{path}: recording header has no valid session date (got {_clip(session)})"
        ) from None
    return header


def _clip(value: object, width: int = 40) -> str:
    """A header value as a message quotes it: escaped, cut short."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width]}..."


def read(path: Path) -> Decoded:
    """Decode a recording file; OSError propagates (the caller names the file)."""
    return decode(Path(path).read_bytes())


def read_header(path: Path) -> dict[str, Any]:
    """Line 1 of a recording, checked, without decoding the rest of the file.

    At most `HEADER_LIMIT` bytes are inflated: a first line longer than that is no header.
    """
    text = bytearray()
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            # A FIFO named like a recording would block the open until a writer came.
            raise ConfigError(f"{path}: not a regular file, so not a gexbot recording")
        with Path(path).open("rb") as handle:
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
            while b"\n" not in text and len(text) <= HEADER_LIMIT and not inflater.eof:
                data = inflater.unconsumed_tail or handle.read(1 << 16)
                if not data:
                    break
                text += inflater.decompress(data, 1 << 16)
    except OSError as problem:
        raise ConfigError(f"{path}: cannot read ({problem.strerror})") from None
    except zlib.error:
        raise ConfigError(f"{path}: not a gzip file") from None
    first = bytes(text.split(b"\n", 1)[0])
    if len(first) > HEADER_LIMIT:
        raise ConfigError(
            f"{path}: not a gexbot recording (line 1 is longer than {HEADER_LIMIT:,} bytes)"
        )
    try:
        header = load_json(first, strict_numbers=False)
    except json.JSONDecodeError:
        raise ConfigError(f"{path}: not a gexbot recording (line 1 is not JSON)") from None
    except ValueError as problem:
        raise ConfigError(f"{path}: not a gexbot recording (line 1: {problem})") from None
    return check_header(header, path)


def hold(path: Path) -> int | None:
    """Open `path` (created if missing, never through a symbolic link) and take the exclusive
    lock its one writer keeps while it records; None while another process records it.

    A writer closes what a killed one left open by cutting its last bytes: done to a file that
    another recorder is still writing, that would cut that recorder's lines.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class MemberWriter:
    """Appends one gzip member to a file: each line goes out at once behind a sync flush."""

    def __init__(self, path: Path) -> None:
        """Open `path` for appending and write the member header."""
        self._file = Path(path).open("ab")  # noqa: SIM115 - open for the member's life
        self._deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
        self._crc = 0
        self._length = 0
        self._file.write(_HEADER)

    def write_line(self, line: bytes) -> None:
        """Compress one line (newline added), sync-flush it and hand it to the OS."""
        data = line + b"\n"
        self._crc = zlib.crc32(data, self._crc)
        self._length += len(data)
        self._file.write(self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH))
        self._file.flush()

    def close(self) -> None:
        """Finish the member (final block and trailer) and close the file."""
        if self._file.closed:
            return
        try:
            trailer = struct.pack("<II", self._crc, self._length & 0xFFFFFFFF)
            self._file.write(self._deflate.flush(zlib.Z_FINISH) + trailer)
        finally:
            self._file.close()


def close_open_member(path: Path, decoded: Decoded) -> int:
    """Close the member a killed writer left open at the end of `path`; returns bytes cut.

    Only the bytes after the member's last sync point go: part of the line being written when
    the writer died, which no reader can decode. Everything before is kept as it is.
    """
    if decoded.cut_at is None:
        return 0
    with Path(path).open("r+b") as handle:
        size = handle.seek(0, 2)
        handle.truncate(decoded.cut_at)
        handle.seek(decoded.cut_at)
        handle.write(decoded.closing)
    return size - decoded.cut_at
