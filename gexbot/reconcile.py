"""`python -m gexbot.reconcile`: replay recorded days and check the live run did exactly that.

The recorded days are replayed in this process by the daemon's own run (`gexbot.run`, as
`python -m gexbot.live --replay` runs it) into a scratch database, then its `decisions` and
`trades` are compared, column by column and bit for bit, with what the live database holds for
those days. The first minute where they differ is
printed with the column and both values; the exit code is 0 only when nothing differs.

Each run of consecutive recorded sessions is replayed from the state the live run had when it
began (its balance after the last live decision before), so one recorded day can be audited on
its own. Minutes the live run never asked about (the daemon was down, or the loop missed them)
have no exchange in the recording: the replay skips them, and a skip there matches a missing
or skipped live minute whatever its reason. Deciding such a minute live, though, is a
difference: the recording lacks data the live run used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from gexbot import __version__
from gexbot.cli import ArgumentParser
from gexbot.core.engine import EngineParams, initial_state
from gexbot.core.hmm import model_from_dict
from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.core.types import SessionTimes
from gexbot.environment import Environment, add_env_file_argument, load_environment
from gexbot.errors import EXIT_CONFIG, EXIT_OK, ConfigError, ModelError, exit_code_of
from gexbot.market.replay import ReplayTransport, minute_key
from gexbot.model_io import read_model
from gexbot.run import RunPlan
from gexbot.run import run as run_plan
from gexbot.settings import Preset, load_variant
from gexbot.shell.logs import Redactor, setup_logging
from gexbot.shell.reader import decisions_frame, trades_frame
from gexbot.shell.signals import interrupt_on_stop_signals
from gexbot.shell.store import REPLAY, Store
from gexbot.sources import Market

EXIT_DIFFERENT = 1
SKIP = "SKIP"
log = logging.getLogger("gexbot.reconcile")


@dataclass(frozen=True, slots=True)
class Difference:
    """The first place where the live run and its replay part ways."""

    minute: datetime
    table: str
    column: str | None
    live: object
    replay: object
    why: str

    def describe(self) -> str:
        """One line: where, which column, both values, and why it matters."""
        where = f"{self.minute.astimezone(EASTERN):%Y-%m-%d %H:%M} ET"
        column = f"{self.table}.{self.column}" if self.column else self.table
        return (f"first difference at {where} ({column}): live {show(self.live)},"
                f" replay {show(self.replay)}; {self.why}")


@dataclass
class Tally:
    """What was compared, for the closing line."""

    decisions: int = 0
    trades: int = 0
    not_asked: int = 0
    uncommitted: int = 0


def is_null(value: object) -> bool:
    """NULL as it comes out of a frame: None, NaN or NaT."""
    if value is None or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def same(a: object, b: object) -> bool:
    """Identical values: both NULL, or equal (floats bit for bit, times to the microsecond)."""
    if is_null(a) or is_null(b):
        return is_null(a) and is_null(b)
    return bool(a == b)


def show(value: object) -> str:
    """A value as the report prints it: floats with every digit, NULL as such."""
    if is_null(value):
        return "NULL"
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, datetime):
        return f"{value.astimezone(EASTERN):%Y-%m-%d %H:%M:%S}"
    return repr(value) if isinstance(value, str) else str(value)


def _in_sessions(frame: pd.DataFrame, column: str,
                 sessions: Sequence[SessionTimes]) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    keep = pd.Series(False, index=frame.index)
    for session in sessions:
        keep |= (frame[column] >= session.open) & (frame[column] < session.close)
    return [dict(row) for row in frame[keep].to_dict("records")]


def compare_decisions(
    live: pd.DataFrame,
    replay: pd.DataFrame,
    sessions: Sequence[SessionTimes],
    recorded: frozenset[int],
    tally: Tally,
) -> Difference | None:
    """The first minute whose decision rows differ (see the module text for absent minutes)."""
    left = {row["at"]: row for row in _in_sessions(live, "at", sessions)}
    right = {row["at"]: row for row in _in_sessions(replay, "at", sessions)}
    for minute in sorted(left.keys() | right.keys()):
        lrow, rrow = left.get(minute), right.get(minute)
        asked = minute_key(minute) in recorded
        laction = None if lrow is None else lrow["action"]
        raction = None if rrow is None else rrow["action"]
        if laction in (None, SKIP) and raction in (None, SKIP) and (
            not asked or laction is None or raction is None
        ):
            if asked:
                tally.uncommitted += 1
            else:
                tally.not_asked += 1
            continue
        if not asked and laction not in (None, SKIP):
            return Difference(minute, "decisions", "action", laction, raction,
                              "the recording holds no exchange for this minute, yet the live"
                              " run decided it")
        if lrow is None or rrow is None:
            return Difference(minute, "decisions", "action", laction, raction,
                              "only one side decided this minute"
                              + (" (wrong --db?)" if not left else ""))
        tally.decisions += 1
        for column in lrow:
            if not same(lrow[column], rrow.get(column)):
                return Difference(minute, "decisions", column, lrow[column], rrow.get(column),
                                  "the replay decided this minute otherwise")
    return None


def compare_trades(
    live: pd.DataFrame, replay: pd.DataFrame, sessions: Sequence[SessionTimes], tally: Tally
) -> Difference | None:
    """The first closed trade (by close time) that differs or is on one side only."""
    def keyed(frame: pd.DataFrame) -> dict[tuple[Any, Any], dict[str, Any]]:
        return {(row["timestamp"], row["entry_time"]): row
                for row in _in_sessions(frame, "timestamp", sessions)}

    left, right = keyed(live), keyed(replay)
    for key in sorted(left.keys() | right.keys()):
        lrow, rrow = left.get(key), right.get(key)
        if lrow is None or rrow is None:
            side = "replay" if lrow is None else "live run"
            return Difference(key[0], "trades", None, "no trade" if lrow is None else "a trade",
                              "no trade" if rrow is None else "a trade",
                              f"only the {side} closed a trade opened {show(key[1])}")
        tally.trades += 1
        for column in lrow:
            if not same(lrow[column], rrow.get(column)):
                return Difference(key[0], "trades", column, lrow[column], rrow.get(column),
                                  f"the trade opened {show(key[1])} differs")
    return None


def blocks(
    sessions: Sequence[SessionTimes],
    calendar: TradingCalendar,
    model_of: Callable[[SessionTimes], object] = lambda _: None,
) -> list[list[SessionTimes]]:
    """Runs of consecutive trading sessions recorded with one model: each is replayed in one
    go, from one seed state."""
    runs: list[list[SessionTimes]] = []
    for session in sessions:
        if runs:
            following = calendar.sessions_from(runs[-1][-1].date + timedelta(days=1), 1)[0]
            if following.date == session.date and model_of(session) == model_of(runs[-1][0]):
                runs[-1].append(session)
                continue
        runs.append([session])
    return runs


def preset_drift(
    recorded: Mapping[str, Any], current: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """Dotted keys whose recorded preset value differs from the one in use."""
    drift: list[str] = []
    for key in sorted(set(recorded) | set(current)):
        name = f"{prefix}{key}"
        a, b = recorded.get(key), current.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            drift.extend(preset_drift(a, b, name + "."))
        elif a != b:
            drift.append(f"{name} recorded {a!r}, now {b!r}")
    return drift


def build_parser() -> argparse.ArgumentParser:
    """Every option of the reconciler (`--help` lists them)."""
    parser = ArgumentParser(
        prog="python -m gexbot.reconcile",
        description="Replay recorded sessions and compare their trades and decisions with the"
        " live database. Exit 0 when identical, 1 when they differ, 2 when they cannot be"
        " compared.",
    )
    parser.add_argument("--db", required=True, type=Path, help="the live run's DuckDB file")
    parser.add_argument("--replay", required=True, nargs="+", type=Path, metavar="PATH",
                        help="recording files or folders of the days to check")
    parser.add_argument("--variant", choices=["es", "nq"],
                        help="the variant (default: the one recorded)")
    parser.add_argument("--preset", type=Path, help="the preset file the live run used")
    parser.add_argument("--model", type=Path, help="the HMM model file the live run used")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the replay databases in DIR instead of a temporary folder")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING... (default INFO)")
    add_env_file_argument(parser)
    parser.add_argument("--version", action="version", version=f"gexbot {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Reconcile; the return value is the exit code."""
    interrupt_on_stop_signals()
    args = build_parser().parse_args(argv)

    def command() -> int:
        setup_logging("INFO", "text", ())
        env = load_environment(args.env_file)
        redactor = setup_logging(args.log_level, "text", env.secrets.values(), env=env)
        try:
            return run(args, env, redactor)
        except KeyboardInterrupt:
            # 0 would say "identical": an interrupted comparison has no verdict.
            log.critical("stopped before the comparison finished: no verdict")
            return EXIT_CONFIG

    return exit_code_of(command, log)


def run(args: argparse.Namespace, env: Environment, redactor: Redactor) -> int:
    """Replay each run of recorded sessions, compare, print the verdict."""
    if not args.db.is_file():
        raise ConfigError(f"{args.db}: no such database file")
    if args.keep is not None and args.keep.exists() and not args.keep.is_dir():
        raise ConfigError(f"--keep: {args.keep} is not a folder")
    replay = ReplayTransport(args.replay)
    variant = args.variant or replay.variant
    if variant != replay.variant:
        raise ConfigError(f"the recordings are of variant {replay.variant!r}, not {variant!r}")
    preset = load_variant(variant, args.preset)
    calendar = TradingCalendar(preset.calendar, preset.strategy.flatten_minutes_before_close)
    sessions = Market(transport=replay, replay=replay).replay_sessions(calendar)
    if not sessions:
        raise ConfigError("no trading session in the recordings given: nothing to compare")
    _warn_drift(replay, preset)
    decisions, trades = decisions_frame(args.db, variant), trades_frame(args.db, variant)
    if decisions.empty:
        raise ConfigError(
            f"{args.db} holds no {variant} decisions to compare with; wrong --db or --variant?"
        )
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="gexbot-reconcile-") as scratch:
        folder = _kept_folder(args.keep) if args.keep is not None else Path(scratch)
        runs = blocks(sessions, calendar, lambda s: _recorded_model(replay, s))
        for number, run_of in enumerate(runs, start=1):
            found = _reconcile_run(args, env, redactor, replay, preset,
                                   folder / f"replay-{variant}-{number}", run_of, decisions,
                                   trades, tally)
            if found is not None:
                _refuse_if_damaged(replay, run_of, found)
                print(found.describe())
                return EXIT_DIFFERENT
    days = f"{sessions[0].date}" + (f"..{sessions[-1].date}" if len(sessions) > 1 else "")
    if tally.decisions == 0:
        raise ConfigError(
            f"{args.db} holds no {variant} decision of the recorded days {days}: nothing was"
            " compared; wrong --db?"
        )
    print(f"identical: {len(sessions)} session(s) {days}, {tally.decisions} decisions and"
          f" {tally.trades} trades compared; {tally.not_asked} minute(s) never asked live and"
          f" skipped by the replay, {tally.uncommitted} recorded but never committed live")
    return EXIT_OK


def _reconcile_run(
    args: argparse.Namespace,
    env: Environment,
    redactor: Redactor,
    replay: ReplayTransport,
    preset: Preset,
    stem: Path,
    run_of: Sequence[SessionTimes],
    decisions: pd.DataFrame,
    trades: pd.DataFrame,
    tally: Tally,
) -> Difference | None:
    """Replay one run of sessions into `stem`.db and compare it with the live rows."""
    database = stem.with_suffix(".db")
    model = _model_file(args, replay, preset, run_of[0], stem)
    _seed(database, preset, model, decisions, run_of[0])
    files = [path for session in run_of for path in replay.files(session.date)]
    _replay(args, env, redactor, preset.variant, files, database, model)
    ours = decisions_frame(database, preset.variant)
    our_trades = trades_frame(database, preset.variant)
    recorded = frozenset().union(*(replay.recorded_minutes(s.date) for s in run_of))
    found = [
        compare_decisions(decisions, ours, run_of, recorded, tally),
        compare_trades(trades, our_trades, run_of, tally),
    ]
    return min((d for d in found if d is not None), key=lambda d: d.minute, default=None)


def _kept_folder(keep: Path) -> Path:
    """A new folder inside `keep` for this run's replay databases: nothing already in `keep`
    (an earlier run's files, a user's) is ever overwritten or removed."""
    try:
        keep.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"reconcile-{datetime.now(EASTERN):%Y%m%d-%H%M%S}-",
                                       dir=keep))
    except OSError as problem:
        raise ConfigError(f"--keep {keep}: cannot make a folder there ({problem.strerror})"
                          ) from None
    log.info("keeping the replay databases in %s", folder)
    return folder


def _refuse_if_damaged(replay: ReplayTransport, run_of: Sequence[SessionTimes],
                       found: Difference) -> None:
    """ConfigError when a recorded line the replay left out may explain the difference.

    A line that cannot be read (or one too long to, or of unknown minute) at or before the
    differing minute took data from the replay that the live run had: the difference then says
    something about the recording, not about the live run, so there is no verdict (exit 2, not
    the 1 of "differs").
    """
    until = minute_key(found.minute)
    damage = [item for session in run_of for item in replay.left_out(session.date)
              if item.minute is None or item.minute <= until]
    if damage:
        more = f" and {len(damage) - 1} more line(s)" if len(damage) > 1 else ""
        raise ConfigError(
            f"{damage[0].where}: left out ({damage[0].why}){more}: the replay lacks what the"
            f" recording lost, so its first difference (at"
            f" {found.minute.astimezone(EASTERN):%Y-%m-%d %H:%M} ET) is no verdict on the live"
            " run; repair the recording or leave that day out"
        )


def _recorded_model(replay: ReplayTransport, session: SessionTimes) -> object:
    """The model document the day's first recording names (None when it names none)."""
    files = replay.files(session.date)
    return replay.headers[files[0]].get("model") if files else None


def _model_file(args: argparse.Namespace, replay: ReplayTransport, preset: Preset,
                first: SessionTimes, stem: Path) -> Path:
    """`--model`, else the model the recording names (written out), else the preset's."""
    if args.model is not None:
        return Path(args.model)
    document = _recorded_model(replay, first)
    if not isinstance(document, dict):
        log.info("%s: the recording names no model; replaying with %s", first.date,
                 preset.model_file())
        return preset.model_file()
    try:
        model_from_dict(document, source=f"the model in the {first.date} recording's header")
    except ModelError as problem:
        # Other tools may write their own `model` key: the header allows more keys.
        log.warning("%s; replaying with %s (or pass --model)", problem, preset.model_file())
        return preset.model_file()
    path = stem.with_name(stem.name + "-model.json")
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def _warn_drift(replay: ReplayTransport, preset: Preset) -> None:
    current = preset.model_dump(mode="json")
    for path, header in replay.headers.items():
        recorded = header.get("preset")
        if isinstance(recorded, Mapping):
            drift = preset_drift(recorded, current)
            if drift:
                log.warning("%s was recorded with another preset (%s); pass --preset to use"
                            " the recorded one", path, "; ".join(drift[:3]))
                return


def _seed(database: Path, preset: Preset, model_file: Path, decisions: pd.DataFrame,
          first: SessionTimes) -> None:
    """Start the replay from the live state before `first`: its balance, flat."""
    before = decisions[decisions["at"] < first.open] if not decisions.empty else decisions
    if before.empty:
        return
    last = before.iloc[-1]
    if not is_null(last["position"]):
        raise ConfigError(
            f"the live run held a {last['position']} position into {first.date}; add the"
            " recording of the day it was opened so the replay opens it too"
        )
    model = read_model(model_file)
    params = EngineParams.from_preset(preset, model)
    at = last["at"].to_pydatetime()
    balance = float(last["balance"])
    state = replace(initial_state(params), balance=balance, day_start_balance=balance,
                    last_minute=at)
    with Store(database, preset.variant, logger=log, made_for=REPLAY) as store:
        store.commit(at, [], state)
    log.info("%s: replay starts from the live balance %.2f of %s", first.date, balance,
             f"{at:%Y-%m-%d %H:%M}")


def _replay(args: argparse.Namespace, env: Environment, redactor: Redactor, variant: str,
            files: Iterable[Path], database: Path, model: Path) -> None:
    """Run the daemon's replay of `files` into `database`, without Discord, showing only its
    warnings.

    It masks the secrets this command knows (`env`, `redactor`) in what it logs and writes, as
    every run does, though a replay has none of its own.
    """
    plan = RunPlan(variant=variant, replay=tuple(files), db=database, model=model,
                   preset=args.preset, discord=False)
    with _at_least(logging.getLogger("gexbot"), logging.WARNING):
        run_plan(plan, env=env, redactor=redactor)


@contextlib.contextmanager
def _at_least(logger: logging.Logger, level: int) -> Iterator[None]:
    """Raise `logger`'s level to `level` (never lower it) for the block."""
    kept = logger.level
    logger.setLevel(max(level, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(kept)


if __name__ == "__main__":
    sys.exit(main())
