"""Recorded sessions served back as a `Transport`, so a recorded day runs through the same code.

The matching rule is part of the recording format: a request is answered by the exchange
recorded for the same endpoint in the same clock minute whose symbols include the requested
ones (`symbols` of quotes, `symbol` of the others); of several, the last one recorded. Nothing
else of the request is compared, because a live run asks "now" and the replayed clock runs on
its own, so no other parameter can make a line unusable. A request nothing matches fails the
way a dropped connection does live (no status, an error in words), so the loop skips that
minute as it would have.

Files are read lazily, one session day at a time, so a month of recordings costs the memory
of one day.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from gexbot.core.session import EASTERN
from gexbot.documents import unique_keys
from gexbot.errors import ConfigError
from gexbot.market import recfile
from gexbot.market.recording import eastern_date
from gexbot.market.transport import ENDPOINTS, Endpoint, Exchange, ManagedTransport

log = logging.getLogger("gexbot.replay")
MAX_LINE_WARNINGS = 5
_MinuteKey = tuple[str, int]


def minute_key(at: datetime) -> int:
    """The clock minute of a timezone-aware time, as whole minutes since the epoch."""
    return int(at.timestamp() // 60)


def discover(paths: Sequence[Path]) -> list[Path]:
    """The recording files named by `paths` (files, or folders searched recursively)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(path.rglob(f"*{recfile.SUFFIX}"))
            if not inside:
                raise ConfigError(f"{path}: no recordings (*{recfile.SUFFIX}) in this folder")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        elif path.exists():
            raise ConfigError(f"{path}: not a regular file, so not a gexbot recording")
        else:
            raise ConfigError(f"{path}: no such recording file or folder")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def compared(endpoint: str) -> str:
    """The one query parameter the matching rule compares: the symbols asked for."""
    return "symbols" if endpoint == "quotes" else "symbol"


def _symbols(endpoint: str, params: dict[str, str]) -> frozenset[str]:
    raw = params.get(compared(endpoint), "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def query_params(endpoint: str, recorded: object) -> dict[str, str]:
    """A line's `params` as query-string text; ValueError only for what the rule compares.

    Another tool may write a number or a boolean where the recorder writes its text: each
    scalar becomes the text it stands for in a query string (1 -> "1", true -> "true"). A
    parameter the matching rule does not compare never makes a line unusable: a null was not
    sent, and anything else is kept as its JSON text.
    """
    if not isinstance(recorded, dict):
        raise ValueError("params is not an object")
    key = compared(endpoint)
    params: dict[str, str] = {}
    for name, value in recorded.items():
        if isinstance(value, str):
            params[name] = value
        elif isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif isinstance(value, int | float):
            params[name] = json.dumps(value)
        elif name == key:
            raise ValueError(f"params.{key} is {type(value).__name__}, not text or a number")
        elif value is not None:
            params[name] = json.dumps(value, separators=(",", ":"))
    return params


def matches(endpoint: str, asked: dict[str, str], recorded: dict[str, str]) -> bool:
    """Whether a recorded exchange answers the request (symbols included, or symbol equal)."""
    if endpoint == "quotes":
        return _symbols(endpoint, asked) <= _symbols(endpoint, recorded)
    return asked.get("symbol") == recorded.get("symbol")


_PLAIN = json.JSONDecoder()
_UNIQUE = json.JSONDecoder(object_pairs_hook=unique_keys)


def _skip_space(text: str, at: int) -> int:
    while text[at:at + 1] in (" ", "\t", "\n", "\r"):
        at += 1
    return at


def _loads(raw: bytes | str) -> Any:
    """JSON of a line; ValueError for a key given twice or nesting beyond the stack.

    Keys must be unique in the line's object and in its `params`; a body is the answer as it
    came (live, a key given twice in it was read as the last one), parsed at the C parser's
    speed, without a Python call per object (that would cost half again a replay's parsing).
    """
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        at = _skip_space(text, 0)
        if not text.startswith("{", at):
            return _UNIQUE.decode(text)
        item: dict[str, Any] = {}
        at = _skip_space(text, at + 1)
        while not text.startswith("}", at):
            if item:
                if not text.startswith(",", at):
                    raise ValueError(f"expected ',' or '}}' at character {at}")
                at = _skip_space(text, at + 1)
            if not text.startswith('"', at):
                raise ValueError(f"expected a key at character {at}")
            key, at = _PLAIN.raw_decode(text, at)
            at = _skip_space(text, at)
            if not text.startswith(":", at):
                raise ValueError(f"expected ':' at character {at}")
            at = _skip_space(text, at + 1)
            decoder = _UNIQUE if key == "params" else _PLAIN
            value, at = decoder.raw_decode(text, at)
            if key in item:
                raise ValueError(f"key {key!r} appears twice")
            item[key] = value
            at = _skip_space(text, at)
        if _skip_space(text, at + 1) != len(text):
            raise ValueError(f"extra data after the object at character {at + 1}")
        return item
    except RecursionError:
        raise ValueError("nested too deeply to read") from None


def parse_line(raw: bytes) -> Exchange:
    """One exchange line as an `Exchange`; ValueError saying what is wrong with it."""
    item: Any = _loads(raw)
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    missing = [key for key in ("at", "endpoint", "params", "status", "body", "error")
               if key not in item]
    if missing:
        raise ValueError(f"no {missing[0]!r}")
    at = datetime.fromisoformat(str(item["at"]))
    if at.tzinfo is None:
        raise ValueError(f"at {item['at']!r} has no UTC offset")
    endpoint = item["endpoint"]
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint {endpoint!r} is not a market-data endpoint")
    params = query_params(endpoint, item["params"])
    status = item["status"]
    if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
        raise ValueError(f"status {status!r} is not an HTTP status or null")
    error = item["error"]
    if error is not None and not isinstance(error, str):
        raise ValueError("error is neither text nor null")
    return Exchange(at=at, endpoint=endpoint, params=params, status=status, body=item["body"],
                    error=error)


_PREFIX = re.compile(rb'\{"at":"([^"\\]*)","endpoint":"([a-z]+)","params":(\{[^{}]*\}),')
"""The start of a line as the recorder writes it, enough to index it without its body."""


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A recorded line a replay cannot use: where it is, why, and its minute key when known."""

    where: str
    why: str
    minute: int | None


@dataclass(slots=True)
class _Entry:
    """One recorded line: what the index needs now, the rest parsed when it is asked for."""

    params: dict[str, str]
    raw: bytes
    where: str


class _Day:
    """One session day's exchanges, indexed by (endpoint, clock minute), in recorded order.

    Lines are kept as text and parsed when served: a day's parsed bodies would take several
    times the memory of its text.
    """

    def __init__(self, day: date, paths: Sequence[Path]) -> None:
        self.day = day
        self.index: dict[_MinuteKey, list[_Entry]] = {}
        self.unindexed: list[LeftOut] = []
        """Lines left out as the day was read (the minute of none of them is known)."""
        midnight = datetime.combine(day, time(0), tzinfo=EASTERN)
        self._first_minute = minute_key(midnight)
        self._end_minute = minute_key(datetime.combine(day + timedelta(days=1), time(0),
                                                       tzinfo=EASTERN))
        for path in paths:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            decoded = recfile.read(path)
        except OSError as problem:
            log.warning("%s: cannot read (%s); its exchanges are missing", path,
                        problem.strerror)
            return
        for said in decoded.problems:
            log.warning("%s: %s", path, said)
        if decoded.too_long:
            self.unindexed.append(LeftOut(str(path), f"{decoded.too_long} line(s) too long to"
                                          " read", None))
        bad = 0
        elsewhere = 0
        for number, raw in zip(decoded.numbers[1:], decoded.lines[1:], strict=True):
            if raw.startswith(b'{"format"') and recfile.is_header_line(raw):
                continue  # a writer that appended after a restart began with a header again
            try:
                key, params = _index_key(raw)
            except ValueError as problem:
                bad += 1
                self.unindexed.append(LeftOut(f"{path}: line {number}", str(problem), None))
                if bad <= MAX_LINE_WARNINGS:
                    log.warning("%s: line %d left out: %s", path, number, problem)
                continue
            if not self._first_minute <= key[1] < self._end_minute:
                elsewhere += 1
            self.index.setdefault(key, []).append(_Entry(params, raw, f"{path}: line {number}"))
        if bad > MAX_LINE_WARNINGS:
            log.warning("%s: %d unreadable lines left out in all", path, bad)
        if elsewhere:
            log.warning(
                "%s: %d exchange(s) made on another day than the header's session %s; a replay"
                " of %s never asks for them", path, elsewhere, self.day, self.day,
            )

    def minutes(self) -> frozenset[int]:
        """The clock minutes (minute keys) holding at least one exchange."""
        return frozenset(minute for _, minute in self.index)

    def left_out(self) -> list[LeftOut]:
        """Every line of the day a replay cannot use, each indexed line parsed to find out."""
        found = list(self.unindexed)
        for (_, minute), entries in sorted(self.index.items(), key=lambda item: item[0][1]):
            for entry in entries:
                try:
                    parse_line(entry.raw)
                except ValueError as problem:
                    found.append(LeftOut(entry.where, str(problem), minute))
        return found

    def serve(self, endpoint: str, minute: int, params: dict[str, str]) -> Exchange | None:
        """The last recorded exchange of the minute that answers `params`, parsed now."""
        for entry in reversed(self.index.get((endpoint, minute), [])):
            if not matches(endpoint, params, entry.params):
                continue
            try:
                return parse_line(entry.raw)
            except ValueError as problem:
                log.warning("%s left out: %s", entry.where, problem)
        return None


def _index_key(raw: bytes) -> tuple[_MinuteKey, dict[str, str]]:
    """(endpoint, minute) and params of a line, from its prefix when it has the usual layout."""
    found = _PREFIX.match(raw)
    if found is None:
        exchange = parse_line(raw)
        return (exchange.endpoint, minute_key(exchange.at)), exchange.params
    at = datetime.fromisoformat(found.group(1).decode())
    if at.tzinfo is None:
        raise ValueError(f"at {found.group(1).decode()!r} has no UTC offset")
    endpoint = found.group(2).decode()
    return (endpoint, minute_key(at)), query_params(endpoint, _loads(found.group(3)))


class ReplayTransport(ManagedTransport):
    """Serves recorded exchanges by the matching rule; `variant` and `sessions()` describe them.

    Parameters
    ----------
    paths : recording files or folders (searched recursively); all of one variant.
    session_of : the session day of a clock time, as the recorder chose files (New York date).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        session_of: Callable[[datetime], date] = eastern_date,
    ) -> None:
        self._session_of = session_of
        self.headers: dict[Path, dict[str, Any]] = {
            path: recfile.read_header(path) for path in discover(paths)
        }
        variants = sorted({str(header["variant"]) for header in self.headers.values()})
        if len(variants) > 1:
            raise ConfigError(
                f"recordings of several variants ({', '.join(variants)}) given; replay one at a"
                " time, e.g. the folder of one variant"
            )
        self.variant = variants[0]
        self._files: dict[date, list[Path]] = {}
        for path, header in self.headers.items():
            self._files.setdefault(date.fromisoformat(header["session"]), []).append(path)
        for day, files in sorted(self._files.items()):
            if len(files) > 1:
                shown = ", ".join(str(path) for path in files)
                log.warning("%s: %d recordings (%s); on a tie the later file wins", day,
                            len(files), shown)
        self._lock = threading.Lock()
        self._loaded: _Day | None = None

    def sessions(self) -> list[date]:
        """The recorded session days, oldest first (closed days included; the caller decides)."""
        return sorted(self._files)

    def files(self, day: date) -> list[Path]:
        """The recording files of `day`, in the order their exchanges are read."""
        return list(self._files.get(day, []))

    def recorded_minutes(self, day: date) -> frozenset[int]:
        """Minute keys (`minute_key`) of `day` for which at least one exchange was recorded."""
        with self._lock:
            return self._day(day).minutes()

    def left_out(self, day: date) -> list[LeftOut]:
        """The lines of `day` a replay leaves out (unreadable, too long); parses the whole day."""
        with self._lock:
            return self._day(day).left_out()

    def get(self, endpoint: Endpoint, params: dict[str, str], at: datetime) -> Exchange:
        """The last recorded exchange matching the request, or a failure like a lost connection."""
        with self._lock:
            found = self._day(self._session_of(at)).serve(endpoint, minute_key(at), params)
        if found is not None:
            return found
        asked = ",".join(sorted(_symbols(endpoint, params))) or "no symbol"
        return Exchange(
            at=at,
            endpoint=endpoint,
            params=dict(params),
            status=None,
            body=None,
            error=f"not recorded (no {endpoint} exchange for {asked} in the minute"
            f" {at.astimezone(EASTERN):%Y-%m-%d %H:%M})",
        )

    def _day(self, day: date) -> _Day:
        if self._loaded is None or self._loaded.day != day:
            self._loaded = None
            self._loaded = _Day(day, self._files.get(day, []))
        return self._loaded
