"""Reminders in Slack: exactly what the configuration promises, in the case thread, once, across a restart."""
from __future__ import annotations

from pathlib import Path

from tests.conftest import FakeClock
from tests.fakes.slack import FakeSlack
from tests.slack_harness import DPO, SlackHarness, fake  # noqa: F401 - fixture


def _key(message: dict) -> str:
    return ((message.get("metadata") or {}).get("event_payload") or {}).get("key", "")


def _keyed(messages: list[dict]) -> list[str]:
    """The effect keys the messages carry, without the case id."""
    return [_key(m).split(":", 1)[1] for m in messages if _key(m)]


def test_reminders_in_the_thread_across_a_restart(tmp_path: Path, clock: FakeClock,
                                                 fake: FakeSlack) -> None:  # noqa: F811
    harness = SlackHarness(tmp_path / "data", clock, fake)
    case = harness.open_case()  # received Wed 25 Nov 2026 -> due Mon 28 Dec (27 Dec is a Sunday)
    harness.run_days(10)
    harness.close()
    harness = SlackHarness(tmp_path / "data", clock, fake)  # restart on the same data
    fake.api.lose(1, path="chat.postMessage")  # and one answer lost on the way, for good measure
    harness.run_days(26)
    root = harness.service.cases.get(case.id).slack["ts"]
    harness.close()
    thread = fake.thread(root)
    assert _keyed(thread) == [
        "reminder:unassigned:2026-11-28",
        "reminder:extension_decision:2026-12-20",
        "reminder:due_in_7:2026-12-21",
        "reminder:due_in_3:2026-12-25",
        "reminder:due_in_1:2026-12-27",
        "reminder:overdue:2026-12-29",
        "reminder:overdue:2026-12-30",
    ]
    texts = [m["text"] for m in thread]
    assert "has not been picked up since it was received on 2026-11-25" in texts[0]
    assert "must be notified to the requester, with reasons, by 2026-12-25" in texts[1]
    assert "is due in 7 days, on 2026-12-28" in texts[2] and "is due tomorrow, 2026-12-28" in texts[4]
    assert "it was due on 2026-12-28, 1 day(s) ago" in texts[5]
    escalations = [m for m in fake.top_level() if ":escalation:" in _key(m)]
    assert _keyed(escalations) == ["escalation:unassigned:2026-11-28", "escalation:overdue:2026-12-29",
                                   "escalation:overdue:2026-12-30"]
    assert all(m["text"].startswith(f"<@{DPO}> escalation for {case.ref}") for m in escalations)
