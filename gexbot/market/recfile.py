"""The recording file: gzip-compressed JSON Lines, one header line, appended to, never rewritten.

A day's file is a sequence of gzip members, one per process that wrote to it, which `zcat` and
every gzip library read as one stream. Each line is followed by a zlib sync flush written to
the OS at once, so a process killed at any moment leaves a file whose every complete line can
be decoded; only its last member lacks the gzip trailer. The next writer closes that member
properly (cutting off the few bytes of the line that was being written, which no reader could
decode) before it appends its own, so the file is a valid gzip stream again.

Reading is tolerant of what a kill leaves behind (a member without trailer, a half line) and
of a member that breaks off in the middle of the file: complete lines are kept and each
problem is reported in words for the caller to warn about.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from gexbot.errors import ConfigError

FORMAT = "gexbot-recording"
VERSION = 1
SUFFIX = ".jsonl.gz"
LEVEL = 6
_MAGIC = b"\x1f\x8b\x08"
_HEADER = _MAGIC + b"\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"
"""Deflate, no flags, no modification time (so equal content gives equal bytes), unknown OS."""
_SYNC_MARK = b"\x00\x00\xff\xff"
_FINAL_EMPTY_BLOCK = b"\x03\x00"
_FTEXT, _FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 1, 2, 4, 8, 16


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
        item = json.loads(line)
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
    if not isinstance(header.get("variant"), str) or not header["variant"]:
        raise ConfigError(f"{path}: recording header names no variant")
    try:
        date.fromisoformat(str(header.get("session")))
    except ValueError:
        raise ConfigError(f"{path}: recording header has no valid session date") from None
    return header


@dataclass
class Decoded:
    """What a file held: its complete lines (without newlines) and the problems met on the way.

    When the last member has no trailer (a killed writer), `cut_at` is where its end that no
    trailer can close begins (its last sync point), `closing` the bytes that close it there
    (empty when the member goes whole) and `orphans` the complete lines decoded past that point,
    which a writer appending to the file writes again so that none is lost; `cut_at` is None
    when the file ends cleanly.
    """

    lines: list[bytes] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    cut_at: int | None = None
    closing: bytes = b""
    orphans: list[bytes] = field(default_factory=list)


def _body_start(data: bytes, pos: int) -> int | None:
    """Offset of the deflate data of the gzip member at `pos`, or None if no header is there."""
    if data[pos:pos + 3] != _MAGIC or len(data) < pos + 10:
        return None
    flags = data[pos + 3]
    at = pos + 10
    try:
        if flags & _FEXTRA:
            (extra,) = struct.unpack("<H", data[at:at + 2])
            at += 2 + extra
        for flag in (_FNAME, _FCOMMENT):
            if flags & flag:
                at = data.index(b"\x00", at) + 1
        if flags & _FHCRC:
            at += 2
    except (struct.error, ValueError):
        return None
    return at if at <= len(data) else None


@dataclass
class _Member:
    """One member's decoding: its output, where its data ended and whether it closed properly."""

    output: bytes
    end: int
    closed: bool
    broken: bool


def _inflate(data: bytes, start: int) -> _Member:
    """Inflate the deflate data from `start`; keeps what decoded before an error or the end.

    Input goes in large chunks; a chunk that fails is fed again in ever smaller pieces from a
    saved state, so the output up to the failing byte is kept.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pieces: list[bytes] = []
    step = 1 << 16
    at = start
    while at < len(data):
        chunk = data[at:at + step]
        saved = inflater.copy()
        try:
            pieces.append(inflater.decompress(chunk))
        except zlib.error:
            if step == 1:
                return _Member(b"".join(pieces), at, closed=False, broken=True)
            inflater, step = saved, max(1, step // 16)
            continue
        if inflater.eof:
            used = len(chunk) - len(inflater.unused_data)
            return _Member(b"".join(pieces), at + used, closed=True, broken=False)
        at += len(chunk)
    return _Member(b"".join(pieces), len(data), closed=False, broken=False)


def _resync(data: bytes, after: int) -> int | None:
    """The next offset past `after` where a member header starts whose data inflates cleanly."""
    at = data.find(_MAGIC, after)
    while at != -1:
        start = _body_start(data, at)
        if start is not None:
            member = _inflate(data, start)
            if not member.broken and member.output[:1] in (b"{", b""):
                return at
        at = data.find(_MAGIC, at + 1)
    return None


def _split_lines(output: bytes, decoded: Decoded, where: str) -> None:
    """Complete lines of one member; a last line without its newline is reported and left out."""
    lines = output.split(b"\n")
    last = lines.pop()
    decoded.lines.extend(line for line in lines if line)
    if last:
        decoded.problems.append(f"{where}: a last line cut short was left out")


def decode(data: bytes) -> Decoded:
    """Every complete line of the gzip members in `data`, tolerating what a kill leaves."""
    decoded = Decoded()
    pos = 0
    while pos < len(data):
        start = _body_start(data, pos)
        if start is None:
            following = _resync(data, pos + 1)
            decoded.problems.append(
                f"{len(data) - pos if following is None else following - pos} bytes at offset"
                f" {pos} are not gzip data and were skipped"
            )
            if following is None:
                break
            pos = following
            continue
        member = _inflate(data, start)
        where = f"gzip member at offset {pos}"
        if member.closed:
            trailer = data[member.end:member.end + 8]
            if len(trailer) < 8:
                _split_lines(member.output, decoded, where)
                decoded.problems.append(f"{where}: gzip trailer cut short; lines kept")
                decoded.cut_at = member.end
                decoded.closing = struct.pack("<II", zlib.crc32(member.output),
                                              len(member.output) & 0xFFFFFFFF)
                break
            crc, length = struct.unpack("<II", trailer)
            if crc == zlib.crc32(member.output) and length == len(member.output) & 0xFFFFFFFF:
                _split_lines(member.output, decoded, where)
                pos = member.end + 8
                continue
            # A member cut short by a kill at its very end, the next writer's member right
            # behind it: its last bytes may have been borrowed from the next member's header.
            following = _resync(data, start)
            output = member.output
            if following is not None and following < member.end:
                output = _inflate(data[:following], start).output
            _split_lines(output, decoded, where)
            decoded.problems.append(f"{where}: checksum does not match (damaged data); lines kept")
            if following is None:
                break
            pos = following
            continue
        # Unfinished or broken: a writer that appended after a kill without closing it first
        # leaves the next member inside what would otherwise decode as this one's data.
        following = _resync(data, start)
        if following is not None:
            _split_lines(_inflate(data[:following], start).output, decoded, where)
            decoded.problems.append(
                f"{where}: broken off before the member at offset {following} (a writer killed"
                " and another appending?); complete lines of both kept"
            )
            pos = following
            continue
        _split_lines(member.output, decoded, where)
        if member.broken:
            decoded.problems.append(
                f"{where}: data broken off (an interrupted writer?); the rest of the file is"
                " unreadable and left out"
            )
            break
        decoded.problems.append(f"{where}: its writer did not finish (killed?); lines kept")
        _mark_open(data, pos, start, member.output, decoded)
        break
    return decoded


def _mark_open(data: bytes, member_at: int, start: int, output: bytes, decoded: Decoded) -> None:
    """Find the last sync point of the unfinished member at the end of `data`.

    A sync point is where an empty stored block ends; appending a final empty block and the
    trailer there closes the member. Candidates come from the byte pattern, each checked by
    inflating the member up to it and confirming that the closed stream really ends there.
    """
    at = len(data)
    synced = b""
    decoded.cut_at, decoded.closing = member_at, b""
    while True:
        at = data.rfind(_SYNC_MARK, start, at)
        if at == -1:
            break
        end = at + len(_SYNC_MARK)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            candidate = inflater.decompress(data[start:end] + _FINAL_EMPTY_BLOCK)
        except zlib.error:
            continue
        if inflater.eof and not inflater.unused_data and candidate.endswith(b"\n"):
            trailer = struct.pack("<II", zlib.crc32(candidate), len(candidate) & 0xFFFFFFFF)
            decoded.cut_at, decoded.closing = end, _FINAL_EMPTY_BLOCK + trailer
            synced = candidate
            break
    decoded.orphans = [line for line in output[len(synced):].split(b"\n")[:-1] if line]


def read(path: Path) -> Decoded:
    """Decode a recording file; OSError propagates (the caller names the file)."""
    return decode(Path(path).read_bytes())


def read_header(path: Path) -> dict[str, Any]:
    """Line 1 of a recording, checked, without decoding the rest of the file."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(1 << 16)
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
            text = b""
            while data and b"\n" not in text:
                text += inflater.decompress(data)
                data = b"" if inflater.eof else handle.read(1 << 16)
    except OSError as problem:
        raise ConfigError(f"{path}: cannot read ({problem.strerror})") from None
    except zlib.error:
        raise ConfigError(f"{path}: not a gzip file") from None
    first = text.split(b"\n", 1)[0]
    try:
        header = json.loads(first)
    except ValueError:
        raise ConfigError(f"{path}: not a gexbot recording (line 1 is not JSON)") from None
    return check_header(header, path)


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
