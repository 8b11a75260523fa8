"""Earlier requests by the same verified person: information for the agent (Art. 12(5) "repetitive").

Only verified email addresses are compared (a claimed From address proves nothing). The agent
decides whether a request is excessive; a one-year interval never is (EDPB 01/2022).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterable

from bot.models import Case


def verified_email(case: Case) -> str:
    if not case.verification.get("verified"):
        return ""
    return (case.verification.get("verified_email") or "").strip().lower()


def earlier_requests(case: Case, cases: Iterable[Case], window_days: int) -> list[dict[str, Any]]:
    """Cases by the same verified email received within `window_days` before `case`, newest first."""
    email = verified_email(case)
    if not email or window_days <= 0:
        return []
    since = case.received_at - timedelta(days=window_days)
    found = [c for c in cases
             if c.id != case.id and verified_email(c) == email and since <= c.received_at < case.received_at]
    return [{"ref": c.ref, "received": c.received_at.date().isoformat(), "state": str(c.state),
             "rights": list(c.rights)} for c in sorted(found, key=lambda c: c.received_at, reverse=True)]
