"""Identity decisions on the desk: only a logged-in agent (CSRF-checked) accepts a mandate, asks for an ID
document with reasons, looks at it and records the check, which deletes it."""
from __future__ import annotations

import io
import re

import pytest

from bot.models import State
from bot.web.app import create_app
from tests.conftest_desk import csrf_from, log_in, page_token
from tests.desk_seed import password_hash
from tests.identity_support import Clock, make_service, run_outbox
from tests.test_request_form import post

ALICE = "alice@shop.example"
LAWYER = "maitre.dupont@avocats.example"


@pytest.fixture
def env(tmp_path):
    service, mailer, _ = make_service(tmp_path, Clock(), {ALICE: {"order_reference": "A1001"}},
                                      desk={"agents": {"lea": password_hash()}})
    app = create_app(service)
    yield service, mailer, app
    service.close()


def agent_client(app):
    client = app.test_client()
    assert log_in(client, "lea").status_code == 303
    return client


def third_party_case(service, mailer, app):
    requester = app.test_client()
    post(requester, LAWYER, lang="fr", third_party="yes", relationship="lawyer", subject_name="Alice Martin",
         order="A1001", proof=(io.BytesIO(b"%PDF-1.4 procuration"), "procuration.pdf"))
    run_outbox(service)
    (case,) = service.cases.all()
    link = mailer.last_link(LAWYER).replace("http://dsar.test", "")
    token = csrf_from(requester.get(link).get_data(as_text=True))
    assert requester.post(link, data={"csrf_token": token, "code": mailer.last_code(LAWYER)}).status_code == 303
    return service.cases.get(case.id)


def test_mandate_needs_a_logged_in_agent(env):
    service, mailer, app = env
    case = third_party_case(service, mailer, app)
    stranger = app.test_client()
    response = stranger.post(f"/desk/cases/{case.ref}/identity/accept_mandate", data={})
    assert response.status_code == 303 and "/desk/login" in response.headers["Location"]
    agent = agent_client(app)
    assert agent.post(f"/desk/cases/{case.ref}/identity/accept_mandate", data={}).status_code == 400  # no CSRF
    assert service.cases.get(case.id).state == State.AWAITING_IDENTITY


def test_agent_reviews_the_proof_and_accepts_the_mandate(env):
    service, mailer, app = env
    case = third_party_case(service, mailer, app)
    agent = agent_client(app)
    page = agent.get(f"/desk/cases/{case.ref}").get_data(as_text=True)
    assert "Accept the mandate" in page and "Proof of mandate" in page
    document = agent.get(f"/desk/cases/{case.ref}/identity/documents/0")
    assert document.data == b"%PDF-1.4 procuration"
    assert document.headers["Content-Disposition"].startswith("attachment")
    assert any(e["action"] == "document_viewed" and e["actor"] == "agent:lea" for e in service.audit.events(case.id))
    token = page_token(agent, f"/desk/cases/{case.ref}")
    assert agent.post(f"/desk/cases/{case.ref}/identity/accept_mandate", data={"csrf_token": token}).status_code == 303
    case = service.cases.get(case.id)
    assert case.verification["verified"] and case.verification["delivery_email"] == LAWYER
    assert any(d["action"] == "verify" and d["by"] == "agent:lea" for d in case.decisions)
    run_outbox(service)
    assert [m.to for m in mailer.sent if "votre nom" in m.subject] == [ALICE]  # the subject is told


def test_rejecting_a_mandate_needs_reasons(env):
    service, mailer, app = env
    case = third_party_case(service, mailer, app)
    agent = agent_client(app)
    token = page_token(agent, f"/desk/cases/{case.ref}")
    agent.post(f"/desk/cases/{case.ref}/identity/reject_mandate", data={"csrf_token": token, "reason": " "})
    assert service.cases.get(case.id).state == State.AWAITING_IDENTITY
    agent.post(f"/desk/cases/{case.ref}/identity/reject_mandate",
               data={"csrf_token": token, "reason": "the power of attorney is not signed"})
    assert service.cases.get(case.id).state == State.REJECTED_IDENTITY
    run_outbox(service)
    payloads = [e["payload"] for e in service.store.find("outbox", {"kind": "mail.send"})]
    (rejection,) = [p for p in payloads if p["template"] == "identity_rejected"]
    assert rejection["to"] == LAWYER and "not signed" in rejection["text"] and "CNIL" in rejection["text"]
    assert "qualité pour agir" in rejection["text"]


def test_id_document_round_trip_and_deletion(env):
    service, mailer, app = env
    post(app.test_client(), ALICE)
    run_outbox(service)
    (case,) = service.cases.all()
    agent = agent_client(app)
    token = page_token(agent, f"/desk/cases/{case.ref}")
    # No reasons, no ID request.
    agent.post(f"/desk/cases/{case.ref}/identity/request_id_document", data={"csrf_token": token})
    assert "id_document" not in service.cases.get(case.id).verification.get("gates", {})
    agent.post(f"/desk/cases/{case.ref}/identity/request_id_document",
               data={"csrf_token": token, "reason": "the customer reported a hacked mailbox"})
    run_outbox(service)
    # The requester uploads through their verify link.
    requester = app.test_client()
    link = mailer.last_link(ALICE).replace("http://dsar.test", "")
    page = requester.get(link).get_data(as_text=True)
    assert 'name="document"' in page
    response = requester.post(f"{link}/document", data={
        "csrf_token": csrf_from(page), "kind": "id",
        "document": (io.BytesIO(b"\xff\xd8\xff\xe0 jpeg id card"), "carte.jpg")}, content_type="multipart/form-data")
    assert response.status_code == 200
    case = service.cases.get(case.id)
    stored = case.verification["id_check"]["document"]["vault_path"]
    assert (service.data_dir / "vault" / stored).exists()
    assert agent.get(f"/desk/cases/{case.ref}/identity/documents/0").data.startswith(b"\xff\xd8\xff")
    token = page_token(agent, f"/desk/cases/{case.ref}")
    agent.post(f"/desk/cases/{case.ref}/identity/id_check_ok", data={"csrf_token": token})
    case = service.cases.get(case.id)
    assert not (service.data_dir / "vault" / stored).exists()
    assert case.verification["verified"] and case.verification["method"] == "id_document"
    assert case.verification["id_check"]["outcome"] == "ok" and "document" not in case.verification["id_check"]
    assert agent.get(f"/desk/cases/{case.ref}/identity/documents/0").status_code == 404


def test_unlock_after_lockout(env):
    service, mailer, app = env
    post(app.test_client(), ALICE)
    run_outbox(service)
    (case,) = service.cases.all()
    requester = app.test_client()
    link = mailer.last_link(ALICE).replace("http://dsar.test", "")
    token = csrf_from(requester.get(link).get_data(as_text=True))
    for _ in range(5):
        requester.post(link, data={"csrf_token": token, "code": mailer.wrong_code(ALICE)})
    assert requester.get(link).status_code == 200 and "Too many wrong codes" in requester.get(link).get_data(as_text=True)
    agent = agent_client(app)
    page = agent.get(f"/desk/cases/{case.ref}").get_data(as_text=True)
    assert "Unlock and send a new code" in page
    agent.post(f"/desk/cases/{case.ref}/identity/unlock_codes", data={"csrf_token": csrf_from(page)})
    run_outbox(service)
    assert requester.post(link, data={"csrf_token": token, "code": mailer.last_code(ALICE)}).status_code == 303
    assert service.cases.get(case.id).verification["verified"]
