"""`python -m gexbot.report`: the page it writes, and one line (exit 2) for every bad input."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import pytest
from report_cli_runs import assert_refused, bytes_file, run
from report_rows import at, decision, session, trade, write_db

from gexbot.errors import ConfigError
from gexbot.report.cli import main
from gexbot.report.source import READ_RETRIES, read_ledger

D1, D2 = date(2026, 10, 5), date(2026, 10, 6)


def two_variants(path: Path) -> Path:
    rows = [*session("es", D1), *session("es", D2), *session("nq", D1, level=24_000.0)]
    trades = [trade("es", at(D1, 3), at(D1, 9)), trade("nq", at(D1, 4), at(D1, 8))]
    return write_db(path, rows, trades)


def test_writes_one_self_contained_page_with_both_variants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = two_variants(tmp_path / "run.db")
    out = tmp_path / "report.html"
    code, lines = run(capsys, "--db", str(db), "--out", str(out))
    assert code == 0, lines
    page = out.read_text(encoding="utf-8")
    assert "<title>gexbot report: ES, NQ</title>" in page
    assert "http://" not in page.split("</script>")[-1]  # nothing fetched from elsewhere
    assert page.count('class="plotly-graph-div"') >= 10
    for section in ("Summary", "Equity and drawdown", "Session days", "Why it did not trade",
                    "Trades by exit reason, side and hour"):
        assert f"<h2>{section}</h2>" in page
    assert '"days":["2026-10-05","2026-10-06"]' in page
    assert lines[-1].split(" ", 2)[2].startswith(f"wrote {out}")


def test_variant_and_dates_narrow_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = two_variants(tmp_path / "run.db")
    out = tmp_path / "es.html"
    code, _ = run(capsys, "--db", str(db), "--variant", "es", "--from", "2026-10-06",
                  "--to", "2026-10-06", "--out", str(out))
    assert code == 0
    page = out.read_text(encoding="utf-8")
    assert "<title>gexbot report: ES</title>" in page
    assert '"days":["2026-10-06"]' in page
    assert "NQ" not in page.split("<body>")[1].split("<script")[0]


def test_a_day_of_skipped_minutes_says_so_on_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [*session("es", D1),
            *(decision("es", at(D2, m), action="SKIP", reason="quote_missing: none",
                       blocked_by=None, spot=None, band_mid=None, band_upper=None,
                       band_lower=None, hurst=None, ofi=None, gex_regime=None,
                       hmm_state=None) for m in range(5))]
    db = write_db(tmp_path / "skips.db", rows)
    out = tmp_path / "r.html"
    code, _ = run(capsys, "--db", str(db), "--out", str(out))
    assert code == 0
    assert ("Every minute of this day was skipped for bad market data (quote_missing 5)"
            in out.read_text(encoding="utf-8"))


def _sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE decisions (variant TEXT)")
    return path


def _foreign_duckdb(path: Path) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE prices (symbol VARCHAR, close DOUBLE)")
    return path


def _wrong_columns(path: Path) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE decisions (variant VARCHAR, \"at\" TIMESTAMPTZ)")
        con.execute("CREATE TABLE trades (variant VARCHAR)")
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


REFUSALS: list[tuple[str, Callable[[Path], Path], list[str], str]] = [
    ("missing file", lambda p: p, [], "no such file"),
    ("a directory", _folder, [], "is a directory"),
    ("a SQLite file", _sqlite, [], "is not a DuckDB database (a SQLite database)"),
    ("random bytes", bytes_file(os.urandom(4096)), [], "is not a DuckDB database (it does not"),
    ("an empty file", bytes_file(b""), [], "is not a DuckDB database (an empty file)"),
    ("another program's DuckDB", _foreign_duckdb, [], "it has no decisions table"),
    ("other columns", _wrong_columns, [], "table decisions lacks the column(s) spot"),
    ("empty gexbot tables", lambda p: write_db(p, []), [], "holds no decisions yet"),
    ("a variant not there", two_variants, ["--variant", "qq"],
     "holds no decisions of variant qq (it holds: es, nq)"),
    ("no session in range", two_variants, ["--from", "2027-01-04"],
     "no session of any variant from 2027-01-04 to the end; it holds 2026-10-05 to 2026-10-06"),
    ("from after to", two_variants, ["--from", "2026-10-06", "--to", "2026-10-05"],
     "--from 2026-10-06 is after --to 2026-10-05"),
    ("out is a directory", two_variants, ["--out", "{tmp}"], "is a directory; name the HTML"),
    ("out in a missing folder", two_variants, ["--out", "{tmp}/no/such/r.html"],
     "cannot write there"),
    ("out is the database", two_variants, ["--out", "{tmp}/input.db"],
     "exists and is not a report gexbot wrote"),
    ("out is a user's page", two_variants, ["--out", "{tmp}/mine.html"],
     "exists and is not a report gexbot wrote"),
    ("out is a link", two_variants, ["--out", "{tmp}/link.html"], "is a symbolic link"),
]


@pytest.mark.parametrize(("case", "make", "extra", "expected"), REFUSALS,
                         ids=[case for case, *_ in REFUSALS])
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    make: Callable[[Path], Path],
    extra: list[str],
    expected: str,
) -> None:
    db = make(tmp_path / "input.db")
    out = tmp_path / "out.html"
    (tmp_path / "mine.html").write_text("<!DOCTYPE html><title>my notes</title>")
    (tmp_path / "link.html").symlink_to(tmp_path / "mine.html")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in extra]
    if "--out" not in args:
        args += ["--out", str(out)]
    assert_refused(capsys, ["--db", str(db), *args], out, expected)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert (tmp_path / "link.html").is_symlink()


def test_a_report_replaces_only_an_earlier_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = two_variants(tmp_path / "run.db")
    out = tmp_path / "r.html"
    assert run(capsys, "--db", str(db), "--out", str(out))[0] == 0
    first = out.read_bytes()
    assert run(capsys, "--db", str(db), "--variant", "es", "--out", str(out))[0] == 0
    assert out.read_bytes() != first
    assert b"<title>gexbot report: ES</title>" in out.read_bytes()


def test_a_path_that_merely_contains_lock_or_sqlite_is_read_for_what_the_file_is(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "lock-sqlite"
    folder.mkdir()
    junk = folder / "locked.db"
    junk.write_bytes(b"no database here")
    waits: list[float] = []
    with pytest.raises(ConfigError, match=r"is not a DuckDB database \(it does not") as refused:
        read_ledger(junk, None, wait=waits.append)
    assert "held" not in str(refused.value)
    assert waits == []
    assert junk.read_bytes() == b"no database here"
    assert len(read_ledger(two_variants(folder / "sqlite.db"), None).decisions) == 90


def test_a_bad_date_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--from", "yesterday"])
    assert stop.value.code == 2
    assert "expected a date like 2026-10-01, got 'yesterday'" in capsys.readouterr().err


def test_the_file_is_free_again_as_soon_as_the_rows_are_read(tmp_path: Path) -> None:
    db = two_variants(tmp_path / "run.db")
    ledger = read_ledger(db, None)
    assert len(ledger.decisions) == 90
    with duckdb.connect(str(db)) as writer:  # refused while a read-only handle stays open
        writer.execute("SELECT 1")


def test_a_file_held_by_a_writer_is_retried_then_refused_in_one_line(tmp_path: Path) -> None:
    db = two_variants(tmp_path / "run.db")
    holder = subprocess.Popen(  # noqa: S603 (our interpreter)
        [sys.executable, "-c",
         "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " sys.stdin.read()", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        waits: list[float] = []
        with pytest.raises(ConfigError, match="is held by another process") as refused:
            read_ledger(db, None, wait=waits.append)
        assert len(waits) == READ_RETRIES
        assert "\n" not in str(refused.value)
    finally:
        holder.communicate(input="", timeout=30)
    assert len(read_ledger(db, "es").decisions) == 60
