"""Reminders: exactly the ones the configuration promises, once each, across a restart."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.config import load_config
from bot.models import Person
from bot.service import build_service


class RecordingNotifier:
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bool, str]] = []
        self.digests: list[list[dict]] = []
        self.clock = None

    def reminder(self, case, kind, escalate=False):  # noqa: ANN001, ANN201
        self.sent.append((case.ref, kind, escalate, self.clock().date().isoformat()))

    def digest(self, rows):  # noqa: ANN001, ANN201
        self.digests.append(rows)


def _service(tmp_path, clock, notifier):  # noqa: ANN001, ANN202
    config = load_config(None, environ={}, overrides={"service": {"data_dir": str(tmp_path)}})
    service = build_service(config, now=clock)
    notifier.clock = clock
    service.components["notifiers"] = [notifier]
    return service


def _run_days(service, clock, days: int) -> None:  # noqa: ANN001
    for _ in range(days * 4):  # every 6 hours
        service.outbox.run_due()
        clock.advance(hours=6)


def test_reminders_across_a_restart(tmp_path, clock) -> None:  # noqa: ANN001
    notifier = RecordingNotifier()
    service = _service(tmp_path, clock, notifier)
    case = service.cases.open(received_at=clock(), rights=["access"], language="fr", channel="email",
                              requester=Person(email="a@example.fr"))  # 25 Nov 2026 -> due Mon 28 Dec
    _run_days(service, clock, 10)
    service.close()
    # restart: a new service on the same data dir, with the same notifier
    service = _service(tmp_path, clock, notifier)
    _run_days(service, clock, 26)
    sent = [(kind, day) for ref, kind, _, day in notifier.sent if ref == case.ref]
    assert sent == [
        ("unassigned", "2026-11-28"),
        ("extension_decision", "2026-12-20"),
        ("due_in_7", "2026-12-21"),
        ("due_in_3", "2026-12-25"),
        ("due_in_1", "2026-12-27"),
        ("overdue", "2026-12-29"),
        ("overdue", "2026-12-30"),
    ]
    escalations = {kind for _, kind, escalate, _ in notifier.sent if escalate}
    assert escalations == {"overdue", "unassigned"}


def test_no_reminders_once_answered_or_after_extension(tmp_path, clock) -> None:  # noqa: ANN001
    notifier = RecordingNotifier()
    service = _service(tmp_path, clock, notifier)
    answered = service.cases.open(received_at=clock(), rights=["access"], language="fr", channel="email",
                                  requester=Person(email="a@example.fr"))
    extended = service.cases.open(received_at=clock(), rights=["access"], language="fr", channel="email",
                                  requester=Person(email="b@example.fr"))
    service.cases.record(answered.id, "assign", "agent:ana", lambda c: setattr(c, "assignee", "ana"))
    service.cases.record(extended.id, "assign", "agent:ana", lambda c: setattr(c, "assignee", "ana"))
    service.cases.transition(answered.id, "dismiss", "agent:ana")
    service.cases.extend(extended.id, "agent:ana", "nine systems to search")
    _run_days(service, clock, 40)
    assert [r for r in notifier.sent if r[0] == answered.ref] == []
    kinds = [kind for ref, kind, _, _ in notifier.sent if ref == extended.ref]
    assert "extension_decision" not in kinds and kinds == []  # extended due is 25 Feb: nothing yet


def test_digest_once_a_day_most_urgent_first(tmp_path, clock) -> None:  # noqa: ANN001
    notifier = RecordingNotifier()
    service = _service(tmp_path, clock, notifier)
    for days in (3, 30):
        service.cases.open(received_at=clock() - timedelta(days=days), rights=["access"], language="fr",
                           channel="email", requester=Person(email="a@example.fr"))
    from bot.reminders import queue_todays_digest

    clock.current = datetime(2026, 11, 26, 9, 5, tzinfo=timezone.utc)
    for _ in range(3):  # the scheduler ticks several times, maybe on two instances
        queue_todays_digest(service)
        service.outbox.run_due()
    assert len(notifier.digests) == 1
    assert [r["urgency"] for r in notifier.digests[0]] == ["due_soon", "on_track"]
    assert all("@" not in str(r) for r in notifier.digests[0])


def test_two_reminders_on_the_same_day_both_arrive(tmp_path, clock) -> None:  # noqa: ANN001
    notifier = RecordingNotifier()
    service = _service(tmp_path, clock, notifier)
    service.config.reminders.unassigned_escalation_days = 26  # 21 Dec, the day of "due_in_7"
    case = service.cases.open(received_at=clock(), rights=["access"], language="fr", channel="email",
                              requester=Person(email="a@example.fr"))
    _run_days(service, clock, 30)
    on_21 = sorted(kind for ref, kind, _, day in notifier.sent if ref == case.ref and day == "2026-12-21")
    assert on_21 == ["due_in_7", "unassigned"]
    assert len([e for e in service.outbox.pending() if e["kind"] == "notify.reminder"]) == 1  # one at a time


def test_a_case_opened_already_overdue_gets_the_overdue_reminder_from_today(tmp_path, clock) -> None:  # noqa: ANN001
    notifier = RecordingNotifier()
    service = _service(tmp_path, clock, notifier)  # 25 Nov 2026; received 40 days earlier: due 16 Nov
    case = service.cases.open(received_at=clock() - timedelta(days=40), rights=["access"], language="fr",
                              channel="email", requester=Person(email="a@example.fr"))
    _run_days(service, clock, 2)
    assert [(kind, day) for ref, kind, _, day in notifier.sent if ref == case.ref] == [
        ("overdue", "2026-11-25"), ("overdue", "2026-11-26")]
