"""What a case shows in its helpdesk ticket: custom field values, tags, texts, and posted-markers.

Shared by every helpdesk so that Zendesk and Freshdesk show the same thing. Values depend only on
the case's own dates and state, never on what data we hold (SECURITY.md rule 5).
"""
from __future__ import annotations

import hashlib
import json

from bot import clock
from bot.i18n import t
from bot.models import Case

#: The custom fields every helpdesk mirrors; the config maps each to the helpdesk's field id/name.
FIELD_KEYS = ("case_ref", "right", "received", "due", "extended_due", "state")
BASE_TAG = "dsar"
FLAGGED_TAG = "dsar_flagged"


def case_fields(case: Case, jurisdiction: clock.Jurisdiction) -> dict[str, str | None]:
    """Field key -> value. The extended due date only once the case is extended (else it misleads)."""
    return {
        "case_ref": case.ref,
        "right": ",".join(case.rights),
        "received": clock.receipt_date(case.received_at, jurisdiction).isoformat(),
        "due": case.due.isoformat(),
        "extended_due": case.extended_due.isoformat() if case.extension else None,
        "state": str(case.state),
    }


def case_tags(case: Case) -> list[str]:
    """Tags dsarbot manages: `dsar`, one per right (`dsar_access`...), `dsar_flagged` while flags are open."""
    tags = [BASE_TAG, *(f"{BASE_TAG}_{right}" for right in case.rights)]
    if case.open_flags:
        tags.append(FLAGGED_TAG)
    return tags


def managed_tags(case: Case) -> set[str]:
    """Tags dsarbot may remove (it never touches tags agents added)."""
    return {FLAGGED_TAG}


def fingerprint(case: Case, jurisdiction: clock.Jurisdiction) -> str:
    """Changes exactly when what the ticket should show changes."""
    shown = {"fields": case_fields(case, jurisdiction), "tags": case_tags(case)}
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:24]


def ticket_subject(case: Case) -> str:
    rights = ", ".join(t(f"right.{right}", case.language) for right in case.rights)
    return t("helpdesk.ticket_subject", case.language, ref=case.ref, rights=rights)


def ticket_body(case: Case, jurisdiction: clock.Jurisdiction) -> str:
    values = case_fields(case, jurisdiction)
    rights = ", ".join(t(f"right.{right}", case.language) for right in case.rights)
    return t("helpdesk.ticket_body", case.language, ref=case.ref, rights=rights, received=values["received"],
             due=values["due"])


def posted_marker(idempotency_key: str) -> str:
    """A short token derived from an effect's key, left on a note so a retry can see it was posted."""
    return "dsarbot-ref:" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
