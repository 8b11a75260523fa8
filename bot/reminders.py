"""Deadline reminders, escalations and the daily digest, as durable scheduled effects.

Each reminder is an outbox effect due on its date, queued when the case opens (or its due date
moves): the store keeps it across restarts, the outbox key makes it run once, and on PostgreSQL
two instances never both send it (claims are row-locked). That is sturdier than scheduler job
stores, which do not coordinate instances; APScheduler only ticks the outbox and the digest.
A reminder whose case was answered, or whose due date moved since it was planned, does nothing.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any, Iterable

from bot import clock
from bot.cases import OPEN_STATES, Change
from bot.models import Case
from bot.outbox import Effect
from bot.service import Service

log = logging.getLogger(__name__)

REMINDER = "notify.reminder"
DIGEST = "notify.digest"


def _at_morning(day: date, jurisdiction: clock.Jurisdiction, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=jurisdiction.tz)


def planned_reminders(case: Case, service: Service) -> list[tuple[str, date]]:
    """(kind, day) pairs this case should get from now on, per the configuration."""
    config = service.config.reminders
    jurisdiction = service.cases.jurisdiction
    due = case.effective_due
    plan = [(f"due_in_{offset}", day) for offset, day in
            zip(sorted(config.offsets_days, reverse=True), clock.reminder_dates(due, config.offsets_days))]
    plan.append(("overdue", due + timedelta(days=1)))
    if not case.extension:
        last = clock.last_extension_notice_day(clock.receipt_date(case.received_at, jurisdiction))
        plan.append(("extension_decision", last - timedelta(days=config.extension_decision_days_before)))
    plan.append(("unassigned", clock.receipt_date(case.received_at, jurisdiction)
                 + timedelta(days=config.unassigned_escalation_days)))
    return sorted(plan, key=lambda p: (p[1], p[0]))


def reminder_effect(case: Case, kind: str, day: date, service: Service) -> Effect:
    jurisdiction = service.cases.jurisdiction
    delay = (_at_morning(day, jurisdiction, service.config.reminders.digest_hour) - service.now()).total_seconds()
    return Effect(REMINDER, key=f"{case.id}:reminder:{kind}:{day.isoformat()}:{case.effective_due.isoformat()}",
                  case_id=case.id, delay_seconds=max(0.0, delay),
                  payload={"kind": kind, "day": day.isoformat(), "due": case.effective_due.isoformat()})


def next_reminder(case: Case, service: Service, after: tuple[date, str] | None = None) -> Effect | None:
    """The first planned reminder after `after` = (day, kind), or from today: one queued effect per
    case, each reminder queueing the next, keeps the outbox small (not 6 rows a case)."""
    today = clock.receipt_date(service.now(), service.cases.jurisdiction)
    for kind, day in planned_reminders(case, service):
        if ((day, kind) > after) if after else (day >= today):
            return reminder_effect(case, kind, day, service)
    if after is None and today > case.effective_due:
        # opened already overdue (a backlog read late, an old ticket): the daily chain starts today
        return reminder_effect(case, "overdue", today, service)
    return None


def make_planner(service: Service):
    def plan(change: Change) -> Iterable[Effect]:
        if change.action in ("open", "extend"):
            effect = next_reminder(change.case, service)
            if effect:
                yield effect

    return plan


def chain_alive(case: Case, payload: dict[str, Any]) -> bool:
    """False once the case is answered or its due date moved (the extension starts a new chain)."""
    return case.state in OPEN_STATES and case.effective_due.isoformat() == payload["due"]


def still_relevant(case: Case, payload: dict[str, Any]) -> bool:
    if not chain_alive(case, payload):
        return False
    if payload["kind"] == "unassigned":
        return not case.assignee
    if payload["kind"] == "extension_decision":
        return not case.extension
    return True


def run_reminder(service: Service, effect: dict[str, Any]) -> dict[str, Any]:
    case = service.cases.get(effect["case_id"])
    payload = effect["payload"]
    if not chain_alive(case, payload):
        return {"skipped": True}
    kind, day = payload["kind"], date.fromisoformat(payload["day"])
    sent = still_relevant(case, payload)
    if sent:
        for notifier in service.components.get("notifiers", []):
            notifier.reminder(case, kind, escalate=kind in ("overdue", "unassigned"))
        service.cases.log_event("reminder", "system", case, {"kind": kind})
    # queue the next one; the keys make a replay of this handler queue it only once
    following = (reminder_effect(case, "overdue", day + timedelta(days=1), service) if kind == "overdue"
                 else next_reminder(case, service, after=(day, kind)))
    if following:
        service.outbox.enqueue(following)
    return {"sent": kind} if sent else {"skipped": kind}


def digest_rows(service: Service) -> list[dict[str, Any]]:
    """Open cases by urgency, most urgent first: what the daily digest lists (no personal data)."""
    today = clock.receipt_date(service.now(), service.cases.jurisdiction)
    rows = []
    for case in service.cases.all():
        if case.state in OPEN_STATES:
            rows.append({"ref": case.ref, "state": str(case.state), "due": case.effective_due.isoformat(),
                         "days_left": clock.days_left(case.effective_due, today),
                         "urgency": clock.urgency(case.effective_due, today), "assignee": case.assignee})
    return sorted(rows, key=lambda r: r["days_left"])


def queue_todays_digest(service: Service) -> bool:
    """Called by the scheduler; the key makes it once a day whatever the number of instances."""
    now_local = service.now().astimezone(service.cases.jurisdiction.tz)
    if now_local.hour < service.config.reminders.digest_hour:
        return False
    return service.outbox.enqueue(Effect(DIGEST, key=f"digest:{now_local.date().isoformat()}"))


def run_digest(service: Service) -> dict[str, Any]:
    rows = digest_rows(service)
    for notifier in service.components.get("notifiers", []):
        notifier.digest(rows)
    return {"cases": len(rows)}


def setup(service: Service) -> None:
    service.cases.add_planner(make_planner(service))
    service.outbox.register(REMINDER, lambda effect: run_reminder(service, effect), keep_trying=True)  # via Slack
    service.outbox.register(DIGEST, lambda effect: run_digest(service))
    service.add_job("digest", lambda: queue_todays_digest(service), seconds=300, single=True)
