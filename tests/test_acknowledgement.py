"""The acknowledgement: who gets one, in which language, and that it never depends on who the sender is."""
from __future__ import annotations

from bot.models import Person
from tests.mailbox_support import RECEIVED, FakeClock, make_service


def open_case(service, *, email="sam@example.co.uk", language="en", channel="email", kind="request", case_id=None):
    return service.cases.open(received_at=RECEIVED, rights=["access"], language=language, channel=channel,
                              requester=Person(email=email), classification={"kind": kind}, case_id=case_id)


def acks(service):
    return [e for e in service.store.find("outbox") if e["key"].endswith(":ack")]


def test_english_ack_with_reference_dates_and_next_steps(tmp_path):
    service = make_service(tmp_path / "d", now=FakeClock())
    try:
        case = open_case(service)
        (effect,) = acks(service)
        payload = effect["payload"]
        assert payload["to"] == "sam@example.co.uk" and payload["auto_submitted"] == "auto-replied"
        assert case.ref in payload["subject"]
        assert "3 March 2025" in payload["text"] and "3 April 2025" in payload["text"]
        assert "one-time code" in payload["text"] and "email address we have on file" in payload["text"]
    finally:
        service.close()


def test_unknown_language_falls_back_to_english(tmp_path):
    service = make_service(tmp_path / "d", now=FakeClock())
    try:
        open_case(service, language="pl")
        (effect,) = acks(service)
        assert effect["payload"]["language"] == "en"
    finally:
        service.close()


def test_no_ack_for_non_requests_other_channels_our_own_address_or_reopened_ids(tmp_path):
    service = make_service(tmp_path / "d", now=FakeClock())
    try:
        open_case(service, kind="other")  # kept only because it could not be read
        open_case(service, channel="zendesk")  # the helpdesk answers there
        open_case(service, email="confidentialite@shop.example")  # loop guard
        open_case(service, email="")
        assert acks(service) == []
        first = open_case(service, case_id="c1")
        open_case(service, case_id="c1")  # a replayed intake returns the existing case
        assert [e["case_id"] for e in acks(service)] == [first.id]
    finally:
        service.close()


def test_ack_is_identical_for_known_and_unknown_senders(tmp_path):
    """SECURITY.md rule 5: the text depends on the case only; nothing looks the sender up."""
    service = make_service(tmp_path / "d", now=FakeClock())
    try:
        known = open_case(service, email="customer-on-file@example.fr", language="fr")
        stranger = open_case(service, email="never-seen@example.org", language="fr")
        by_case = {e["case_id"]: e["payload"] for e in acks(service)}
        a, b = by_case[known.id], by_case[stranger.id]
        assert a["subject"].replace(known.ref, "REF") == b["subject"].replace(stranger.ref, "REF")
        assert a["text"].replace(known.ref, "REF") == b["text"].replace(stranger.ref, "REF")
        assert "1er" not in a["text"] and "3 avril 2025" in a["text"]
    finally:
        service.close()
