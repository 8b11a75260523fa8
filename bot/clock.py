"""The legal clock: due dates of GDPR Art. 12(3), computed per Regulation 1182/71.

Pure functions: callers pass the date of receipt and the calendar; nothing here reads the time.

- A period in months ends on the same date of the last month (art. 3(2)(c)), on the last day of
  that month when the date does not exist.
- When the last day is a Saturday, Sunday or public holiday of the controller's country, the
  period ends at the end of the next working day (art. 3(4)).
- The extended due date is three months from the same start (the two further months of Art. 12(3)),
  with the same rules; the extension must be notified within the first month.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

#: The calendar the legal material calls "FR-AM": Alsace-Moselle is subdivision "6AE" in some
#: releases of `holidays` and the departments 57, 67, 68 in others; we accept the friendly name.
SUBDIVISION_ALIASES = {("FR", "ALSACE-MOSELLE"): ("57",), ("FR", "AM"): ("57",)}


class UnknownCalendar(ValueError):
    """The configured country or subdivision is not known to the `holidays` package."""


@dataclass(frozen=True)
class Jurisdiction:
    """Where the controller is established: its public holidays decide the working days."""

    country: str | None = "FR"  # None: weekends only
    subdivision: str | None = None
    timezone: str = "Europe/Paris"

    @property
    def tz(self) -> tzinfo:
        return ZoneInfo(self.timezone)


@lru_cache(maxsize=64)
def _holiday_calendar(country: str, subdivision: str | None) -> holidays.HolidayBase:
    country = country.upper()
    subdiv = subdivision
    if subdivision:
        alias = SUBDIVISION_ALIASES.get((country, subdivision.upper()))
        subdiv = alias[0] if alias else subdivision
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise UnknownCalendar(f"no public-holiday calendar for country {country!r}")
    if subdiv and subdiv not in supported[country]:
        known = ", ".join(supported[country]) or "none"
        raise UnknownCalendar(f"country {country!r} has no subdivision {subdivision!r} (known: {known})")
    return holidays.country_holidays(country, subdiv=subdiv)


def validate_jurisdiction(jurisdiction: Jurisdiction) -> None:
    """Raise UnknownCalendar early (at start-up) rather than on the first request."""
    if jurisdiction.country:
        _holiday_calendar(jurisdiction.country, jurisdiction.subdivision)
    ZoneInfo(jurisdiction.timezone)


def is_working_day(day: date, jurisdiction: Jurisdiction) -> bool:
    if day.weekday() >= 5:
        return False
    if not jurisdiction.country:
        return True
    return day not in _holiday_calendar(jurisdiction.country, jurisdiction.subdivision)


def add_months(start: date, months: int) -> date:
    """Same date `months` later, or the last day of that month when the date does not exist."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def next_working_day(day: date, jurisdiction: Jurisdiction) -> date:
    """`day` itself when it is a working day, else the first working day after it."""
    while not is_working_day(day, jurisdiction):
        day += timedelta(days=1)
    return day


def period_end(received: date, months: int, jurisdiction: Jurisdiction) -> date:
    return next_working_day(add_months(received, months), jurisdiction)


def due_date(received: date, jurisdiction: Jurisdiction) -> date:
    return period_end(received, 1, jurisdiction)


def extended_due_date(received: date, jurisdiction: Jurisdiction) -> date:
    return period_end(received, 3, jurisdiction)


def last_extension_notice_day(received: date) -> date:
    """Last day on which an extension may still be notified: within the first month.

    Conservative on purpose: the calendar date one month on, without the working-day shift
    (the shift lengthens the time to answer, not obviously the time to announce an extension).
    """
    return add_months(received, 1)


def receipt_date(received_at: datetime, jurisdiction: Jurisdiction) -> date:
    """The day of receipt in the controller's time zone (a mail at 23:30 UTC is the next day in Paris)."""
    return received_at.astimezone(jurisdiction.tz).date()


@dataclass(frozen=True)
class Deadlines:
    received: date
    due: date
    extended_due: date
    last_extension_notice: date

    def as_json(self) -> dict[str, str]:
        return {
            "received": self.received.isoformat(),
            "due": self.due.isoformat(),
            "extended_due": self.extended_due.isoformat(),
        }


def deadlines(received: date, jurisdiction: Jurisdiction) -> Deadlines:
    return Deadlines(
        received=received,
        due=due_date(received, jurisdiction),
        extended_due=extended_due_date(received, jurisdiction),
        last_extension_notice=last_extension_notice_day(received),
    )


def reminder_dates(due: date, offsets_days: list[int] | tuple[int, ...]) -> list[date]:
    """Dates on which to remind agents: `offsets_days` calendar days before `due`, earliest first."""
    return sorted({due - timedelta(days=offset) for offset in offsets_days if offset >= 0})


def days_left(due: date, today: date) -> int:
    """Calendar days until `due` (0 on the day, negative once overdue)."""
    return (due - today).days


def urgency(due: date, today: date, soon_days: int = 7) -> str:
    """`overdue`, `due_soon` or `on_track`: what the desk and the digest show at a glance."""
    left = days_left(due, today)
    if left < 0:
        return "overdue"
    if left <= soon_days:
        return "due_soon"
    return "on_track"
