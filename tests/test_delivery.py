"""Secure delivery (SECURITY.md rules 2, 4): only to the verified address, only the approved bytes,
a fresh code per download, POST only, links that expire, exports purged."""
from __future__ import annotations

import io
import re

import pyzipper
import pytest

from bot.cases import IllegalTransition
from bot.delivery import DELIVERIES, deliveries_of
from bot.models import State
from bot.verification import verifier_of
from bot.web.app import create_app
from tests.identity_support import Clock, email_message, make_service, run_outbox

ALICE = "alice@shop.example"


def approved_case(service, mailer, sender=ALICE, **kw):
    """A case from `sender`, verified by code, drafted and approved by an agent."""
    result = service.components["intake"].receive(email_message(sender, **kw))
    run_outbox(service)
    token = mailer.last_link(sender if sender != "new@freemail.example" else ALICE).rsplit("/", 1)[1]
    code = mailer.last_code(sender if sender != "new@freemail.example" else ALICE)
    assert verifier_of(service).submit_code(token, code) == "verified"
    run_outbox(service)
    case = service.cases.get(result.case_id)
    assert case.state == State.DRAFTED, case.state
    return service.cases.transition(case.id, "approve", "agent:lea", detail={"draft_hash": case.draft["hash"]})


@pytest.fixture
def env(tmp_path):
    clock = Clock()
    service, mailer, contacts = make_service(tmp_path, clock, {ALICE: {"order_reference": "A1001"}})
    yield service, mailer, clock
    service.close()


def portal_path(mailer, address=ALICE):
    return mailer.last_link(address, "portal").replace("http://dsar.test", "")


def csrf(client, path):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def unlock(client, service, mailer, path, address=ALICE):
    token = csrf(client, path)
    assert client.post(f"{path}/code", data={"csrf_token": token}).status_code == 200
    run_outbox(service)
    code = mailer.last_code(address)
    return client.post(f"{path}/unlock", data={"csrf_token": token, "code": code}), token


def test_link_goes_to_the_verified_address_and_download_is_exactly_the_approved_files(env):
    service, mailer, _ = env
    case = approved_case(service, mailer, reply_to="thief@evil.example",
                         text="Send the data to thief@evil.example please")
    run_outbox(service)
    case = service.cases.get(case.id)
    assert case.state == State.DELIVERED and case.delivery["method"] == "portal"
    assert {m.to for m in mailer.sent} == {ALICE}
    link_mail = mailer.to(ALICE)[-1]
    assert "/portal/" in link_mail.text and not link_mail.attachments
    client = create_app(service).test_client()
    path = portal_path(mailer)
    page = client.get(path)
    assert page.status_code == 200 and "Send me a code" in page.get_data(as_text=True)
    assert len(mailer.sent) == 2, "opening the page (GET) must not send anything"
    response, token = unlock(client, service, mailer, path)
    assert response.status_code == 303
    assert mailer.sent[-1].to == ALICE and "code" in mailer.sent[-1].subject
    download = client.post(f"{path}/download", data={"csrf_token": token})
    assert download.status_code == 200 and download.headers["Content-Disposition"].startswith("attachment")
    with pyzipper.ZipFile(io.BytesIO(download.data)) as archive:
        assert sorted(archive.namelist()) == ["answer.pdf", "data.json"]  # not the desk's letter_text
        assert archive.read("answer.pdf") == b"%PDF-1.4 answer for " + case.ref.encode()
    downloads = [e for e in service.audit.events(case.id) if e["action"] == "download"]
    assert len(downloads) == 1 and downloads[0]["detail"]["files"] == 2 and downloads[0]["actor"] == "requester"


def test_download_by_get_is_refused_and_consumes_nothing(env):
    service, mailer, _ = env
    approved_case(service, mailer)
    run_outbox(service)
    client = create_app(service).test_client()
    path = portal_path(mailer)
    response, token = unlock(client, service, mailer, path)
    assert client.get(f"{path}/download").status_code == 405
    assert client.post(f"{path}/download", data={"csrf_token": token}).status_code == 200


def test_each_code_allows_one_download_and_replay_is_refused(env):
    service, mailer, _ = env
    approved_case(service, mailer)
    run_outbox(service)
    client = create_app(service).test_client()
    path = portal_path(mailer)
    _, token = unlock(client, service, mailer, path)
    with client.session_transaction() as session:
        grant = session["portal_grant"]
    assert client.post(f"{path}/download", data={"csrf_token": token}).status_code == 200
    # Replaying the same request with the same (captured) cookie and grant gets nothing.
    with client.session_transaction() as session:
        session["portal_grant"] = grant
    assert client.post(f"{path}/download", data={"csrf_token": token}).status_code == 403
    # The same code again: used.
    code = mailer.last_code(ALICE)
    assert client.post(f"{path}/unlock", data={"csrf_token": token, "code": code}).status_code == 400


def test_link_expires(env):
    service, mailer, clock = env
    approved_case(service, mailer)
    run_outbox(service)
    client = create_app(service).test_client()
    path = portal_path(mailer)
    _, token = unlock(client, service, mailer, path)
    clock.advance(days=7, seconds=1)
    assert client.get(path).status_code == 404
    assert client.post(f"{path}/download", data={"csrf_token": token}).status_code == 404
    assert client.post(f"{path}/code", data={"csrf_token": token}).status_code == 404


def test_portal_code_guessing_locks(env):
    service, mailer, _ = env
    case = approved_case(service, mailer)
    run_outbox(service)
    client = create_app(service).test_client()
    path = portal_path(mailer)
    token = csrf(client, path)
    client.post(f"{path}/code", data={"csrf_token": token})
    run_outbox(service)
    code = mailer.last_code(ALICE)
    wrong = f"{(int(code) + 7) % 10 ** 6:06d}"
    statuses = [client.post(f"{path}/unlock", data={"csrf_token": token, "code": wrong}).status_code for _ in range(5)]
    assert statuses == [400, 400, 400, 400, 429]
    assert client.post(f"{path}/unlock", data={"csrf_token": token, "code": code}).status_code == 429
    assert any(f.code == "portal_locked" for f in service.cases.get(case.id).open_flags)


def test_a_draft_changed_after_approval_is_never_delivered(env):
    service, mailer, _ = env
    case = approved_case(service, mailer)
    # Someone swaps a file in the vault after the agent approved.
    entry = next(f for f in case.draft["files"] if f["name"] == "answer.pdf")
    deliveries_of(service).vault.write(entry["vault_path"], b"%PDF-1.4 someone else's data")
    run_outbox(service)
    case = service.cases.get(case.id)
    assert case.state == State.APPROVED
    assert any(f.code == "delivery_mismatch" for f in case.open_flags)
    assert not any("/portal/" in m.text for m in mailer.sent)


def test_a_draft_changed_after_delivery_is_not_served(env):
    service, mailer, _ = env
    case = approved_case(service, mailer)
    run_outbox(service)
    entry = next(f for f in case.draft["files"] if f["name"] == "data.json")
    deliveries_of(service).vault.write(entry["vault_path"], b'{"records": 999}')
    client = create_app(service).test_client()
    path = portal_path(mailer)
    _, token = unlock(client, service, mailer, path)
    assert client.post(f"{path}/download", data={"csrf_token": token}).status_code == 403
    assert any(f.code == "delivery_mismatch" for f in service.cases.get(case.id).open_flags)
    assert not [e for e in service.audit.events(case.id) if e["action"] == "download"]


def test_approval_of_a_changed_draft_is_refused(env):
    service, mailer, _ = env
    result = service.components["intake"].receive(email_message(ALICE))
    run_outbox(service)
    verifier_of(service).submit_code(mailer.last_link(ALICE).rsplit("/", 1)[1], mailer.last_code(ALICE))
    run_outbox(service)
    case = service.cases.get(result.case_id)
    with pytest.raises(IllegalTransition, match="draft changed"):
        service.cases.transition(case.id, "approve", "agent:lea", detail={"draft_hash": "0" * 64})


def test_frozen_case_never_delivers(env):
    service, mailer, _ = env
    case = approved_case(service, mailer)
    service.cases.record(case.id, "report_not_me", "requester", lambda c: setattr(c, "frozen", True))
    run_outbox(service)
    case = service.cases.get(case.id)
    assert case.state == State.APPROVED
    assert not any("/portal/" in m.text for m in mailer.sent)
    with pytest.raises(IllegalTransition, match="frozen"):
        service.cases.transition(case.id, "deliver", "system")


def test_freezing_after_delivery_closes_the_portal(env):
    service, mailer, _ = env
    case = approved_case(service, mailer)
    run_outbox(service)
    client = create_app(service).test_client()
    path = portal_path(mailer)
    _, token = unlock(client, service, mailer, path)
    service.cases.record(case.id, "report_not_me", "requester", lambda c: setattr(c, "frozen", True))
    assert client.post(f"{path}/download", data={"csrf_token": token}).status_code == 404


def test_lookalike_who_verified_their_own_address_gets_only_their_own_nothing(env):
    service, mailer, _ = env
    case_id = service.components["intake"].receive(email_message("alice@shop.examp1e")).case_id
    service.cases.record(case_id, "t", "test", lambda c: c.subject.identifiers.update(order_reference="A1001"))
    run_outbox(service)
    verifier_of(service).submit_code(mailer.last_link("alice@shop.examp1e").rsplit("/", 1)[1],
                                     mailer.last_code("alice@shop.examp1e"))
    run_outbox(service)
    case = service.cases.get(case_id)
    assert case.draft["kind"] == "no_data"
    service.cases.transition(case.id, "approve", "agent:lea", detail={"draft_hash": case.draft["hash"]})
    run_outbox(service)
    assert [m.to for m in mailer.sent if "/portal/" in m.text] == ["alice@shop.examp1e"]
    assert not any("/portal/" in m.text for m in mailer.to(ALICE))


def test_encrypted_email_sends_an_aes_archive_and_the_password_only_on_the_portal(tmp_path):
    clock = Clock()
    service, mailer, _ = make_service(tmp_path, clock, {ALICE: {}}, delivery={"method": "encrypted_email"})
    case = approved_case(service, mailer)
    run_outbox(service)
    mail = mailer.to(ALICE)[-1]
    (name, content_type, data), = mail.attachments
    assert content_type == "application/zip" and name == f"{case.ref}.zip"
    with pyzipper.AESZipFile(io.BytesIO(data)) as archive:
        assert all(info.compress_type == pyzipper.WZ_AES or info.flag_bits & 0x1 for info in archive.infolist())
        with pytest.raises(RuntimeError):
            archive.read("answer.pdf")  # no password, no content
    client = create_app(service).test_client()
    path = portal_path(mailer)
    response, _ = unlock(client, service, mailer, path)
    password = re.search(r'<code id="password">([^<]+)</code>', response.get_data(as_text=True)).group(1)
    assert not any(password in m.text for m in mailer.sent), "the password never travels by mail"
    with pyzipper.AESZipFile(io.BytesIO(data)) as archive:
        archive.setpassword(password.encode())
        assert archive.read("answer.pdf").startswith(b"%PDF-1.4 answer")
    assert service.cases.get(case.id).state == State.DELIVERED
    service.close()


def test_exports_are_encrypted_at_rest_and_purged(env):
    service, mailer, clock = env
    case = approved_case(service, mailer)
    run_outbox(service)
    vault_root = service.data_dir / "vault"
    paths = [vault_root / f["vault_path"] for f in case.draft["files"]]
    assert all(p.exists() and b"%PDF" not in p.read_bytes() for p in paths)
    deliveries = deliveries_of(service)
    clock.advance(days=29)
    assert deliveries.purge_expired() == 0
    clock.advance(days=1, seconds=1)
    assert deliveries.purge_expired() == 1
    assert not any(p.exists() for p in paths)
    assert service.store.find(DELIVERIES)[0]["status"] == "purged"
    assert any(e["action"] == "export_purged" for e in service.audit.events(case.id))
    assert service.cases.get(case.id).delivery["purged_at"]
    assert "delivery.purge" in [job.id for job in service.jobs]


def test_portal_code_flooding_is_throttled(env):
    service, mailer, _ = env
    approved_case(service, mailer)
    run_outbox(service)
    client = create_app(service).test_client()
    path = portal_path(mailer)
    token = csrf(client, path)
    statuses = [client.post(f"{path}/code", data={"csrf_token": token}).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    run_outbox(service)
    assert len([m for m in mailer.to(ALICE) if "open your answer" in m.subject]) == 5
