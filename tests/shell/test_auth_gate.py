"""The remembered refusal: blocks restarts with the refused credentials, alerts once a day."""

from __future__ import annotations

import json
from datetime import datetime

from gexbot.core.session import EASTERN
from gexbot.market.refusal import first_wait
from gexbot.shell.auth_gate import KEY, WAIT_KEY, AuthGate, fingerprint

MORNING = datetime(2026, 11, 30, 9, 31, tzinfo=EASTERN)
LATER = datetime(2026, 11, 30, 15, 0, tzinfo=EASTERN)
NEXT_DAY = datetime(2026, 12, 1, 9, 0, tzinfo=EASTERN)


class Meta:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get_meta(self, key: str) -> str | None:
        return self.values.get(key)

    def set_meta(self, key: str, value: str) -> bool:
        self.values[key] = value
        return True


class Alerts(list[tuple[str, str]]):
    def __call__(self, title: str, message: str) -> None:
        self.append((title, message))


def test_fingerprint_is_short_stable_and_hides_the_token() -> None:
    print_ = fingerprint("key", "refresh-token-123")
    assert print_ == fingerprint("key", "refresh-token-123")
    assert print_ != fingerprint("key", "refresh-token-124")
    assert print_ != fingerprint("other", "refresh-token-123")
    assert len(print_) == 16
    assert "refresh" not in print_


def test_a_fresh_database_lets_the_start_through() -> None:
    alerts = Alerts()
    assert AuthGate(Meta(), fingerprint("k", "r"), alerts).check_start(MORNING) is None
    assert alerts == []


def test_refusal_blocks_later_starts_and_alerts_once_a_day() -> None:
    meta, alerts = Meta(), Alerts()
    current = fingerprint("k", "dead")
    AuthGate(meta, current, alerts).record_refusal("Schwab refused the refresh token", MORNING)
    assert alerts == [("Schwab authentication failed", "Schwab refused the refresh token")]
    first = AuthGate(meta, current, alerts).check_start(LATER)
    second = AuthGate(meta, current, alerts).check_start(LATER)
    assert first is not None
    assert second is not None
    assert "Schwab refused these credentials at 2026-11-30T09:31:00-05:00" in first
    assert "1 start(s) since" in first
    assert "2 start(s) since" in second
    assert second.endswith("run python -m gexbot.auth to authorize again")
    assert len(alerts) == 1
    assert AuthGate(meta, current, alerts).check_start(NEXT_DAY) is not None
    assert [title for title, _ in alerts] == [
        "Schwab authentication failed", "Schwab authorization still refused"
    ]
    assert AuthGate(meta, current, alerts).check_start(NEXT_DAY) is not None
    assert len(alerts) == 2


def test_a_second_refusal_the_same_day_does_not_alert_again() -> None:
    meta, alerts = Meta(), Alerts()
    current = fingerprint("k", "dead")
    AuthGate(meta, current, alerts).record_refusal("refused", MORNING)
    AuthGate(meta, current, alerts).record_refusal("refused", LATER)
    assert len(alerts) == 1


def test_new_credentials_forget_the_refusal() -> None:
    meta, alerts = Meta(), Alerts()
    AuthGate(meta, fingerprint("k", "dead"), alerts).record_refusal("refused", MORNING)
    renewed = AuthGate(meta, fingerprint("k", "fresh"), alerts)
    assert renewed.check_start(LATER) is None
    assert renewed.remembered() is None
    assert AuthGate(meta, fingerprint("k", "dead"), alerts).check_start(LATER) is None


def test_an_unreadable_memory_is_ignored() -> None:
    meta = Meta()
    meta.values[KEY] = json.dumps({"unexpected": 1})
    assert AuthGate(meta, fingerprint("k", "r"), Alerts()).check_start(MORNING) is None


def test_a_wait_is_written_from_the_loops_thread_and_gone_on_with_by_the_same_credentials() -> None:
    meta = Meta()
    current = fingerprint("k", "maybe-alive")
    gate = AuthGate(meta, current, Alerts())
    wait = first_wait(MORNING, "Schwab refused the refresh token (...)")
    gate.note_wait(wait)  # from a request thread: nothing written yet
    assert WAIT_KEY not in meta.values
    gate.save_wait([])  # the loop's sink, after the minute's commit
    assert AuthGate(meta, current, Alerts()).waiting() == wait
    gate.save_wait([])  # nothing new noted: nothing written
    gate.note_wait(None)
    gate.save_wait()
    assert AuthGate(meta, current, Alerts()).waiting() is None


def test_a_wait_of_other_credentials_is_forgotten_and_a_final_refusal_ends_it() -> None:
    meta = Meta()
    old = AuthGate(meta, fingerprint("k", "old"), Alerts())
    old.note_wait(first_wait(MORNING, "refused"))
    old.save_wait()
    assert AuthGate(meta, fingerprint("k", "new"), Alerts()).waiting() is None
    assert meta.values[WAIT_KEY] == ""
    old.note_wait(first_wait(MORNING, "refused"))
    old.save_wait()
    old.record_refusal("refused for good", LATER)
    assert old.waiting() is None


def test_an_unreadable_wait_is_ignored() -> None:
    meta = Meta()
    for text in ("{", json.dumps({"fingerprint": "x"}), json.dumps({"wait": "{}"})):
        meta.values[WAIT_KEY] = text
        assert AuthGate(meta, fingerprint("k", "r"), Alerts()).waiting() is None
