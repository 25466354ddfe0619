"""Minutes the database could not take yet, kept on disk beside it so that a kill loses none.

While a reader (the `duckdb` CLI, a notebook) holds the database file, the daemon cannot write
its minutes there. They wait in memory for the next chance, and also here, in `<db>.pending`:
one JSON line per minute, flushed and fsynced before the minute counts as committed. A daemon
killed while a reader held the file finds them at its next start and writes them first. A last
line cut short by the kill was never counted as committed, so it is dropped with a warning.

Writing a journaled minute to the database twice is harmless: every table is keyed, so the
second write changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gexbot.shell.schema import Row

FORMAT = "gexbot-pending"
VERSION = 1


@dataclass(frozen=True, slots=True)
class PendingMinute:
    """One minute's writes, ready to go out: rows in column order and the state text."""

    minute: datetime
    decisions: tuple[Row, ...]
    trades: tuple[Row, ...]
    state: str


def journal_path(database: Path) -> Path:
    """The journal beside `database`: the same name with `.pending` appended."""
    return database.with_name(database.name + ".pending")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        return datetime.fromisoformat(value["datetime"])
    return value


def _line(item: PendingMinute) -> str:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "minute": item.minute.isoformat(),
        "decisions": [[_encode(v) for v in row] for row in item.decisions],
        "trades": [[_encode(v) for v in row] for row in item.trades],
        "state": item.state,
    }
    return json.dumps(document, separators=(",", ":"), allow_nan=True)


def _item(document: dict[str, Any]) -> PendingMinute:
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise ValueError("not a gexbot pending-minute line")
    return PendingMinute(
        minute=datetime.fromisoformat(document["minute"]),
        decisions=tuple(tuple(_decode(v) for v in row) for row in document["decisions"]),
        trades=tuple(tuple(_decode(v) for v in row) for row in document["trades"]),
        state=document["state"],
    )


class Journal:
    """Append-only file of pending minutes; emptied once the database holds them."""

    def __init__(self, database: Path, logger: logging.Logger) -> None:
        self.path = journal_path(database)
        self._log = logger

    def append(self, items: list[PendingMinute]) -> None:
        """Add minutes and make them durable (flush + fsync) before returning."""
        if not items:
            return
        text = "".join(_line(item) + "\n" for item in items)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def load(self) -> list[PendingMinute]:
        """The journaled minutes, oldest first; an unreadable line ends the list with a warning."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        items: list[PendingMinute] = []
        for number, line in enumerate(lines, start=1):
            try:
                items.append(_item(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                self._log.warning(
                    "%s: line %d unreadable (cut short by a kill?); kept the %d minute(s)"
                    " before it",
                    self.path,
                    number,
                    len(items),
                )
                break
        return items

    def clear(self) -> None:
        """Forget every journaled minute (the database holds them now)."""
        self.path.unlink(missing_ok=True)
