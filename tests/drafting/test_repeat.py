"""Repeat requests: earlier cases by the same verified email within the configured window, for the agent."""
from __future__ import annotations

from datetime import timedelta

from bot.models import Person
from tests.drafting.conftest import RECEIVED, drafter, gather_result, make_service, verified_case


def test_earlier_requests_by_the_same_verified_email_are_shown_on_the_draft(tmp_path):
    service = make_service(tmp_path, drafting={"repeat_window_days": 90})
    old = verified_case(service, "fr", received=RECEIVED - timedelta(days=100))
    recent = verified_case(service, "fr", received=RECEIVED - timedelta(days=30), email="CAMILLE.martin@example.fr")
    service.cases.open(received_at=RECEIVED - timedelta(days=10), rights=["access"], language="fr", channel="email",
                       requester=Person(email="camille.martin@example.fr"))  # claimed only, never verified
    verified_case(service, "fr", received=RECEIVED - timedelta(days=5), email="someone@example.org")
    case = verified_case(service, "fr")
    draft = drafter(service).draft(case, gather_result())
    assert [e["ref"] for e in draft["repeat_requests"]] == [recent.ref]
    assert old.ref not in str(draft["repeat_requests"])


def test_window_zero_disables_the_check(tmp_path):
    service = make_service(tmp_path, drafting={"repeat_window_days": 0})
    verified_case(service, "fr", received=RECEIVED - timedelta(days=3))
    draft = drafter(service).draft(verified_case(service, "fr"), gather_result())
    assert draft["repeat_requests"] == []
