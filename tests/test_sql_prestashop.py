"""The `prestashop` SQL preset against the real PrestaShop 8.1 schema on the MariaDB server of this machine."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from integrations.base import IntegrationError, SubjectQuery
from integrations.sources import SourceContext, build_source
from integrations.sources.masking import HASH_WITHHELD, SECRET_WITHHELD
from tests.dbs import ins, mariadb_database, run_sql, shop_schemas

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
JEAN = "jean.dupont@example.fr"
OTHER = "jdupont@example.com"  # another Jean Dupont, same phone: must never show up
PHONE = "06 12 34 56 78"


def seed_rows() -> list[tuple[str, dict]]:
    d = "2024-01-15 10:00:00"
    rows = [
        ins("ps_customer", id_customer=1, id_gender=1, firstname="Jean", lastname="Dupont", email=JEAN,
            passwd="$2y$10$abcdefghijklmnopqrstuv", secure_key="0123456789abcdef0123456789abcdef",
            reset_password_token="resettoken123", newsletter=1, ip_registration_newsletter="203.0.113.5",
            date_add=d, date_upd=d),
        # A guest checkout with the same address, written in capitals: a second row to collect.
        ins("ps_customer", id_customer=2, id_gender=1, firstname="Jean", lastname="Dupont", email=JEAN.upper(),
            passwd="", is_guest=1, date_add=d, date_upd=d),
        ins("ps_customer", id_customer=3, id_gender=1, firstname="Jean", lastname="Dupont", email=OTHER,
            passwd="$2y$10$zyxwvutsrqponmlkjihgfe", date_add=d, date_upd=d),
        ins("ps_customer_group", id_customer=1, id_group=3), ins("ps_customer_group", id_customer=3, id_group=3),
        ins("ps_customer_session", id_customer_session=1, id_customer=1, token="sesstoken1", date_add=d, date_upd=d),
        ins("ps_customer_session", id_customer_session=2, id_customer=3, token="sesstoken3", date_add=d, date_upd=d),
        ins("ps_address", id_address=1, id_country=8, id_customer=1, alias="Maison", lastname="Dupont",
            firstname="Jean", address1="1 rue de la Paix", city="Paris", phone=PHONE, date_add=d, date_upd=d),
        ins("ps_address", id_address=2, id_country=8, id_customer=2, alias="Invité", lastname="Dupont",
            firstname="Jean", address1="1 rue de la Paix", city="Paris", phone=PHONE, date_add=d, date_upd=d),
        ins("ps_address", id_address=3, id_country=8, id_customer=3, alias="Maison", lastname="Dupont",
            firstname="Jean", address1="1 rue de la Paix", city="Paris", phone=PHONE, date_add=d, date_upd=d),
    ]
    for oid, cid, ref, cart, guest in ((10, 1, "AAAAAAAAA", 100, 500), (11, 2, "BBBBBBBBB", 101, 501),
                                       (12, 3, "CCCCCCCCC", 102, 502)):
        rows += [
            ins("ps_orders", id_order=oid, reference=ref, id_carrier=1, id_lang=1, id_customer=cid, id_cart=cart,
                id_currency=1, id_address_delivery=cid, id_address_invoice=cid, current_state=5,
                secure_key="orderkey" + str(oid), payment="Carte", date_add=d, date_upd=d),
            ins("ps_order_detail", id_order_detail=oid * 100, id_order=oid, id_shop=1, product_id=7,
                product_name=f"Produit {oid}", download_hash="dlhash" + str(oid)),
            ins("ps_order_history", id_order_history=oid * 10, id_employee=0, id_order=oid, id_order_state=5,
                date_add=d),
            ins("ps_order_carrier", id_order_carrier=oid, id_order=oid, id_carrier=1,
                tracking_number=f"6A{oid}000", date_add=d),
            ins("ps_order_cart_rule", id_order_cart_rule=oid, id_order=oid, id_cart_rule=1, name="BIENVENUE"),
            ins("ps_order_payment", id_order_payment=oid, order_reference=ref, id_currency=1, amount=10,
                payment_method="Carte", card_number="4242 4242 4242 4242", card_holder="J DUPONT", date_add=d),
            ins("ps_cart", id_cart=cart, id_carrier=1, id_lang=1, id_address_delivery=cid, id_address_invoice=cid,
                id_currency=1, id_customer=cid, id_guest=guest, secure_key="cartkey", date_add=d, date_upd=d),
            ins("ps_cart_product", id_cart=cart, id_product=7, quantity=1, date_add=d),
            ins("ps_guest", id_guest=guest, id_customer=cid, accept_language="fr"),
            ins("ps_message", id_message=oid, id_customer=cid, id_order=oid, message=f"Message {oid}", date_add=d),
        ]
    rows += [
        ins("ps_order_invoice", id_order_invoice=1, id_order=10, number=1, delivery_number=0, total_paid_tax_incl=10,
            shipping_tax_computation_method=0, date_add=d),
        ins("ps_order_invoice_payment", id_order_invoice=1, id_order_payment=10, id_order=10),
        ins("ps_order_return", id_order_return=1, id_customer=1, id_order=10, question="Trop petit", date_add=d,
            date_upd=d),
        ins("ps_order_return_detail", id_order_return=1, id_order_detail=1000, product_quantity=1),
        ins("ps_order_slip", id_order_slip=1, id_customer=1, id_order=10, partial=0, date_add=d, date_upd=d),
        ins("ps_order_slip_detail", id_order_slip=1, id_order_detail=1000, product_quantity=1),
        # An abandoned cart of Jean's, with an engraving typed on the product.
        ins("ps_cart", id_cart=103, id_carrier=1, id_lang=1, id_address_delivery=1, id_address_invoice=1,
            id_currency=1, id_customer=1, id_guest=500, date_add=d, date_upd=d),
        ins("ps_customization", id_customization=70, id_cart=103, id_product=7, quantity=1),
        ins("ps_customized_data", id_customization=70, type=1, index=1, value="Pour Marie, avec amour"),
        # Customer service: a thread of the account, a guest's contact-form thread (e-mail only), Jean #2's.
        ins("ps_customer_thread", id_customer_thread=40, id_lang=1, id_contact=1, id_customer=1, email=JEAN,
            token="thrtoken40", date_add=d, date_upd=d),
        ins("ps_customer_thread", id_customer_thread=41, id_lang=1, id_contact=1, id_customer=None, email=JEAN,
            token="thrtoken41", date_add=d, date_upd=d),
        ins("ps_customer_thread", id_customer_thread=42, id_lang=1, id_contact=1, id_customer=3, email=OTHER,
            token="thrtoken42", date_add=d, date_upd=d),
        ins("ps_customer_message", id_customer_message=1, id_customer_thread=40, message="Où est mon colis ?",
            ip_address="203.0.113.5", date_add=d, date_upd=d),
        ins("ps_customer_message", id_customer_message=2, id_customer_thread=41,
            message="Ma carte 4111 1111 1111 1111 a été débitée deux fois", date_add=d, date_upd=d),
        ins("ps_customer_message", id_customer_message=3, id_customer_thread=42, message="Autre Jean", date_add=d,
            date_upd=d),
        ins("ps_guest", id_guest=503, id_customer=0, accept_language="en"),  # an anonymous visitor
        ins("ps_connections", id_connections=600, id_guest=500, id_page=1, ip_address=3405803781, date_add=d,
            http_referer="https://www.qwant.com/"),
        ins("ps_connections", id_connections=601, id_guest=502, id_page=1, ip_address=3405803782, date_add=d),
        ins("ps_connections", id_connections=602, id_guest=503, id_page=1, ip_address=3405803783, date_add=d),
        ins("ps_connections_source", id_connections_source=700, id_connections=600, http_referer="https://qwant.com",
            request_uri="/theieres", keywords="théière fonte", date_add=d),
        ins("ps_connections_page", id_connections=600, id_page=3, time_start=d),
        ins("ps_cart_rule", id_cart_rule=1, id_customer=1, date_from=d, date_to=d, code="JEAN10",
            description="Geste commercial"),
        ins("ps_mail", id_mail=1, recipient=JEAN, template="order_conf", subject="Commande AAAAAAAAA", id_lang=1),
        ins("ps_mail", id_mail=2, recipient=OTHER, template="order_conf", subject="Commande CCCCCCCCC", id_lang=1),
    ]
    return rows


@pytest.fixture(scope="module")
def shop_url():
    with mariadb_database(*shop_schemas()) as url:
        run_sql(url, seed_rows())
        yield url


@pytest.fixture(scope="module")
def source(shop_url):
    return build_source({"name": "shop", "type": "sql", "url": shop_url, "preset": "prestashop"},
                        SourceContext(now=lambda: NOW))


def by_entity(result) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for record in result.records:
        out.setdefault(record.entity, set()).add(record.record_id)
    return out


def test_check_passes_on_the_real_schema(source):
    assert source.check() is None


def test_finds_exactly_the_subjects_rows_from_the_email(source):
    result = source.find(SubjectQuery(emails=[JEAN]))
    assert by_entity(result) == {
        "ps_customer": {"1", "2"},  # the account and the guest row
        "ps_customer_group": {"1:3"},
        "ps_customer_session": {"1"},
        "ps_address": {"1", "2"},
        "ps_orders": {"10", "11"},
        "ps_order_detail": {"1000", "1100"},
        "ps_order_history": {"100", "110"},
        "ps_order_carrier": {"10", "11"},
        "ps_order_cart_rule": {"10", "11"},
        "ps_order_invoice": {"1"},
        "ps_order_invoice_payment": {"1:10"},
        "ps_order_payment": {"10", "11"},
        "ps_order_return": {"1"},
        "ps_order_return_detail": {"1:1000:0"},
        "ps_order_slip": {"1"},
        "ps_order_slip_detail": {"1:1000"},
        "ps_cart": {"100", "101", "103"},
        "ps_cart_product": {"100:7:0:0:0", "101:7:0:0:0"},
        "ps_customization": {"70:103:7:0"},
        "ps_customized_data": {"70:1:1"},
        "ps_message": {"10", "11"},
        "ps_customer_thread": {"40", "41"},  # 41 has no customer id: found by e-mail
        "ps_customer_message": {"1", "2"},
        "ps_guest": {"500", "501"},
        "ps_connections": {"600"},
        "ps_connections_source": {"700"},
        "ps_connections_page": {"600:3:2024-01-15 10:00:00"},
        "ps_cart_rule": {"1"},
        "ps_mail": {"1"},
    }
    assert result.discovered == {"customer_id": ["1", "2"], "order_reference": ["AAAAAAAAA", "BBBBBBBBB"],
                                 "guest_id": ["500", "501"]}


def test_the_other_customer_with_the_same_name_and_phone_never_appears(source):
    result = source.find(SubjectQuery(emails=[JEAN]))
    text = repr([r.fields for r in result.records])
    assert OTHER not in text and "CCCCCCCCC" not in text and "Autre Jean" not in text
    assert not any(r.entity == "ps_address" and r.record_id == "3" for r in result.records)
    other = source.find(SubjectQuery(emails=[OTHER]))
    assert {r.record_id for r in other.records if r.entity == "ps_customer"} == {"3"}
    assert JEAN not in repr([r.fields for r in other.records]).lower()


def test_secrets_are_withheld_and_cards_cut_to_the_last_four_digits(source):
    records = {(r.entity, r.record_id): r for r in source.find(SubjectQuery(emails=[JEAN])).records}
    customer = records[("ps_customer", "1")].fields
    assert customer["passwd"] == HASH_WITHHELD
    assert customer["secure_key"] == SECRET_WITHHELD and customer["reset_password_token"] == SECRET_WITHHELD
    assert records[("ps_customer", "2")].fields["passwd"] == ""  # a guest has no password: nothing to withhold
    assert records[("ps_order_payment", "10")].fields["card_number"] == "**** 4242"
    assert records[("ps_order_detail", "1000")].fields["download_hash"] == SECRET_WITHHELD
    assert records[("ps_customer_thread", "40")].fields["token"] == SECRET_WITHHELD
    assert records[("ps_customer_session", "1")].fields["token"] == SECRET_WITHHELD
    assert records[("ps_customer_message", "2")].fields["message"] == "Ma carte **** 1111 a été débitée deux fois"
    assert records[("ps_connections", "600")].fields["ip_address"] == "203.0.113.5"  # ip2long shown as an address
    assert records[("ps_customized_data", "70:1:1")].fields["value"] == "Pour Marie, avec amour"


def test_provenance_says_what_matched(source):
    records = {(r.entity, r.record_id): r for r in source.find(SubjectQuery(emails=[JEAN])).records}
    assert records[("ps_customer", "2")].matched_on == ["email"]
    assert records[("ps_orders", "11")].matched_on == ["customer_id via ps_customer"]
    assert records[("ps_customer_thread", "40")].matched_on == ["customer_id via ps_customer", "email"]
    assert records[("ps_customer_thread", "41")].matched_on == ["email"]
    assert records[("ps_order_payment", "10")].matched_on == ["order_reference via ps_orders"]
    assert all(r.fetched_at == NOW.isoformat() and r.source == "shop" and r.system == "PrestaShop"
               for r in records.values())


def test_a_verified_order_reference_finds_that_order_only(source):
    result = source.find(SubjectQuery(emails=[], identifiers={"order_reference": ["BBBBBBBBB"]}))
    found = by_entity(result)
    assert found["ps_orders"] == {"11"} and found["ps_order_payment"] == {"11"}
    assert "ps_customer" not in found  # an order reference does not open the whole account


def test_contacts_on_file_from_an_order_reference_or_an_email(source):
    assert [(c.email, c.matched_on) for c in source.contacts({"order_reference": ["AAAAAAAAA"]})] == \
        [(JEAN, "order_reference")]
    assert [(c.email, c.matched_on) for c in source.contacts({"email": ["Jean.Dupont@Example.fr"]})] == \
        [(JEAN, "email")]
    assert source.contacts({"email": ["nobody@example.fr"]}) == []


def test_a_wrong_prefix_is_reported_by_the_check(shop_url):
    wrong = build_source({"name": "shop", "type": "sql", "url": shop_url, "preset": "prestashop",
                          "prefix": "shop_"}, SourceContext(now=lambda: NOW))
    problem = wrong.check()
    assert problem and "shop_customer" in problem and "prefix" in problem


def test_the_session_is_read_only(source):
    from sqlalchemy import text

    with pytest.raises(IntegrationError), source._connect() as conn:
        conn.execute(text("DELETE FROM ps_mail"))
    with source._connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM ps_mail")).scalar() == 2
