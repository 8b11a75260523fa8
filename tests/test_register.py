"""The Art. 30 register: shipped files, per-language texts, overrides, and errors that say what to fix."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.register import RegisterError, load_register
from integrations.sources.sql_mapping import build_mapping

REPO = Path(__file__).resolve().parents[1]
COMPLETE = {"category": "orders", "purposes": ["Selling"], "legal_basis": "contract", "recipients": ["Staff"],
            "retention": "3 years", "origin": "subject"}


def write(tmp_path: Path, sources: dict, **top) -> Path:
    path = tmp_path / "register.yaml"
    path.write_text(yaml.safe_dump({"categories": {"orders": {"en": "Orders", "fr": "Commandes"}},
                                    "sources": sources, **top}, allow_unicode=True), encoding="utf-8")
    return path


def test_the_shipped_register_describes_every_entity_of_the_shipped_presets(tmp_path):
    for preset in ("prestashop", "woocommerce", "generic"):
        path = write(tmp_path, {"db": {"include": str(REPO / "config" / "register" / f"{preset}.yaml")}})
        register = load_register(path)
        entities = [n for n, e in build_mapping(preset).entities.items() if e.records]
        assert register.coverage_problems({"db": entities}) == [], preset
    demo = load_register(REPO / "config" / "register.yaml")
    assert demo.sources == ["consent", "events", "loyalty", "shop"]


def test_describe_picks_the_language_and_applies_overrides():
    register = load_register(REPO / "config" / "register.yaml")
    order = register.describe("shop", "ps_orders", language="fr")
    assert order.category_code == "orders" and order.category == "Commandes et historique d'achats"
    assert "10 ans" in order.retention and order.legal_basis == "contract"
    assert "La Poste (Colissimo)" in " ".join(order.recipients)
    invoice = register.describe("shop", "ps_order_invoice", language="en")
    assert invoice.legal_basis == "legal_obligation" and "L123-22" in invoice.legal_basis_note
    newsletter = register.describe("shop", "ps_customer", "newsletter", language="en")
    assert (newsletter.legal_basis, newsletter.category_code) == ("consent", "marketing")
    assert register.describe("shop", "ps_customer", "lastname").category_code == "identity"  # entity level
    tracking = register.describe("shop", "ps_order_carrier", "tracking_number", language="fr")
    assert tracking.origin == "third_party" and "transporteur" in tracking.origin_source
    payment = register.describe("shop", "ps_order_payment", language="en")
    assert payment.transfers[0]["country"] == "United States" and "46(2)(c)" in payment.transfers[0]["safeguard"]
    assert "Stripe Radar" in payment.automated_decision["logic"]
    assert register.describe("shop", "ps_orders", language="de").retention.startswith("10 years")  # falls back
    assert register.describe("events", "events").portable and not register.describe("shop", "ps_order_invoice").portable


@pytest.mark.parametrize("change, words", [
    ({"retention": None}, ["register.yaml", "'shop'", "'orders'", "'retention'", "defaults"]),
    ({"legal_basis": "because"}, ["'orders'", "legal_basis", "Art. 6(1)"]),
    ({"legal_basis": "legitimate_interests"}, ["legal_basis_note", "13(1)(d)"]),
    ({"origin": "third_party"}, ["origin_source", "14(2)(f)"]),
    ({"category": "shoes"}, ["category 'shoes'", "categories:"]),
    ({"retension": "3 years"}, ["unknown key 'retension'"]),
    ({"transfers": [{"country": "US"}]}, ["transfers[0]", "safeguard", "Art. 46"]),
    ({"automated_decision": {"logic": "score"}}, ["automated_decision", "significance"]),
    ({"retention": {"fr": ""}}, ["retention", "per language"]),
])
def test_errors_name_the_file_source_entity_and_key(tmp_path, change, words):
    entity = {k: v for k, v in {**COMPLETE, **change}.items() if v is not None}
    with pytest.raises(RegisterError) as caught:
        load_register(write(tmp_path, {"shop": {"entities": {"orders": entity}}}))
    for word in words:
        assert word in str(caught.value)


def test_source_defaults_and_field_overrides(tmp_path):
    register = load_register(write(tmp_path, {"shop": {
        "defaults": COMPLETE,
        "entities": {"customers": {"fields": {"newsletter": {"legal_basis": "consent",
                                                             "retention": {"fr": "3 ans", "en": "3 years"}}}}}}}))
    assert register.describe("shop", "anything").legal_basis == "contract"
    assert register.describe("shop", "customers", "newsletter", language="fr").retention == "3 ans"
    assert register.coverage_problems({"shop": ["x"], "crm": ["contacts"]}) == [
        f"{tmp_path / 'register.yaml'}: source 'crm' is configured in [playbooks] sources but the register does "
        "not describe it; add sources: crm: with its defaults"]


def test_an_undescribed_entity_is_a_coverage_problem(tmp_path):
    register = load_register(write(tmp_path, {"shop": {"defaults": {"category": "orders"},
                                                       "entities": {"orders": COMPLETE}}}))
    assert register.coverage_problems({"shop": ["orders"]}) == []
    problem = register.coverage_problems({"shop": ["orders", "carts"]})[0]
    assert "entity 'carts'" in problem and "'purposes'" in problem
    with pytest.raises(RegisterError):
        register.describe("shop", "carts")
