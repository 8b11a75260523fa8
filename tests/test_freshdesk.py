"""Freshdesk against a local fake that speaks its documented API: tickets, notes, retries, search lag."""
from __future__ import annotations

import pytest

from bot.models import Person
from bot.vault import Vault
from integrations.helpdesk_fields import posted_marker
from integrations.helpdesk_sync import queue_note, queue_reply
from tests.fakes.freshdesk import FakeFreshdesk
from tests.helpdesk_support import Clock, effects, make_service, run_outbox

TICKETS = r"/api/v2/tickets"


@pytest.fixture
def fake():
    with FakeFreshdesk() as server:
        yield server
        server.assert_clean()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def service(tmp_path, fake, clock):
    svc = make_service(tmp_path, "freshdesk", fake.url, clock)
    yield svc
    svc.close()


def _open(service, clock, email="camille@example.fr"):
    return service.cases.open(received_at=clock(), rights=["erasure"], language="fr", channel="email",
                              requester=Person(email=email, name="Camille Martin"))


def _tid(service, case) -> int:
    return int(service.cases.get(case.id).ticket["id"])


def test_a_new_case_gets_one_ticket_with_custom_fields_by_name(service, fake, clock):
    case = _open(service, clock)
    run_outbox(service)
    [create] = fake.calls("POST", TICKETS)
    body = create.json()
    assert body["email"] == "camille@example.fr" and body["status"] == 2
    assert set(body["tags"]) == {"dsar", "dsar_erasure", "dsarbot"}
    assert body["custom_fields"]["cf_dsar_case_ref"] == case.ref
    assert body["custom_fields"]["cf_dsar_state"] == "received"
    assert body["custom_fields"]["cf_dsar_due"] == case.due.isoformat()
    assert "<script" not in body["description"]
    assert service.store.get("refs", f"ticket:freshdesk:{_tid(service, case)}") == {"case_id": case.id}
    assert fake.unexpected == [] and fake.calls("GET", r"/api/v2/search/tickets") == []


def test_updates_merge_tags_instead_of_erasing_the_agents(service, fake, clock):
    case = _open(service, clock)
    run_outbox(service)
    tid = _tid(service, case)
    fake.tickets[tid]["tags"].append("vip")  # an agent's own tag
    service.cases.flag(case.id, "sender_differs", "check the sender")
    run_outbox(service)
    assert fake.tickets[tid]["tags"] == ["dsar", "dsar_erasure", "dsarbot", "vip", "dsar_flagged"]
    service.cases.transition(case.id, "request_identity", "system")
    run_outbox(service)
    assert fake.tickets[tid]["custom_fields"]["cf_dsar_state"] == "awaiting_identity"


def test_a_lost_answer_is_found_again_although_search_lags(service, fake, clock):
    case = _open(service, clock)
    fake.lose(1, path=rf"^{TICKETS}$", method="POST")
    run_outbox(service)
    clock.advance(5)  # the first retry comes before Freshdesk's search index has the ticket
    run_outbox(service)
    assert len(fake.tickets) == 1 and len(fake.calls("POST", rf"^{TICKETS}$")) == 1
    [listing] = fake.calls("GET", rf"^{TICKETS}$")
    assert listing.arg("email") == "camille@example.fr"
    assert _tid(service, case) == next(iter(fake.tickets))


def test_when_the_list_misses_it_the_filter_api_finds_it(service, fake, clock):
    case = _open(service, clock)
    fake.lose(1, path=rf"^{TICKETS}$", method="POST")
    run_outbox(service)
    tid = next(iter(fake.tickets))
    fake.contacts[fake.tickets[tid]["requester_id"]]["email"] = "merged-contact@example.fr"  # an agent merged contacts
    fake.index()
    clock.advance(5)
    run_outbox(service)
    [search] = fake.calls("GET", r"/api/v2/search/tickets")
    assert search.arg("query") == f"\"dsar_case_ref:'{case.ref}'\""
    assert len(fake.tickets) == 1 and _tid(service, case) == tid


def test_a_private_note_carries_files_as_multipart(service, fake, clock):
    case = _open(service, clock)
    run_outbox(service)
    vault = Vault(service.data_dir)
    vault.write(f"drafts/{case.id}/lettre.pdf", b"%PDF-1.4 draft")
    vault.write(f"drafts/{case.id}/export.csv", b"email\ncamille@example.fr\n")
    queue_note(service, service.cases.get(case.id), "draft:1", "Projet prêt <à relire>",
               [f"drafts/{case.id}/lettre.pdf", f"drafts/{case.id}/export.csv"])
    run_outbox(service)
    tid = _tid(service, case)
    [post] = fake.calls("POST", rf"/api/v2/tickets/{tid}/notes")
    fields, files = post.multipart()
    assert fields["private"] == ["true"]
    assert "Projet prêt &lt;à relire&gt;" in fields["body"][0]  # plain text escaped for the HTML body
    assert [(name, filename, data) for name, filename, _, data in files] == [
        ("attachments[]", "lettre.pdf", b"%PDF-1.4 draft"), ("attachments[]", "export.csv", b"email\ncamille@example.fr\n")]
    [note] = fake.notes(tid)
    assert note["private"] is True and posted_marker("draft:1") in note["body_text"]


def test_notes_and_replies_are_posted_once_even_when_answers_are_lost(service, fake, clock):
    case = _open(service, clock)
    run_outbox(service)
    tid = _tid(service, case)
    queue_note(service, service.cases.get(case.id), "note:1", "Identity check sent.")
    queue_reply(service, service.cases.get(case.id), "reply:1", "We received your request.")
    fake.lose(1, path=rf"/api/v2/tickets/{tid}/notes")
    fake.lose(1, path=rf"/api/v2/tickets/{tid}/reply")
    run_outbox(service)
    clock.advance(60)
    run_outbox(service)
    assert sorted(n["body_text"].split("\n")[0].strip() for n in fake.notes(tid)) == [
        f"Identity check sent. {posted_marker('note:1')}", "We received your request."]
    assert all(e["status"] == "done" for e in effects(service))


def test_a_rate_limit_is_honoured(service, fake, clock):
    _open(service, clock)
    fake.fail(2, 429, {"Retry-After": "45"}, path=rf"^{TICKETS}$", method="POST")
    run_outbox(service)
    [effect] = effects(service, "helpdesk.open_ticket")
    assert effect["status"] == "pending" and "429" in effect["last_error"]
    clock.advance(45)
    run_outbox(service)
    clock.advance(45)
    run_outbox(service)
    assert len(fake.tickets) == 1


def test_start_up_check_names_missing_custom_fields(tmp_path, fake, clock):
    svc = make_service(tmp_path, "freshdesk", fake.url, clock,
                       freshdesk={"field_names": {"case_ref": "cf_dsar_case_ref", "state": "cf_nope"}})
    [problem] = svc.run_startup_checks()
    assert "cf_nope" in problem
    svc.close()
