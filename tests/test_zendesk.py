"""Zendesk against a local fake that speaks its documented API: tickets, fields, notes, retries."""
from __future__ import annotations

import pytest

from bot.models import Person
from bot.vault import Vault
from integrations.helpdesk_fields import posted_marker
from integrations.helpdesk_sync import queue_note, queue_reply
from tests.fakes.zendesk import FIELD_IDS, FakeZendesk
from tests.helpdesk_support import Clock, effects, make_service, run_outbox

TICKETS = r"/api/v2/tickets\.json"


@pytest.fixture
def fake():
    with FakeZendesk() as server:
        yield server
        server.assert_clean()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def service(tmp_path, fake, clock):
    svc = make_service(tmp_path, "zendesk", fake.url, clock)
    yield svc
    svc.close()


def _open(service, clock, email="camille@example.fr", rights=("access",)):
    return service.cases.open(received_at=clock(), rights=list(rights), language="fr", channel="email",
                              requester=Person(email=email, name="Camille Martin"))


def test_a_new_case_gets_one_ticket_with_the_dsar_fields_and_tags(service, fake, clock):
    case = _open(service, clock)
    run_outbox(service)
    [create] = fake.calls("POST", TICKETS)
    ticket = create.json()["ticket"]
    assert ticket["external_id"] == case.id
    assert ticket["tags"] == ["dsar", "dsar_access"]
    assert ticket["comment"]["public"] is False  # the requester's "received" trigger stays silent
    assert ticket["requester"] == {"email": "camille@example.fr", "name": "Camille Martin"}
    assert create.headers["idempotency-key"] == f"helpdesk:{case.id}:open"
    values = {f["id"]: f["value"] for f in ticket["custom_fields"]}
    assert values == {FIELD_IDS["case_ref"]: case.ref, FIELD_IDS["right"]: "access",
                      FIELD_IDS["received"]: case.received_at.astimezone(service.cases.jurisdiction.tz).date().isoformat(),
                      FIELD_IDS["due"]: case.due.isoformat(), FIELD_IDS["extended_due"]: None,
                      FIELD_IDS["state"]: "received"}
    linked = service.cases.get(case.id)
    tid = int(linked.ticket["id"])
    assert linked.ticket["system"] == "zendesk" and tid in fake.tickets
    assert service.store.get("refs", f"ticket:zendesk:{tid}") == {"case_id": case.id}
    assert fake.calls("PUT", rf"/api/v2/tickets/{tid}\.json") == []  # created right: nothing to rewrite


def test_changes_reach_the_ticket_once_each_and_flags_show_as_a_tag(service, fake, clock):
    case = _open(service, clock)
    run_outbox(service)
    tid = int(service.cases.get(case.id).ticket["id"])
    service.cases.transition(case.id, "request_identity", "system")
    service.cases.extend(case.id, "agent:lea", "many systems to search")
    run_outbox(service)
    puts = fake.calls("PUT", rf"/api/v2/tickets/{tid}\.json")
    assert len(puts) == 1  # two changes queued, the first run already wrote the newest: the second skips
    assert fake.field(tid, "state") == "awaiting_identity"
    assert fake.field(tid, "extended_due") == service.cases.get(case.id).extended_due.isoformat()
    assert "tags" not in puts[0].json()["ticket"]  # never replace the agents' tags
    service.cases.flag(case.id, "sources_failed", "no answer from shop_db")
    run_outbox(service)
    assert "dsar_flagged" in fake.tickets[tid]["tags"]
    service.cases.resolve_flag(case.id, "sources_failed", "agent:lea")
    run_outbox(service)
    assert "dsar_flagged" not in fake.tickets[tid]["tags"] and "dsar_access" in fake.tickets[tid]["tags"]


def test_an_old_update_never_overwrites_a_newer_one(service, fake, clock):
    case = _open(service, clock)
    run_outbox(service)
    tid = int(service.cases.get(case.id).ticket["id"])
    service.cases.transition(case.id, "request_identity", "system")
    sync = service.component("helpdesk_sync")
    sync.sync(case.id)  # a worker writes version N ...
    service.cases.transition(case.id, "verify", "system")
    sync.sync(case.id)  # ... another writes N+1 ...
    run_outbox(service)  # ... then the effects of both versions run late
    assert fake.field(tid, "state") == "verified"
    assert len(fake.calls("PUT", rf"/api/v2/tickets/{tid}\.json")) == 2


def test_a_lost_answer_never_makes_a_second_ticket(service, fake, clock):
    case = _open(service, clock)
    fake.lose(1, path=TICKETS, method="POST")  # Zendesk creates it; we never hear back
    run_outbox(service)
    [effect] = effects(service, "helpdesk.open_ticket")
    assert effect["status"] == "pending" and effect["attempts"] == 1
    clock.advance(60)
    run_outbox(service)
    assert len(fake.tickets) == 1 and len(fake.calls("POST", TICKETS)) == 1
    assert fake.calls("GET", TICKETS)[0].arg("external_id") == case.id
    assert service.cases.get(case.id).ticket["id"] == str(next(iter(fake.tickets)))


def test_a_rate_limit_waits_as_long_as_zendesk_asks(service, fake, clock):
    first, second = _open(service, clock), _open(service, clock, email="sam@example.org")
    fake.fail(1, 429, {"Retry-After": "90"}, path=TICKETS, method="POST")
    run_outbox(service)
    assert len(fake.calls("POST", TICKETS)) == 1  # after the 429 the client waits: the second case did not try
    docs = effects(service, "helpdesk.open_ticket")
    assert all(d["status"] == "pending" for d in docs)
    clock.advance(89)
    run_outbox(service)
    assert len(fake.calls("POST", TICKETS)) == 1
    clock.advance(1)
    run_outbox(service)
    assert len(fake.tickets) == 2
    assert {service.cases.get(c.id).ticket["id"] for c in (first, second)} == {str(t) for t in fake.tickets}


def test_a_note_with_a_file_goes_through_the_uploads_api(service, fake, clock):
    case = _open(service, clock)
    run_outbox(service)
    Vault(service.data_dir).write(f"drafts/{case.id}/lettre.pdf", b"%PDF-1.4 draft")
    assert queue_note(service, service.cases.get(case.id), f"draft:{case.id}:1", "Projet de réponse prêt.",
                      [f"drafts/{case.id}/lettre.pdf"])
    run_outbox(service)
    [upload] = fake.calls("POST", r"/api/v2/uploads\.json")
    assert upload.arg("filename") == "lettre.pdf" and upload.body == b"%PDF-1.4 draft"
    tid = int(service.cases.get(case.id).ticket["id"])
    [note] = fake.notes(tid)
    assert note["public"] is False and note["body"] == "Projet de réponse prêt."
    assert [a["file_name"] for a in note["attachments"]] == ["lettre.pdf"]
    put = fake.calls("PUT", rf"/api/v2/tickets/{tid}\.json")[-1].json()["ticket"]
    assert len(put["comment"]["uploads"]) == 1 and put["comment"]["public"] is False
    assert put["metadata"]["custom"]["dsarbot_ref"] == posted_marker(f"draft:{case.id}:1")


def test_a_note_whose_answer_was_lost_is_not_posted_twice(service, fake, clock):
    case = _open(service, clock)
    run_outbox(service)
    tid = int(service.cases.get(case.id).ticket["id"])
    queue_note(service, service.cases.get(case.id), "note:1", "Identity check sent.")
    fake.lose(1, path=rf"/api/v2/tickets/{tid}\.json", method="PUT")
    run_outbox(service)
    clock.advance(60)
    run_outbox(service)
    assert [n["body"] for n in fake.notes(tid)] == ["Identity check sent."]
    assert fake.calls("GET", rf"/api/v2/tickets/{tid}/audits\.json")  # the retry looked before posting
    assert effects(service, "helpdesk.note")[0]["result"] == {"already_posted": True}


def test_a_public_reply_is_public(service, fake, clock):
    case = _open(service, clock)
    run_outbox(service)
    queue_reply(service, service.cases.get(case.id), "reply:1", "Nous avons bien reçu votre demande.")
    run_outbox(service)
    tid = int(service.cases.get(case.id).ticket["id"])
    assert [(n["body"], n["public"]) for n in fake.notes(tid)] == [("Nous avons bien reçu votre demande.", True)]


def test_wrong_credentials_are_reported_at_start_and_retried_later(tmp_path, fake, clock):
    svc = make_service(tmp_path, "zendesk", fake.url, clock, zendesk={"api_token": "wrong"})
    [problem] = svc.run_startup_checks()
    assert "credentials" in problem
    case = _open(svc, clock)
    run_outbox(svc)
    [effect] = effects(svc, "helpdesk.open_ticket")
    assert effect["status"] == "pending" and "credentials" in effect["last_error"]
    assert fake.tickets == {}
    svc.close()


def test_a_ready_draft_reaches_the_agents_as_an_internal_note_with_its_files(service, fake, clock):
    case = _open(service, clock)
    run_outbox(service)
    vault = Vault(service.data_dir)
    vault.write(f"cases/{case.id}/draft/lettre.html", b"<p>Madame,</p>")
    draft = {"hash": "ab" * 32, "files": [{"name": "lettre.html", "vault_path": f"cases/{case.id}/draft/lettre.html",
                                           "content_type": "text/html", "role": "letter_html"}]}
    service.cases.transition(case.id, "verify", "system")
    service.cases.transition(case.id, "start_gathering", "system")
    service.cases.transition(case.id, "gathered", "system", mutate=lambda c: setattr(c, "draft", draft))
    run_outbox(service)
    tid = int(service.cases.get(case.id).ticket["id"])
    [note] = fake.notes(tid)
    assert note["public"] is False and case.ref in note["body"]
    assert [a["file_name"] for a in note["attachments"]] == ["lettre.html"]
    assert fake.field(tid, "state") == "drafted"
