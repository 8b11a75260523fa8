"""What the desk shows about cases, computed from the case and today's date (no Flask, no store)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterable

from bot import clock
from bot.models import ANSWERED_STATES, Case

VIEWS = ("open", "attention", "all")


@dataclass(frozen=True)
class CaseClock:
    """The legal dates of one case as the desk shows them."""

    received: date
    due: date
    extended_due: date
    effective_due: date
    last_extension_day: date
    days_left: int
    urgency: str  # overdue | due_soon | on_track | answered
    extended: bool
    can_still_extend: bool
    answered: date | None


def case_clock(case: Case, today: date, jurisdiction: clock.Jurisdiction, soon_days: int) -> CaseClock:
    received = clock.receipt_date(case.received_at, jurisdiction)
    answered = clock.receipt_date(case.answered_at, jurisdiction) if case.answered_at else None
    last_extension_day = clock.last_extension_notice_day(received)
    is_answered = case.state in ANSWERED_STATES
    return CaseClock(
        received=received, due=case.due, extended_due=case.extended_due, effective_due=case.effective_due,
        last_extension_day=last_extension_day, days_left=clock.days_left(case.effective_due, today),
        urgency="answered" if is_answered else clock.urgency(case.effective_due, today, soon_days),
        extended=bool(case.extension),
        can_still_extend=not case.extension and not is_answered and today <= last_extension_day,
        answered=answered,
    )


def needs_attention(case: Case) -> bool:
    return bool(case.open_flags)


def matches(case: Case, query: str) -> bool:
    """Search by reference: the whole reference or any part of it (case-insensitive)."""
    needle = query.strip().upper()
    return not needle or needle in case.ref


def select(cases: Iterable[Case], view: str, query: str) -> list[Case]:
    """The cases a list view shows: open ones by due date, then (in "all") the answered ones."""
    chosen = [c for c in cases if matches(c, query)]
    if view == "attention":
        chosen = [c for c in chosen if needs_attention(c)]
    elif view == "open":
        chosen = [c for c in chosen if c.state not in ANSWERED_STATES]
    return sorted(chosen, key=lambda c: (c.state in ANSWERED_STATES, c.effective_due, c.ref))


def counts(cases: Iterable[Case], today: date, soon_days: int) -> dict[str, int]:
    """Open cases per urgency, and how many need an agent (open flags)."""
    result = {"overdue": 0, "due_soon": 0, "on_track": 0, "attention": 0, "open": 0}
    for case in cases:
        if case.state in ANSWERED_STATES:
            if needs_attention(case):
                result["attention"] += 1
            continue
        result["open"] += 1
        result[clock.urgency(case.effective_due, today, soon_days)] += 1
        if needs_attention(case):
            result["attention"] += 1
    return result


def local_time(value: datetime | str | None, jurisdiction: clock.Jurisdiction) -> str:
    """A timestamp in the controller's time zone, to the minute."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(jurisdiction.tz).strftime("%Y-%m-%d %H:%M")


def scalar_items(doc: dict[str, Any], limit: int = 300) -> list[tuple[str, str | bool | None]]:
    """The simple fields of a free-form record (verification, quarantine, a source's status): text,
    or True/False/None kept as such so the page can say yes or no."""
    items: list[tuple[str, str | bool | None]] = []
    for key, value in doc.items():
        if isinstance(value, bool) or value is None:
            items.append((str(key), value))
            continue
        if isinstance(value, (dict, list)):
            value = ", ".join(str(v) for v in value) if isinstance(value, list) and \
                all(isinstance(v, (str, int, float)) for v in value) else None
            if value is None:
                continue
        text = str(value)
        items.append((str(key), text if len(text) <= limit else text[:limit] + "…"))
    return items
