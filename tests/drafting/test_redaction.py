"""Rights of others (Art. 15(4)): other people's data is redacted by the configured rules and listed."""
from __future__ import annotations

import json

import pytest

from bot.drafting.redaction import Redactor, load_rules
from bot.models import Case
from integrations.base import Misconfigured
from tests.drafting import demo_customer as demo
from tests.drafting.conftest import make_service, verified_case

MARKERS = {"email": "[email]", "phone": "[phone]", "name": "[name]", "third_party": "[third party]",
           "other": "[removed]"}


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(load_rules("config/redaction.yaml"), MARKERS)


@pytest.fixture
def case(tmp_path) -> Case:
    return verified_case(make_service(tmp_path))


def by_id(records):
    return {(r.entity, r.record_id): r for r in records}


def test_other_peoples_email_phone_and_name_are_redacted_the_subjects_kept(redactor, case):
    records, redactions = redactor.redact(case, demo.records())
    message = by_id(records)[("ps_customer_message", "900")].fields["message"]
    assert demo.OTHER_EMAIL not in message and demo.OTHER_PHONE not in message and "Julie Bernard" not in message
    assert "[email]" in message and "[phone]" in message and "[name]" in message
    assert demo.OWN_PHONE in message and demo.EMAIL in message and demo.NAME in message
    gift = by_id(records)[("ps_orders", "8")].fields["gift_message"]
    assert gift == "Joyeux anniversaire [name] ! Je t'embrasse, Camille"
    listed = {(r["entity"], r["record_id"], r["field"], r["kind"]): r["count"] for r in redactions}
    assert listed == {("ps_customer_message", "900", "message", "email"): 1,
                      ("ps_customer_message", "900", "message", "phone"): 1,
                      ("ps_customer_message", "900", "message", "name"): 1,
                      ("ps_orders", "8", "gift_message", "name"): 1}


def test_originals_are_untouched_and_structured_fields_kept(redactor, case):
    originals = demo.records()
    records, _ = redactor.redact(case, originals)
    assert "Julie Bernard" in by_id(originals)[("ps_customer_message", "900")].fields["message"]
    address = by_id(records)[("ps_address", "102")].fields
    assert (address["firstname"], address["lastname"]) == ("Julie", "Bernard")  # the subject entered it


def test_listing_never_carries_the_redacted_values(drafted_fr):
    listing = json.dumps(drafted_fr.draft["redactions"])
    for value in (demo.OTHER_EMAIL, demo.OTHER_PHONE, "Julie", "Bernard"):
        assert value not in listing
    assert {r["kind"] for r in drafted_fr.draft["redactions"]} == {"email", "phone", "name"}
    exported = drafted_fr.file("json").decode() + drafted_fr.file("html").decode()
    assert demo.OTHER_EMAIL not in exported and demo.OTHER_PHONE not in exported
    assert "[adresse e-mail masquée]" in exported and "[nom masqué]" in exported


def test_third_party_fields_and_nested_values(redactor, case):
    record = demo._record("gift_cards", "g1", {
        "gift_recipient_email": "someone.else@example.net", "recipient_email": demo.EMAIL,
        "notes": [{"note": "Call Paul Durand on +44 20 7946 0958"}], "gift_recipient_name": "Paul Durand"})
    [out], redactions = redactor.redact(case, [record])
    assert out.fields["gift_recipient_email"] == "[third party]"
    assert out.fields["recipient_email"] == demo.EMAIL  # the subject's own
    assert out.fields["notes"][0]["note"] == "Call [name] on [phone]"
    assert {(r["field"], r["kind"]) for r in redactions} == {
        ("gift_recipient_email", "third_party"), ("gift_recipient_name", "third_party"),
        ("notes[0].note", "name"), ("notes[0].note", "phone")}


def test_dates_amounts_and_references_are_not_phone_numbers(redactor, case):
    record = demo._record("ps_customer_message", "3", {
        "message": "Commande du 2024-01-15 10:22, total 129.90 EUR, colis 1Z999AA10123456784"})
    [out], redactions = redactor.redact(case, [record])
    assert out.fields == record.fields and redactions == []


def test_custom_patterns_from_the_rules_file(tmp_path, case):
    rules = tmp_path / "rules.yaml"
    rules.write_text("free_text_fields: [message]\npatterns:\n  iban: 'FR\\d{2}(?: ?\\d{4}){5} ?\\d{3}'\n")
    redactor = Redactor(load_rules(str(rules)), MARKERS)
    record = demo._record("ps_customer_message", "4", {"message": "IBAN FR76 3000 6000 0112 3456 7890 189 merci"})
    [out], redactions = redactor.redact(case, [record])
    assert out.fields["message"] == "IBAN [removed] merci" and redactions[0]["kind"] == "iban"


@pytest.mark.parametrize("content, fragment", [
    ("patterns:\n  email: '(['\n", "patterns.email"),
    ("person_names:\n  - {first: firstname}\n", "person_names"),
    (": : :\n", "not valid YAML"),
])
def test_broken_rules_name_the_problem(tmp_path, content, fragment):
    rules = tmp_path / "rules.yaml"
    rules.write_text(content)
    with pytest.raises(Misconfigured, match="redaction_rules") as error:
        load_rules(str(rules))
    assert fragment in str(error.value)


def test_missing_rules_file_stops_the_start(tmp_path):
    with pytest.raises(Misconfigured, match="not found"):
        make_service(tmp_path, drafting={"redaction_rules": str(tmp_path / "nope.yaml")})
