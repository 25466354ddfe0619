"""Feature tables on disk: one Parquet file per session day, its provenance in the metadata.

Each file carries what it was built from (gexbot version, table settings, model, data) so a
reader can tell a usable table from a stale or foreign one without trusting the file name.
Files are written to a temporary name and renamed, so a build killed mid-write leaves no
half file under the real name; a file damaged anyway is reported as such, never half read.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gexbot.documents import load_json
from gexbot.research.fold import COLUMN_DTYPES, SessionFeatures

FORMAT = "gexbot-features"
FORMAT_VERSION = 1
META_KEY = b"gexbot"
SUFFIX = ".parquet"


class BadTable(Exception):
    """A table file that cannot be used as it is; the message says why in a few words."""


@dataclass(frozen=True, slots=True, eq=False)
class StoredSession:
    """A session's table as read back: its provenance, facts, numeric columns and skip reasons."""

    path: Path
    meta: dict[str, Any]
    columns: dict[str, np.ndarray]
    skip_reason: list[str | None]

    @property
    def facts(self) -> dict[str, Any]:
        """The session facts (date, open, close, first spot, previous close, gap...)."""
        facts: dict[str, Any] = self.meta["session"]
        return facts


def table_path(directory: Path, day: str) -> Path:
    """Where the table of session `day` (ISO date) lives in `directory`."""
    return directory / f"{day}{SUFFIX}"


def write_session(path: Path, features: SessionFeatures, provenance: dict[str, Any]) -> None:
    """Write one session's table atomically, provenance and facts in the file's metadata."""
    arrays = {name: pa.array(features.columns[name]) for name in COLUMN_DTYPES}
    arrays["skip_reason"] = pa.array(features.skip_reason, type=pa.string())
    meta = {**provenance, "format": FORMAT, "format_version": FORMAT_VERSION,
            "session": features.facts}
    table = pa.table(arrays).replace_schema_metadata({META_KEY: json.dumps(meta)})
    path.parent.mkdir(parents=True, exist_ok=True)
    # A new file under a name no one can guess: a link planted at a predictable name would
    # have the table written through it, over whatever it points to.
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(table, handle)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def read_session(path: Path) -> StoredSession:
    """Read one session's table; `BadTable` when it is unreadable or not a feature table."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as problem:
        raise BadTable(f"not a readable Parquet file ({_short(problem)})") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    try:
        meta = load_json(raw, strict_numbers=False) if raw is not None else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadTable("not a gexbot feature table (no provenance in its metadata)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise BadTable(f"table format {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    if not isinstance(meta.get("session"), dict):
        raise BadTable("no session facts in its metadata")
    columns: dict[str, np.ndarray] = {}
    for name, dtype in COLUMN_DTYPES.items():
        if name not in table.column_names:
            raise BadTable(f"column {name} missing")
        column = table.column(name)
        if column.null_count:
            raise BadTable(f"column {name} has missing values")
        values = column.to_numpy()
        if values.dtype != np.dtype(dtype):
            raise BadTable(f"column {name} is {values.dtype}, expected {np.dtype(dtype)}")
        columns[name] = values
    if "skip_reason" not in table.column_names:
        raise BadTable("column skip_reason missing")
    reasons = table.column("skip_reason").to_pylist()
    return StoredSession(path=path, meta=meta, columns=columns, skip_reason=reasons)


def _short(problem: BaseException) -> str:
    text = " ".join(str(problem).split())
    return text if len(text) <= 80 else text[:77] + "..."
