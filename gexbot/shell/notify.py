"""Stdout lines for the events a trader watches in `docker logs`, and the run's summary.

Each line starts with the event's own minute in New York time (the simulated minute in a
simulated run), then the variant and a fixed-width tag, so a day reads as one aligned column:

    2026-11-20 09:30:00 ES  SESSION  09:30-16:00 | first 6,812.50 | prev close 6,790.25 | ...
    2026-11-20 10:31:00 ES  LONG     fill 6,801.25 | size $4,000.00 | target 6,810.40 | ...
    2026-11-20 10:47:00 ES  CLOSE    LONG 6,801.25 -> 6,810.50 | TARGET | PnL +$5.44 | ...

Minutes decided without incident print nothing; a skipped minute prints its reason once per run
of identical reasons, and the length of the run when it ends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from gexbot.core.session import EASTERN
from gexbot.core.types import (
    Action,
    Closed,
    Decided,
    Event,
    Opened,
    SessionEnded,
    SessionStarted,
)
from gexbot.shell.logs import EVENT_AT

TIME_WIDTH = 19  # "YYYY-MM-DD HH:MM:SS"


def price(value: float | None) -> str:
    """A price with thousands separators and cents, or "n/a"."""
    return "n/a" if value is None else f"{value:,.2f}"


def usd(value: float) -> str:
    """Dollars with cents: $100,005.44."""
    cents = _cents(value)
    return f"-${-cents:,.2f}" if cents < 0 else f"${cents:,.2f}"


def signed_usd(value: float) -> str:
    """Dollars with an explicit sign: +$5.44, -$12.30."""
    cents = _cents(value)
    return f"-${-cents:,.2f}" if cents < 0 else f"+${cents:,.2f}"


def _cents(value: float) -> float:
    """`value` rounded to the cent, a negative zero made positive: the sign is chosen on what
    is shown, so -0.001 and -0.0 read $0.00, never $-0.00 or -$0.00."""
    return round(value, 2) + 0.0


def compact_usd(value: float | None) -> str:
    """A large dollar amount in short form with its sign: +1.23B, -450.0M."""
    if value is None:
        return "n/a"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:+.2f}{suffix}"
    return f"{value:+.0f}"


def number(value: float | None, digits: int = 2) -> str:
    """A plain number, or "n/a" when unknown."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def skip_kind(reason: str | None) -> str:
    """The stable label of a skip reason: the part before ": " (the DataError kind)."""
    if not reason:
        return "unknown"
    return reason.split(": ", 1)[0]


def _head(at: datetime | date, label: str, tag: str) -> str:
    if isinstance(at, datetime):
        when = f"{at.astimezone(EASTERN):%Y-%m-%d %H:%M:%S}"
    else:
        when = f"{at:%Y-%m-%d} close"
    return f"{when:<{TIME_WIDTH}} {label:<3} {tag:<8} "


def _session_started(event: SessionStarted, label: str) -> str:
    session = event.session
    hours = f"{session.open.astimezone(EASTERN):%H:%M}-{session.close.astimezone(EASTERN):%H:%M}"
    if session.early_close:
        hours += " (early close)"
    if event.previous_close is None or event.previous_close <= 0:
        gap = "gap unknown"
    else:
        signed = (event.first_spot - event.previous_close) / event.previous_close
        gap = f"gap {signed:+.2%}"
    entries = "entries suspended" if event.gap_suspends else "entries open"
    return _head(event.at, label, "SESSION") + " | ".join(
        (
            hours,
            f"first {price(event.first_spot)}",
            f"prev close {price(event.previous_close)}",
            f"{gap} ({entries})",
            f"balance {usd(event.balance)}",
        )
    )


def _opened(event: Opened, label: str) -> str:
    position, feats = event.position, event.features
    hmm = feats.hmm_state.value if feats.hmm_state is not None else "n/a"
    return _head(position.entry_time, label, position.direction.value) + " | ".join(
        (
            f"fill {price(position.entry_price)}",
            f"size {usd(position.size_usd)}",
            f"target {price(position.target)}",
            f"stop {price(position.stop)}",
            f"Kelly {event.kelly_fraction:.1%}",
            f"GEX {compact_usd(feats.net_gex)} Hurst {number(feats.hurst)}"
            f" OFI {number(feats.ofi)} HMM {hmm}",
            event.why,
        )
    )


def _closed(event: Closed, label: str) -> str:
    trade = event.trade
    move = trade.direction.sign * (trade.exit_price - trade.entry_price) / trade.entry_price
    return _head(trade.exit_time, label, "CLOSE") + " | ".join(
        (
            f"{trade.direction.value} {price(trade.entry_price)} -> {price(trade.exit_price)}",
            trade.exit_reason.value,
            f"PnL {signed_usd(trade.pnl)} ({move:+.2%})",
            f"balance {usd(event.balance)}",
        )
    )


def _session_ended(event: SessionEnded, label: str) -> str:
    trades = f"{event.trades} trade" + ("" if event.trades == 1 else "s")
    return _head(event.session_date, label, "END") + " | ".join(
        (trades, f"day PnL {signed_usd(event.pnl)}", f"balance {usd(event.balance)}")
    )


def format_event(event: Event, variant_label: str) -> str | None:
    """One readable line for an event a trader cares about, None for routine minutes."""
    if isinstance(event, SessionStarted):
        return _session_started(event, variant_label)
    if isinstance(event, Opened):
        return _opened(event, variant_label)
    if isinstance(event, Closed):
        return _closed(event, variant_label)
    if isinstance(event, SessionEnded):
        return _session_ended(event, variant_label)
    if event.action is Action.SKIP:
        return _head(event.at, variant_label, "SKIP") + (event.reason or "no reason given")
    return None


def event_time(event: Event) -> datetime | date:
    """The minute an event is about (the session date for a session's end)."""
    if isinstance(event, Opened):
        return event.position.entry_time
    if isinstance(event, Closed):
        return event.trade.exit_time
    if isinstance(event, SessionEnded):
        return event.session_date
    return event.at


def event_fields(event: Event) -> dict[str, Any]:
    """Structured fields of an event for JSON log lines (numbers stay numbers)."""
    fields: dict[str, Any] = {"event": type(event).__name__}
    fields[EVENT_AT] = event_time(event).isoformat()
    if isinstance(event, Opened):
        p = event.position
        fields |= {"direction": p.direction.value, "fill": p.entry_price, "size_usd": p.size_usd,
                   "target": p.target, "stop": p.stop, "kelly": event.kelly_fraction}
    elif isinstance(event, Closed):
        t = event.trade
        fields |= {"direction": t.direction.value, "entry": t.entry_price, "exit": t.exit_price,
                   "exit_reason": t.exit_reason.value, "pnl": t.pnl, "balance": event.balance}
    elif isinstance(event, SessionStarted):
        fields |= {"gap": event.gap, "gap_suspends": event.gap_suspends, "balance": event.balance}
    elif isinstance(event, SessionEnded):
        fields |= {"trades": event.trades, "pnl": event.pnl, "balance": event.balance}
    else:
        fields["action"] = event.action.value
        if event.action is Action.SKIP:
            fields["skip_reason"] = event.reason
    return fields


@dataclass
class SkipCollapser:
    """Turns a run of minutes skipped for the same reason into two lines.

    The first skip of a run is printed as it happens; when the run ends (data comes back, the
    reason changes, or the session ends) one line says how many minutes it lasted. A run of one
    minute needs no second line.
    """

    label: str
    reason: str | None = None
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def observe(self, event: Decided) -> list[str]:
        """The lines this minute adds: none while a run goes on."""
        if event.action is not Action.SKIP:
            return self.flush(event.at)
        if self.count and event.reason == self.reason:
            self.count += 1
            self.last = event.at
            return []
        lines = self.flush(event.at)
        self.reason, self.count, self.first, self.last = event.reason, 1, event.at, event.at
        line = format_event(event, self.label)
        return [*lines, line] if line is not None else lines

    def flush(self, at: datetime | None = None) -> list[str]:
        """End the current run (at minute `at`, else its last skipped minute)."""
        if not self.count or self.first is None or self.last is None:
            return []
        count, first, last, reason = self.count, self.first, self.last, self.reason
        self.reason, self.count, self.first, self.last = None, 0, None, None
        if count == 1:
            return []
        span = f"{first.astimezone(EASTERN):%H:%M}-{last.astimezone(EASTERN):%H:%M}"
        text = f"{count} minutes skipped {span} ({reason or 'no reason given'})"
        return [_head(at if at is not None else last, self.label, "SKIP") + text]


class ConsoleSink:
    """Writes the event lines to a logger (stdout through the log handler); never raises."""

    def __init__(self, logger: logging.Logger, label: str | None = None) -> None:
        self._log = logger
        self._label = label
        self._skips: SkipCollapser | None = None

    def handle(self, events: Sequence[Event]) -> None:
        """Print the lines of one committed minute's events."""
        for event in events:
            try:
                self._handle(event)
            except Exception:
                self._log.exception("could not print a %s event", type(event).__name__)

    def close(self) -> None:
        """Print the length of a skip run still open (the run is stopping)."""
        if self._skips is not None and self._skips.last is not None:
            fields = {"event": "Decided", EVENT_AT: self._skips.last.isoformat()}
            self._emit(self._skips.flush(), fields)

    def _handle(self, event: Event) -> None:
        label = self._label or _variant(event).upper()
        skips = self._skips if self._skips is not None else SkipCollapser(label)
        self._skips = skips
        fields = event_fields(event)
        if isinstance(event, Decided):
            self._emit(skips.observe(event), fields)
            return
        if isinstance(event, SessionEnded):
            self._emit(skips.flush(), fields)
        line = format_event(event, label)
        if line is not None:
            self._emit([line], fields)

    def _emit(self, lines: Iterable[str], fields: dict[str, Any]) -> None:
        for line in lines:
            self._log.info("%s", line, extra=fields)


def _variant(event: Event) -> str:
    return event.trade.variant if isinstance(event, Closed) else event.variant


@dataclass
class Summary:
    """Totals of a run for its closing lines: trades, win rate, PnL, drawdown, skipped minutes."""

    trades: int = 0
    wins: int = 0
    pnl: float = 0.0
    balance: float | None = None
    peak: float | None = None
    max_drawdown_usd: float = 0.0
    max_drawdown_pct: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)

    def add(self, events: Iterable[Event]) -> None:
        """Fold a minute's events into the totals."""
        for event in events:
            if isinstance(event, Closed):
                self._close(event)
            elif isinstance(event, Decided):
                self.balance = event.balance
                if event.action is Action.SKIP:
                    kind = skip_kind(event.reason)
                    self.skipped[kind] = self.skipped.get(kind, 0) + 1
            elif isinstance(event, SessionStarted | SessionEnded):
                self.balance = event.balance
                if self.peak is None and isinstance(event, SessionStarted):
                    self.peak = event.balance

    def _close(self, event: Closed) -> None:
        pnl = event.trade.pnl
        if self.peak is None:
            self.peak = event.balance - pnl
        self.trades += 1
        if pnl > 0:
            self.wins += 1
        self.pnl += pnl
        self.balance = event.balance
        self.peak = max(self.peak, event.balance)
        drawdown = self.peak - event.balance
        self.max_drawdown_usd = max(self.max_drawdown_usd, drawdown)
        if self.peak > 0:
            self.max_drawdown_pct = max(self.max_drawdown_pct, drawdown / self.peak)

    def lines(self) -> list[str]:
        """The summary as aligned lines."""
        rate = f"{self.wins / self.trades:.1%}" if self.trades else "n/a"
        skipped = sum(self.skipped.values())
        by_reason = ", ".join(f"{kind} {n}" for kind, n in sorted(self.skipped.items()))
        rows = [
            ("trades", f"{self.trades} ({self.wins} won, win rate {rate})"),
            ("total PnL", signed_usd(self.pnl)),
            (
                "max drawdown",
                f"{usd(self.max_drawdown_usd)} ({self.max_drawdown_pct:.2%}) on closed trades",
            ),
            ("final balance", "n/a" if self.balance is None else usd(self.balance)),
            ("skipped minutes", f"{skipped}" + (f" ({by_reason})" if by_reason else "")),
        ]
        return [f"{name:<16}{value}" for name, value in rows]
