"""The register of requests a DPO shows the CNIL: one row per case, from the store.

Only dates, rights, channels and decisions: the register proves timeliness, it is not a copy of
anyone's data. Outcome and "on time" are derived, never typed in.
"""
from __future__ import annotations

import csv
import io
from typing import Iterable

from bot import clock
from bot.models import Case, State

COLUMNS = ["reference", "received", "rights", "channel", "due", "extended", "extended_due", "state",
           "decisions", "answered_on", "outcome", "on_time"]

_OUTCOMES = {
    State.DELIVERED: "answered", State.CLOSED: "answered", State.REFUSED: "refused",
    State.REJECTED_IDENTITY: "identity_not_proven", State.WITHDRAWN: "withdrawn", State.DISMISSED: "not_a_request",
}


def outcome(case: Case) -> str:
    if case.state == State.CLOSED:
        for decision in reversed(case.decisions):
            if decision["action"] in ("refuse", "reject_identity", "withdraw", "dismiss", "deliver"):
                return _OUTCOMES[{"refuse": State.REFUSED, "reject_identity": State.REJECTED_IDENTITY,
                                  "withdraw": State.WITHDRAWN, "dismiss": State.DISMISSED,
                                  "deliver": State.DELIVERED}[decision["action"]]]
    return _OUTCOMES.get(case.state, "open")


def row(case: Case, jurisdiction: clock.Jurisdiction) -> dict[str, str]:
    answered = clock.receipt_date(case.answered_at, jurisdiction) if case.answered_at else None
    on_time = "" if answered is None else ("yes" if answered <= case.effective_due else "no")
    return {
        "reference": case.ref,
        "received": clock.receipt_date(case.received_at, jurisdiction).isoformat(),
        "rights": "+".join(case.rights),
        "channel": case.channel,
        "due": case.due.isoformat(),
        "extended": "yes" if case.extension else "no",
        "extended_due": case.extended_due.isoformat() if case.extension else "",
        "state": str(case.state),
        "decisions": "; ".join(f"{d['at'][:10]} {d['action']} by {d['by']}" for d in case.decisions),
        "answered_on": answered.isoformat() if answered else "",
        "outcome": outcome(case),
        "on_time": on_time,
    }


def to_csv(cases: Iterable[Case], jurisdiction: clock.Jurisdiction) -> str:
    from bot.exports.csv_safe import safe_cell

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for case in sorted(cases, key=lambda c: (c.received_at, c.ref)):
        writer.writerow({k: safe_cell(v) for k, v in row(case, jurisdiction).items()})
    return out.getvalue()
