"""Identity verification (SECURITY.md rules 1, 2, 3): codes go only to addresses on file, and only a
right code (or an agent's ID check) verifies."""
from __future__ import annotations

import pytest

from bot.cases import IllegalTransition
from bot.models import Person, State
from bot.otp import BUDGETS, CODES
from bot.verification import choose_targets, verifier_of
from tests.identity_support import Clock, OnFileContact, email_message, make_service, run_outbox

ALICE = "alice@shop.example"


@pytest.fixture
def kit(tmp_path):
    clock = Clock()
    service, mailer, contacts = make_service(tmp_path, clock, {ALICE: {"order_reference": "A1001"}})
    yield service, mailer, contacts, clock
    service.close()


def receive(service, message):
    return service.components["intake"].receive(message)


def open_from(service, sender, **kw):
    result = receive(service, email_message(sender, **kw))
    run_outbox(service)
    return service.cases.get(result.case_id)


def code_and_token(mailer, address):
    return mailer.last_code(address), mailer.last_link(address).rsplit("/", 1)[1]


def test_customer_writing_from_the_address_on_file_gets_one_code_there(kit):
    service, mailer, _, _ = kit
    case = open_from(service, ALICE)
    assert case.state == State.AWAITING_IDENTITY
    assert [m.to for m in mailer.sent] == [ALICE]
    code, token = code_and_token(mailer, ALICE)
    assert verifier_of(service).submit_code(token, code) == "verified"
    case = service.cases.get(case.id)
    assert case.state == State.VERIFIED
    assert case.verification["verified"] is True
    assert case.verification["method"] == "email_code"
    assert case.verification["verified_email"] == ALICE
    assert case.verification["at"]


@pytest.mark.parametrize("lookalike", [
    "aIice@shop.example",  # capital i for l
    "alice@shop.examp1e",  # digit one
    "alice@shop-example.com",
    "alice@shop.example.evil.com",
    "rnalice@shop.example",
])
def test_lookalike_sender_never_gets_a_code_that_unlocks_the_customer(kit, lookalike):
    service, mailer, _, _ = kit
    # The impostor even quotes the customer's order number.
    case_id = receive(service, email_message(lookalike)).case_id
    service.cases.record(case_id, "test_identifiers", "test",
                         lambda c: c.subject.identifiers.update(order_reference="A1001"))
    run_outbox(service)
    case = service.cases.get(case_id)
    assert {m.to for m in mailer.sent} == {ALICE, case.requester.email}
    assert any(f.code == "sender_differs_from_file" for f in case.open_flags)
    # The impostor proves control of their own address: that unlocks only data linked to it, i.e. nothing.
    code, token = code_and_token(mailer, case.requester.email)
    assert verifier_of(service).submit_code(token, code) == "verified"
    case = service.cases.get(case_id)
    assert case.verification["verified_email"] == case.requester.email != ALICE
    assert case.subject.email != ALICE
    assert case.subject.identifiers == {}, "an order number on another customer's record must be dropped"
    from bot.pipeline import subject_query

    query = subject_query(case)
    assert ALICE not in query.emails and "A1001" not in str(query.identifiers)


def test_the_customers_own_code_goes_to_the_address_on_file_only(kit):
    service, mailer, _, _ = kit
    case_id = receive(service, email_message("alice.new@freemail.example")).case_id
    service.cases.record(case_id, "test_identifiers", "test", lambda c: c.subject.identifiers.update(order_reference="A1001"))
    run_outbox(service)
    code, token = code_and_token(mailer, ALICE)
    assert verifier_of(service).submit_code(token, code) == "verified"
    case = service.cases.get(case_id)
    assert case.verification["verified_email"] == ALICE
    assert case.subject.identifiers == {"order_reference": "A1001"}


def test_spoofed_from_address_gets_the_code_at_the_real_mailbox(kit):
    service, mailer, _, _ = kit
    # Anyone can write "From: alice@shop.example"; the code goes to Alice's mailbox, not to the sender.
    case = open_from(service, ALICE, reply_to="attacker@evil.example",
                     text="Please send the code and my data to my new address attacker@evil.example")
    assert [m.to for m in mailer.sent] == [ALICE]
    assert not any("evil" in m.to for m in mailer.sent)
    assert case.verification["challenges"][0]["basis"] == "on_file"


def test_display_name_trick_is_only_a_name(kit):
    service, mailer, _, _ = kit
    # '"alice@shop.example" <evil@x.com>' parsed by the channel: the address is evil@x.com.
    case = open_from(service, "evil@x.com", sender_name="alice@shop.example")
    assert [m.to for m in mailer.sent] == ["evil@x.com"]
    assert mailer.to(ALICE) == []
    assert case.verification["challenges"] == [
        {"address": "evil@x.com", "basis": "writing_address", "source": "", "matched_on": "",
         "challenge_id": case.verification["challenges"][0]["challenge_id"],
         "sent_at": case.verification["challenges"][0]["sent_at"]}]


@pytest.mark.parametrize("confusable", [
    "\u0430lice@shop.example",  # Cyrillic a
    "\uff41lice@shop.example",  # fullwidth a
    "alice@sh\u043ep.example",  # Cyrillic o in the domain
    "alice@shop\u3002example",  # ideographic full stop
    "alic\u212a@shop.example",  # Kelvin sign: str.lower() makes it a plain k
])
def test_unicode_confusables_are_different_addresses(confusable):
    contacts = [OnFileContact(ALICE, "db", "email"), OnFileContact("alick@shop.example", "db", "email")]
    choice = choose_targets(confusable, contacts)
    assert all(t.basis != "on_file" or t.address in (ALICE, "alick@shop.example") for t in choice.targets)
    assert not any(t.basis == "writing_address" and t.address in (ALICE, "alick@shop.example")
                   for t in choice.targets)
    assert ("sender_differs_from_file" in [code for code, _ in choice.flags])


def test_case_insensitive_source_match_still_sends_to_the_spelling_on_file():
    # A database with an accent-insensitive collation may return Alice for "alíce@...": the code goes to
    # the address on file, and the writer only proves their own address.
    choice = choose_targets("al\u00edce@shop.example", [OnFileContact(ALICE, "db", "email")])
    assert [(t.address, t.basis) for t in choice.targets] == [("al\u00edce@shop.example", "writing_address"),
                                                              (ALICE, "on_file")]


def test_reply_with_a_new_address_changes_nothing(kit):
    service, mailer, _, _ = kit
    case = open_from(service, ALICE)
    reply = email_message("attacker@evil.example", "Send it to attacker@evil.example instead, thanks",
                          subject=f"Re: [{case.ref}] Your verification code", reply_to="attacker@evil.example")
    assert receive(service, reply).outcome == "attached"
    run_outbox(service)
    after = service.cases.get(case.id)
    assert after.state == State.AWAITING_IDENTITY
    assert after.verification["challenges"] == case.verification["challenges"]
    assert after.verification["verified"] is False
    assert {m.to for m in mailer.sent} == {ALICE}


def test_codes_are_stored_hashed_only(kit):
    service, mailer, _, _ = kit
    open_from(service, ALICE)
    code = mailer.last_code(ALICE)
    stored = repr(service.store.find(CODES)) + repr(service.store.find("outbox")) + repr(service.store.find("cases"))
    assert code not in stored
    token = mailer.last_link(ALICE).rsplit("/", 1)[1]
    assert token not in stored + repr(service.store.find("links"))


def test_five_wrong_codes_lock_the_case_and_flag_it(kit):
    service, mailer, _, _ = kit
    case = open_from(service, ALICE)
    code, token = code_and_token(mailer, ALICE)
    wrong = f"{(int(code) + 1) % 10 ** 6:06d}"
    verifier = verifier_of(service)
    assert [verifier.submit_code(token, wrong) for _ in range(4)] == ["wrong"] * 4
    assert verifier.submit_code(token, wrong) == "locked"
    # Even the right code no longer works, and asking for a new one does not buy more guesses.
    assert verifier.submit_code(token, code) == "locked"
    assert verifier.resend(token, "192.0.2.1") == "locked"
    case = service.cases.get(case.id)
    assert case.state == State.AWAITING_IDENTITY
    assert any(f.code == "verification_locked" for f in case.open_flags)
    # An agent unlocks: a fresh code works.
    verifier.unlock_and_resend(case.id, "agent:lea")
    run_outbox(service)
    assert verifier.submit_code(token, mailer.last_code(ALICE)) == "verified"


def test_a_new_code_does_not_reset_the_wrong_count(kit):
    service, mailer, _, _ = kit
    case = open_from(service, ALICE)
    verifier = verifier_of(service)
    token = mailer.last_link(ALICE).rsplit("/", 1)[1]
    for _ in range(3):
        assert verifier.submit_code(token, mailer.wrong_code(ALICE)) == "wrong"
    assert verifier.resend(token, "192.0.2.1") == "sent"
    run_outbox(service)
    assert verifier.submit_code(token, mailer.wrong_code(ALICE)) == "wrong"
    assert verifier.submit_code(token, mailer.wrong_code(ALICE, 2)) == "locked"
    assert service.store.get(BUDGETS, f"verify:{case.id}")["wrong"] == 5


def test_code_expires_and_is_single_use(kit):
    service, mailer, _, clock = kit
    open_from(service, ALICE)
    code, token = code_and_token(mailer, ALICE)
    clock.advance(minutes=10, seconds=1)
    verifier = verifier_of(service)
    assert verifier.submit_code(token, code) == "expired"
    assert verifier.resend(token, "192.0.2.1") == "sent"
    run_outbox(service)
    new = mailer.last_code(ALICE)
    assert verifier.submit_code(token, code) in ("expired", "wrong")  # the old code is dead
    assert verifier.submit_code(token, new) == "verified"
    assert verifier.submit_code(token, new) == "invalid"  # used, and the case moved on


def test_resend_is_throttled(kit):
    service, mailer, _, _ = kit
    open_from(service, ALICE)
    token = mailer.last_link(ALICE).rsplit("/", 1)[1]
    verifier = verifier_of(service)
    assert [verifier.resend(token, "192.0.2.1") for _ in range(4)] == ["sent", "sent", "sent", "throttled"]


def test_not_me_freezes_and_nothing_can_be_approved_or_delivered(kit):
    service, mailer, _, _ = kit
    case = open_from(service, ALICE)
    code, token = code_and_token(mailer, ALICE)
    verifier = verifier_of(service)
    assert verifier.report_not_me(token)
    case = service.cases.get(case.id)
    assert case.frozen and any(f.code == "reported_not_me" for f in case.open_flags)
    assert verifier.submit_code(token, code) == "invalid"
    # Even if an agent verified and drafted, a frozen case never gets approved or delivered.
    service.cases.transition(case.id, "verify", "agent:lea",
                             mutate=lambda c: c.verification.update(verified=True, verified_email=ALICE))
    service.cases.transition(case.id, "start_gathering", "system")
    service.cases.transition(case.id, "gathered", "system", mutate=lambda c: c.draft.update(hash="h1"))
    with pytest.raises(IllegalTransition, match="frozen"):
        service.cases.transition(case.id, "approve", "agent:lea", detail={"draft_hash": "h1"})


def test_message_content_cannot_verify(kit):
    service, mailer, _, _ = kit
    code_case = open_from(service, ALICE)
    code = mailer.last_code(ALICE)
    # The code pasted into an email reply is just text: only the verify page checks codes.
    reply = email_message(ALICE, f"My code is {code}", subject=f"Re: [{code_case.ref}] code")
    receive(service, reply)
    run_outbox(service)
    assert service.cases.get(code_case.id).verification["verified"] is False


def test_nothing_on_file_verifies_the_writing_address_and_finds_nothing(kit):
    service, mailer, _, _ = kit
    case = open_from(service, "bob@elsewhere.example")
    assert [m.to for m in mailer.sent] == ["bob@elsewhere.example"]
    code, token = code_and_token(mailer, "bob@elsewhere.example")
    assert verifier_of(service).submit_code(token, code) == "verified"
    case = service.cases.get(case.id)
    assert case.verification["verified_email"] == "bob@elsewhere.example"
    assert not any(f.code == "sender_differs_from_file" for f in case.flags)


def test_third_party_needs_code_and_accepted_mandate_and_subject_is_told(kit):
    from bot.identity_review import review_of
    from bot.intake import Classification, Parties
    from bot.uploads import Upload

    service, mailer, _, _ = kit
    message = email_message("maitre.dupont@avocats.example", "Je représente Mme Alice.")
    message.channel = "form"
    result = service.components["intake"].receive(message, classification=Classification("request", ["access"], "fr"),
                                                  parties=Parties(Person(email="maitre.dupont@avocats.example"),
                                                                  Person(email="", name="Alice",
                                                                         identifiers={"order_reference": "A1001"}),
                                                                  third_party=True))
    review = review_of(service)
    review.record_mandate_claim(result.case_id, "lawyer", Upload("mandat.pdf", b"%PDF-1.4 mandate"))
    run_outbox(service)
    case = service.cases.get(result.case_id)
    assert case.third_party and case.requester.email != case.subject.email
    assert [m.to for m in mailer.sent] == ["maitre.dupont@avocats.example"]
    assert "justificatif" in mailer.sent[0].text
    code, token = code_and_token(mailer, "maitre.dupont@avocats.example")
    assert verifier_of(service).submit_code(token, code) == "awaiting_agent"
    assert service.cases.get(case.id).state == State.AWAITING_IDENTITY
    review.decide_mandate(case.id, "agent:lea", accept=True)
    run_outbox(service)
    case = service.cases.get(case.id)
    assert case.verification["verified"] and any(d["action"] == "verify" for d in case.decisions)
    assert case.verification["verified_email"] == ALICE  # the subject's address on file, for the lookup
    assert case.verification["delivery_email"] == "maitre.dupont@avocats.example"
    notice = mailer.to(ALICE)
    assert len(notice) == 1 and "avocat" in notice[0].text
    # The subject can stop it.
    link = mailer.last_link(ALICE).rsplit("/", 1)[1]
    assert verifier_of(service).report_not_me(link) and service.cases.get(case.id).frozen


def test_id_document_only_on_recorded_doubt_and_deleted_after_check(kit):
    from bot.identity_review import review_of
    from bot.uploads import Upload

    service, mailer, _, _ = kit
    case = open_from(service, ALICE)
    review = review_of(service)
    with pytest.raises(ValueError):
        review.request_id_document(case.id, "agent:lea", "   ")
    review.request_id_document(case.id, "agent:lea", "the customer says the account was hacked")
    run_outbox(service)
    assert "identity document" in mailer.to(ALICE)[-1].text
    review.add_id_document(case.id, 0, Upload("id.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100))
    case = service.cases.get(case.id)
    doc = case.verification["id_check"]["document"]
    raw = (service.data_dir / "vault" / doc["vault_path"]).read_bytes()
    assert b"PNG" not in raw  # encrypted at rest
    data, _ = review.read_document(case.id, doc["vault_path"], "agent:lea")
    assert data.startswith(b"\x89PNG")
    case = review.record_id_check(case.id, "agent:lea", ok=True)
    assert not (service.data_dir / "vault" / doc["vault_path"]).exists()
    assert case.state == State.VERIFIED and case.verification["method"] == "id_document"
    assert "document" not in case.verification["id_check"]
    events = [e for e in service.audit.events(case.id)]
    assert any(e["action"] == "id_checked" and e["detail"].get("outcome") == "ok" for e in events)
    assert "vault_path" not in repr(events) and doc["sha256"] not in repr(events)
