"""Reading a gexbot database for a report, as any reader does: read-only, briefly, then let go.

A daemon at a human pace opens its file only to commit a minute, and DuckDB lets no other
process in while one holds it. So the report opens the file read-only, reads the rows it needs
in one go, and closes it before drawing anything: the daemon is never kept waiting longer than
that read. While the daemon holds the file (a run at `--speed max` or a replay holds it for the
whole run) the report retries for a moment, then says so in one line.

Everything wrong with the input (no file, a directory, another program's database, no rows for
the variant or the dates asked for) is a `ConfigError` with one line that says what to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import duckdb
import pandas as pd

from gexbot.core.session import EASTERN
from gexbot.errors import ConfigError
from gexbot.shell.dbfile import FileHeld, connect_reader, first_line
from gexbot.shell.schema import DECISION_COLUMNS, TRADE_COLUMNS

DECISION_FIELDS = (
    "variant", "at", "spot", "gex_regime", "ofi", "hurst", "hmm_state", "band_mid",
    "band_upper", "band_lower", "action", "reason", "blocked_by", "balance",
)  # fmt: skip
"""The `decisions` columns a report draws (the rest of the table is not read)."""
TRADE_FIELDS = tuple(name for name, _ in TRADE_COLUMNS)
KINDS = dict((*DECISION_COLUMNS, *TRADE_COLUMNS))
"""Each column's SQL type (the two tables agree on the types of the names they share)."""
READ_RETRIES = 10
RETRY_DELAY_S = 0.2
@dataclass(frozen=True)
class Ledger:
    """What a report shows: decision and trade rows, times in New York, oldest first."""

    decisions: pd.DataFrame
    trades: pd.DataFrame
    source: str

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants present, in order of first appearance (es before nq when both)."""
        return tuple(dict.fromkeys(self.decisions["variant"].astype(str)))


def printable(text: object) -> str:
    """Text from a database made safe for a terminal line (control characters replaced)."""
    return "".join(c if c.isprintable() else "?" for c in str(text))[:80]


def day_bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """The instants from the first minute of `start` to just before the day after `end` (NY)."""
    if start is not None and end is not None and start > end:
        raise ConfigError(f"--from {start} is after --to {end}: nothing lies between them")
    low = datetime.combine(start, clock_time(0), EASTERN) if start is not None else None
    high = (
        datetime.combine(end + timedelta(days=1), clock_time(0), EASTERN)
        if end is not None
        else None
    )
    return low, high


def read_ledger(
    path: Path,
    variant: str | None,
    start: date | None = None,
    end: date | None = None,
    *,
    wait: Callable[[float], None] = time.sleep,
) -> Ledger:
    """The rows of `variant` (all when None) between `start` and `end` (session dates, inclusive).

    ConfigError (one line) when the file is missing, held, not a gexbot database, or holds
    nothing for the variant and dates asked for.
    """
    low, high = day_bounds(start, end)
    path = Path(path)
    check_file(path, "pass the daemon's --db file")
    con = connect_read_only(path, wait, DAEMON_HOLDS)
    try:
        _check_tables(con, path)
        present = [v for (v,) in con.execute("SELECT DISTINCT variant FROM decisions").fetchall()]
        _check_variant(path, variant, present)
        chosen = [variant] if variant is not None else present
        decisions = _read(con, "decisions", DECISION_FIELDS, "at", chosen, low, high)
        if decisions.empty:
            span = con.execute(
                'SELECT min("at"), max("at") FROM decisions WHERE variant IN ?', [chosen]
            ).fetchone()
            raise ConfigError(_no_session(path, variant, start, end, span))
        trades = _read(con, "trades", TRADE_FIELDS, "timestamp", chosen, low, high)
    except duckdb.Error as problem:
        raise ConfigError(f"{path}: cannot read it ({first_line(problem)})") from None
    finally:
        con.close()
    return Ledger(decisions, trades, str(path))


DAEMON_HOLDS = ("a daemon at --speed max or a replay keeps its file for the whole run; try"
                " again when it has finished")


def check_file(path: Path, hint: str) -> None:
    """A file is there to read; else one line, ending with what to pass instead."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file; {hint}")
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; {hint}")


def connect_read_only(
    path: Path, wait: Callable[[float], None], holder: str, option: str = "--db"
) -> duckdb.DuckDBPyConnection:
    """A read-only connection, retried for a moment while a writer holds the file; `holder`
    says in the refusal who may hold it and what to do, `option` names the file's option.

    What the file is comes from its first bytes, never from the words of DuckDB's error (a path
    that merely contains "lock" or "sqlite" says nothing about the file).
    """
    try:
        return connect_reader(path, wait, READ_RETRIES, RETRY_DELAY_S, option)
    except FileHeld:
        raise ConfigError(f"{path} is held by another process ({holder})") from None


def _check_tables(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Both gexbot tables, with at least the columns a report reads."""
    for table, wanted in (("decisions", DECISION_FIELDS), ("trades", TRADE_FIELDS)):
        found = {
            name
            for (name,) in con.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'main' AND table_name = ?",
                [table],
            ).fetchall()
        }
        if not found:
            hint = ("it holds sweeps: pass it as --sweep" if _has_table(con, "sweeps")
                    else "pass the file the daemon's --db wrote")
            raise ConfigError(f"{path} is not a gexbot database (it has no {table} table); {hint}")
        missing = [name for name in wanted if name not in found]
        if missing:
            raise ConfigError(
                f"{path}: table {table} lacks the column(s) {', '.join(missing)};"
                " it was not written by gexbot"
            )


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    ((found,),) = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main'"
        " AND table_name = ?", [table]).fetchall()
    return bool(found)


def _check_variant(path: Path, variant: str | None, present: Sequence[object]) -> None:
    if not present:
        raise ConfigError(f"{path} holds no decisions yet: run the daemon on it first")
    if variant is not None and variant not in present:
        held = ", ".join(printable(v) for v in present)
        raise ConfigError(f"{path} holds no decisions of variant {variant} (it holds: {held})")


def _no_session(
    path: Path,
    variant: str | None,
    start: date | None,
    end: date | None,
    span: tuple[object, ...] | None,
) -> str:
    which = f"variant {variant}" if variant is not None else "any variant"
    asked = f"from {start or 'the start'} to {end or 'the end'}"
    held = ""
    if span is not None and isinstance(span[0], datetime) and isinstance(span[1], datetime):
        first, last = span[0].astimezone(EASTERN).date(), span[1].astimezone(EASTERN).date()
        held = f"; it holds {first} to {last}"
    return f"{path}: no session of {which} {asked}{held}"


def _read(
    con: duckdb.DuckDBPyConnection,
    table: str,
    fields: Sequence[str],
    order: str,
    variants: Sequence[str],
    low: datetime | None,
    high: datetime | None,
) -> pd.DataFrame:
    where = ["variant IN ?"]
    params: list[object] = [list(variants)]
    if low is not None:
        where.append(f'"{order}" >= ?')
        params.append(low)
    if high is not None:
        where.append(f'"{order}" < ?')
        params.append(high)
    columns = ", ".join(f'"{name}"' for name in fields)
    sql = (
        f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)}"  # noqa: S608 (constants)
        f' ORDER BY variant, "{order}"'
    )
    frame = con.execute(sql, params).df()
    return normalized(frame, fields)


def normalized(frame: pd.DataFrame, fields: Sequence[str]) -> pd.DataFrame:
    """`frame` with exactly `fields`: times in New York, numbers as floats (NaN where NULL),
    text as Python objects (None where NULL), whatever built it (DuckDB or rows in memory)."""
    frame = frame.reindex(columns=list(fields))
    for name in fields:
        column, kind = frame[name], KINDS[name]
        if kind == "TIMESTAMPTZ":
            frame[name] = pd.to_datetime(column, utc=True).dt.tz_convert(EASTERN)
        elif kind in ("DOUBLE", "INTEGER"):
            frame[name] = pd.to_numeric(column, errors="coerce").astype(float)
        else:
            frame[name] = column.astype(object).where(column.notna(), None)
    return frame.reset_index(drop=True)

