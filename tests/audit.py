"""An independent reading of the strategy's rules, applied to the rows a run wrote.

Nothing here calls the engine: every rule is re-derived from what a `decisions` row shows (spot,
features, bands, position, target, stop) and the preset's numbers, in plain Python, so a rule
changed in the engine, or a row written wrongly, shows up as a disagreement. `audit` returns
one line per disagreeing row; an empty list means every minute did what the rules say.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from gexbot.settings import StrategySettings

Row = dict[str, Any]


@dataclass(frozen=True)
class SessionFacts:
    """What the rows cannot show: the session's flatten time and its previous close."""

    flatten: datetime
    previous_close: float | None


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _blockers(row: Row) -> set[str]:
    text = row["blocked_by"]
    return set() if _is_null(text) else set(text.split(","))


@dataclass
class _Book:
    """The position and cooldown as the rows tell them, minute after minute."""

    position: str | None = None
    target: float | None = None
    stop: float | None = None
    entry_regime: str | None = None
    entry_session: date | None = None
    cooldown_until: datetime | None = None


def _expected_entry(
    row: Row, book: _Book, strategy: StrategySettings, facts: SessionFacts,
    prices_seen: int, first_spot: float,
) -> tuple[set[str], str | None]:
    """The entry blockers of a minute that began flat, and the side an entry would take."""
    blocked: set[str] = set()
    at, spot = row["at"], row["spot"]
    if book.cooldown_until is not None and at < book.cooldown_until:
        blocked.add("cooldown")
    close = facts.previous_close
    gapped = close is not None and abs(first_spot - close) / close > strategy.gap.threshold
    if prices_seen < strategy.gap.suspend_until_prices and gapped:
        blocked.add("gap")
    if at >= facts.flatten:
        blocked.add("flatten")
    hmm, gex, hurst = row["hmm_state"], row["gex_regime"], row["hurst"]
    if _is_null(hmm):
        blocked.add("warmup")
    elif hmm != "LOW":
        blocked.add("hmm")
    if _is_null(gex):
        blocked.add("warmup")
    elif gex != "POSITIVE":
        blocked.add("gex")
    if _is_null(hurst):
        enough = prices_seen >= strategy.hurst.max_lag + 2
        blocked.add("hurst" if enough else "warmup")
    elif not hurst < strategy.hurst.threshold:
        blocked.add("hurst")
    mid, upper, lower = row["band_mid"], row["band_upper"], row["band_lower"]
    if _is_null(mid):
        blocked.add("warmup")
        return blocked, None
    side = "SHORT" if spot > upper and upper > mid else "LONG" if spot < lower < mid else None
    if side is None:
        blocked.add("band")
        return blocked, None
    ofi = row["ofi"]
    if _is_null(ofi):
        blocked.add("warmup")
    elif (side == "SHORT" and not ofi < strategy.ofi.short_below) or (
        side == "LONG" and not ofi > strategy.ofi.long_above
    ):
        blocked.add("ofi")
    sign = 1.0 if side == "LONG" else -1.0
    sigma = (upper - mid) / strategy.bands.width_sigma
    fill = spot + sign * strategy.sizing.slippage_points
    b = sign * (mid - fill) / (strategy.stop_sigma * sigma)
    p = strategy.sizing.win_rate
    kelly = strategy.sizing.kelly_fraction * (p - (1 - p) / b) if b > 0 else 0.0
    if kelly <= 0:
        blocked.add("kelly")
    return blocked, side


def _expected_exit(row: Row, book: _Book, facts: SessionFacts, session: date) -> str | None:
    spot, sign = row["spot"], 1.0 if book.position == "LONG" else -1.0
    assert book.stop is not None
    assert book.target is not None
    if sign * (spot - book.stop) <= 0:
        return "STOP_LOSS"
    if sign * (spot - book.target) >= 0:
        return "TARGET"
    if not _is_null(row["gex_regime"]) and row["gex_regime"] != book.entry_regime:
        return "REGIME_FLIP"
    if book.entry_session != session or row["at"] >= facts.flatten:
        return "EOD_FLATTEN"
    return None


def audit(
    rows: Sequence[Row],
    strategy: StrategySettings,
    facts_of: Callable[[date], SessionFacts],
    session_of: Callable[[datetime], date],
) -> list[str]:
    """Check every decision row against the rules; one line per disagreement."""
    problems: list[str] = []
    book = _Book()
    session: date | None = None
    prices_seen, first_spot = 0, 0.0
    for row in rows:
        at = row["at"]
        day = session_of(at)
        facts = facts_of(day)

        def fail(what: str, at: datetime = at, action: str = row["action"]) -> None:
            problems.append(f"{at:%Y-%m-%d %H:%M} {action}: {what}")

        if row["action"] == "SKIP":
            if row["position"] != book.position and not (
                _is_null(row["position"]) and book.position is None
            ):
                fail("a skipped minute changed the position")
            continue
        if day != session:
            session, prices_seen, first_spot = day, 0, row["spot"]
        prices_seen += 1
        if book.position is not None:
            reason = _expected_exit(row, book, facts, day)
            if reason is None and row["action"] != "HOLD":
                fail("should have held")
            if reason is not None and (row["action"], row["reason"]) != ("CLOSE", reason):
                fail(f"should have closed for {reason}, got {row['reason']}")
            if "position" not in _blockers(row):
                fail("a minute that began in a position does not list `position`")
            if row["action"] == "CLOSE":
                if reason == "STOP_LOSS":
                    book.cooldown_until = at + timedelta(minutes=strategy.cooldown_minutes)
                book = _Book(cooldown_until=book.cooldown_until)
            continue
        expected, side = _expected_entry(row, book, strategy, facts, prices_seen, first_spot)
        if expected:
            if row["action"] != "WAIT":
                fail(f"entered although {sorted(expected)} failed")
            elif _blockers(row) != expected:
                fail(f"blocked_by {sorted(_blockers(row))}, the rules say {sorted(expected)}")
            continue
        if row["action"] != side:
            fail(f"every condition held for {side}, got {row['action']}")
            continue
        mid, upper = row["band_mid"], row["band_upper"]
        sign = 1.0 if side == "LONG" else -1.0
        fill = row["spot"] + sign * strategy.sizing.slippage_points
        stop = fill - sign * strategy.stop_sigma * (upper - mid) / strategy.bands.width_sigma
        if not (math.isclose(row["target"], mid) and math.isclose(row["stop"], stop)):
            fail(f"target/stop {row['target']}/{row['stop']}, the rules say {mid}/{stop}")
        book = _Book(
            position=side, target=row["target"], stop=row["stop"],
            entry_regime=row["gex_regime"], entry_session=day,
            cooldown_until=book.cooldown_until,
        )
    return problems
