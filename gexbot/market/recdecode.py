"""Decoding a recording file: every complete line of its gzip members, whatever a kill left.

A day's file is a sequence of gzip members, one per process that wrote to it (see `recfile`).
Reading is tolerant of what a kill leaves behind (a member without trailer, a half line) and
of a member that breaks off in the middle of the file: complete lines are kept and each
problem is reported in words for the caller to warn about.

Output is inflated a piece at a time and cut into lines as it comes, so one line costs at most
`MAX_LINE_BYTES` of memory however far its compressed bytes expand (a 200 KB member can hold a
200 MB line): a longer line is counted, left out and reported, and the lines after it are read.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

MAX_LINE_BYTES = 32 << 20
"""The longest line kept: a chain of 500 strikes over 31 expirations (the largest a preset may
ask for) is about 28 MB; a shipped preset's chain line is about 150 KB."""
_PIECE = 1 << 20
"""Output inflated per step."""
_MAGIC = b"\x1f\x8b\x08"
_SYNC_MARK = b"\x00\x00\xff\xff"
_FINAL_EMPTY_BLOCK = b"\x03\x00"
_FTEXT, _FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 1, 2, 4, 8, 16


@dataclass
class Decoded:
    """What a file held: its complete lines (without newlines) and the problems met on the way.

    When the last member has no trailer (a killed writer), `cut_at` is where its end that no
    trailer can close begins (its last sync point), `closing` the bytes that close it there
    (empty when the member goes whole) and `orphans` the complete lines decoded past that point,
    which a writer appending to the file writes again so that none is lost; `cut_at` is None
    when the file ends cleanly. `too_long` counts the complete lines left out for their length.
    `numbers` are the lines' numbers in the file (from 1), counting the lines left out (empty,
    too long, cut short) too, so that a message names the line a reader finds there.
    """

    lines: list[bytes] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    next_number: int = 1
    """The number the next member's first line gets."""
    problems: list[str] = field(default_factory=list)
    too_long: int = 0
    cut_at: int | None = None
    closing: bytes = b""
    orphans: list[bytes] = field(default_factory=list)


class _Lines:
    """A member's output, cut into lines as it is inflated; too long a line is only counted.

    `lines` are (offset in the output where the line starts, the line without its newline);
    empty lines are skipped. `numbers` holds each kept line's number among all the member's
    lines (from 0), `ended` how many lines ended so far. `crc` and `length` cover the whole
    output, kept lines or not, for the member's trailer. With `keep` False only the output's
    checksum, length and ends are followed (to test where a member can be closed).
    """

    def __init__(self, keep: bool = True) -> None:
        self.limit = MAX_LINE_BYTES
        self.keep = keep
        self.lines: list[tuple[int, bytes]] = []
        self.numbers: list[int] = []
        self.ended = 0
        self.too_long: list[int] = []
        """Lengths of the lines left out for their length."""
        self.length = 0
        self.crc = 0
        self.first = b""
        self.last = b""
        self._pieces: list[bytes] = []
        self._open_at = 0
        self._open_length = 0

    @property
    def tail(self) -> int:
        """Bytes of the last line, not (yet) ended by a newline."""
        return self._open_length

    def feed(self, data: bytes) -> None:
        """Take the next piece of output."""
        if not data:
            return
        self.crc = zlib.crc32(data, self.crc)
        self.first = self.first or data[:1]
        self.last = data[-1:]
        if self.keep:
            start = 0
            while (newline := data.find(b"\n", start)) != -1:
                self._extend(data[start:newline])
                self._end_line(self.length + newline + 1)
                start = newline + 1
            self._extend(data[start:])
        self.length += len(data)

    def _extend(self, part: bytes) -> None:
        if not part:
            return
        if self._open_length <= self.limit:
            if self._open_length + len(part) <= self.limit:
                self._pieces.append(part)
            else:
                self._pieces = []
        self._open_length += len(part)

    def _end_line(self, next_at: int) -> None:
        if self._open_length > self.limit:
            self.too_long.append(self._open_length)
        elif self._open_length:
            self.lines.append((self._open_at, b"".join(self._pieces)))
            self.numbers.append(self.ended)
        self.ended += 1
        self._pieces, self._open_length, self._open_at = [], 0, next_at

    def mark(self) -> _Mark:
        """The state to go back to when a piece of input turns out to be broken."""
        return _Mark(len(self.lines), len(self.too_long), self.ended, self.length, self.crc,
                     self.first, self.last, list(self._pieces), self._open_at, self._open_length)

    def restore(self, mark: _Mark) -> None:
        """Go back to `mark`."""
        del self.lines[mark.lines:]
        del self.numbers[mark.lines:]
        del self.too_long[mark.too_long:]
        self.ended = mark.ended
        self.length, self.crc, self.first, self.last = mark.length, mark.crc, mark.first, mark.last
        self._pieces, self._open_at, self._open_length = mark.pieces, mark.open_at, mark.open_length


@dataclass(frozen=True, slots=True)
class _Mark:
    """Where a `_Lines` stood (counts of its lists, and the rest of its state)."""

    lines: int
    too_long: int
    ended: int
    length: int
    crc: int
    first: bytes
    last: bytes
    pieces: list[bytes]
    open_at: int
    open_length: int


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

    output: _Lines
    end: int
    closed: bool
    broken: bool


def _decompress_into(inflater: zlib._Decompress, data: bytes, output: _Lines) -> None:
    """Inflate `data` into `output` a bounded piece at a time."""
    while True:
        piece = inflater.decompress(data, _PIECE)
        output.feed(piece)
        data = inflater.unconsumed_tail
        if inflater.eof or (not data and len(piece) < _PIECE):
            return


def _inflate(data: bytes, start: int, end: int | None = None, keep: bool = True) -> _Member:
    """Inflate the deflate data from `start` (to `end`); keeps what decoded before an error.

    Input goes in large chunks; a chunk that fails is fed again in ever smaller pieces from a
    saved state, so the output up to the failing byte is kept.
    """
    stop = len(data) if end is None else end
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    output = _Lines(keep=keep)
    step = 1 << 16
    at = start
    while at < stop:
        chunk = data[at:min(at + step, stop)]
        saved, mark = inflater.copy(), output.mark()
        try:
            _decompress_into(inflater, chunk, output)
        except zlib.error:
            if step == 1:
                return _Member(output, at, closed=False, broken=True)
            inflater, step = saved, max(1, step // 16)
            output.restore(mark)
            continue
        if inflater.eof:
            used = len(chunk) - len(inflater.unused_data)
            return _Member(output, at + used, closed=True, broken=False)
        at += len(chunk)
    return _Member(output, stop, closed=False, broken=False)


def _resync(data: bytes, after: int) -> int | None:
    """The next offset past `after` where a member header starts whose data inflates cleanly."""
    at = data.find(_MAGIC, after)
    while at != -1:
        start = _body_start(data, at)
        if start is not None:
            member = _inflate(data, start, keep=False)
            if not member.broken and member.output.first in (b"{", b""):
                return at
        at = data.find(_MAGIC, at + 1)
    return None


def _take_lines(output: _Lines, decoded: Decoded, where: str) -> None:
    """Complete lines of one member; a last line without its newline is reported and left out."""
    first = decoded.next_number
    decoded.lines.extend(line for _, line in output.lines)
    decoded.numbers.extend(first + number for number in output.numbers)
    decoded.next_number = first + output.ended + (1 if output.tail else 0)
    decoded.too_long += len(output.too_long)
    if output.too_long:
        decoded.problems.append(
            f"{where}: {len(output.too_long)} line(s) longer than {output.limit:,} bytes (the"
            f" longest {max(output.too_long):,}) left out"
        )
    if output.tail > output.limit:
        decoded.problems.append(
            f"{where}: a last line of more than {output.limit:,} bytes was left out"
        )
    elif output.tail:
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
        output = member.output
        where = f"gzip member at offset {pos}"
        if member.closed:
            trailer = data[member.end:member.end + 8]
            if len(trailer) < 8:
                _take_lines(output, decoded, where)
                decoded.problems.append(f"{where}: gzip trailer cut short; lines kept")
                decoded.cut_at = member.end
                decoded.closing = struct.pack("<II", output.crc, output.length & 0xFFFFFFFF)
                break
            crc, length = struct.unpack("<II", trailer)
            if crc == output.crc and length == output.length & 0xFFFFFFFF:
                _take_lines(output, decoded, where)
                pos = member.end + 8
                continue
            # A member cut short by a kill at its very end, the next writer's member right
            # behind it: its last bytes may have been borrowed from the next member's header.
            following = _resync(data, start)
            if following is not None and following < member.end:
                output = _inflate(data, start, end=following).output
            _take_lines(output, decoded, where)
            decoded.problems.append(f"{where}: checksum does not match (damaged data); lines kept")
            if following is None:
                break
            pos = following
            continue
        # Unfinished or broken: a writer that appended after a kill without closing it first
        # leaves the next member inside what would otherwise decode as this one's data.
        following = _resync(data, start)
        if following is not None:
            _take_lines(_inflate(data, start, end=following).output, decoded, where)
            decoded.problems.append(
                f"{where}: broken off before the member at offset {following} (a writer killed"
                " and another appending?); complete lines of both kept"
            )
            pos = following
            continue
        _take_lines(output, decoded, where)
        if member.broken:
            decoded.problems.append(
                f"{where}: data broken off (an interrupted writer?); the rest of the file is"
                " unreadable and left out"
            )
            break
        decoded.problems.append(f"{where}: its writer did not finish (killed?); lines kept")
        _mark_open(data, pos, start, output, decoded)
        break
    return decoded


def _mark_open(data: bytes, member_at: int, start: int, output: _Lines,
               decoded: Decoded) -> None:
    """Find the last sync point of the unfinished member at the end of `data`.

    A sync point is where an empty stored block ends; appending a final empty block and the
    trailer there closes the member. Candidates come from the byte pattern, each checked by
    inflating the member up to it and confirming that the closed stream really ends there.
    """
    at = len(data)
    synced = 0
    decoded.cut_at, decoded.closing = member_at, b""
    while True:
        at = data.rfind(_SYNC_MARK, start, at)
        if at == -1:
            break
        end = at + len(_SYNC_MARK)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        candidate = _Lines(keep=False)
        try:
            _decompress_into(inflater, data[start:end] + _FINAL_EMPTY_BLOCK, candidate)
        except zlib.error:
            continue
        if inflater.eof and not inflater.unused_data and candidate.last == b"\n":
            trailer = struct.pack("<II", candidate.crc, candidate.length & 0xFFFFFFFF)
            decoded.cut_at, decoded.closing = end, _FINAL_EMPTY_BLOCK + trailer
            synced = candidate.length
            break
    decoded.orphans = [line for offset, line in output.lines if offset >= synced]
