"""The `woocommerce` SQL preset against the real WordPress + WooCommerce schema on the MariaDB server."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from integrations.base import SubjectQuery
from integrations.sources import SourceContext, build_source
from integrations.sources.masking import HASH_WITHHELD, SECRET_WITHHELD
from tests.dbs import ins, mariadb_database, run_sql, shop_schemas
from tests.test_sql_prestashop import by_entity

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
ALICE = "alice@example.fr"
OTHER = "alice.martin@example.com"  # another Alice Martin with the same phone
PHONE = "0611223344"


def seed_rows() -> list[tuple[str, dict]]:
    d = "2024-02-01 09:00:00"
    rows = [
        ins("wp_users", ID=1, user_login="alice", user_pass="$P$Bsecret.hash", user_email=ALICE,
            user_activation_key="1700000000:$P$activation", user_registered=d, display_name="Alice Martin"),
        ins("wp_users", ID=2, user_login="amartin", user_pass="$P$Bother.hash", user_email=OTHER,
            user_registered=d, display_name="Alice Martin"),
    ]
    for meta_id, user, key, value in ((1, 1, "first_name", "Alice"), (2, 1, "billing_phone", PHONE),
                                      (3, 1, "session_tokens", 'a:1:{s:64:"abc";}'), (4, 2, "first_name", "Alice"),
                                      (5, 2, "billing_phone", PHONE)):
        rows.append(ins("wp_usermeta", umeta_id=meta_id, user_id=user, meta_key=key, meta_value=value))
    rows += [
        ins("wp_wc_customer_lookup", customer_id=10, user_id=1, username="alice", first_name="Alice",
            last_name="Martin", email=ALICE, billing_phone=PHONE),
        ins("wp_wc_customer_lookup", customer_id=11, user_id=None, first_name="Alice", last_name="Martin",
            email=ALICE, billing_phone=PHONE),  # her guest checkouts
        ins("wp_wc_customer_lookup", customer_id=12, user_id=2, username="amartin", first_name="Alice",
            last_name="Martin", email=OTHER, billing_phone=PHONE),
    ]
    # HPOS orders: by account, a guest order (e-mail in capitals), the other Alice's, and a refund.
    for oid, customer, email, kind, parent in ((100, 1, ALICE, "shop_order", 0),
                                               (101, 0, ALICE.upper(), "shop_order", 0),
                                               (102, 2, OTHER, "shop_order", 0),
                                               (103, 1, ALICE, "shop_order_refund", 100)):
        rows.append(ins("wp_wc_orders", id=oid, status="wc-completed", type=kind, customer_id=customer,
                        billing_email=email, parent_order_id=parent, ip_address="198.51.100.3",
                        user_agent="Firefox", customer_note="Sonner deux fois", date_created_gmt=d))
    rows += [
        ins("wp_wc_order_addresses", id=1, order_id=100, address_type="billing", first_name="Alice",
            last_name="Martin", email=ALICE, phone=PHONE),
        ins("wp_wc_order_addresses", id=2, order_id=100, address_type="shipping", first_name="Alice",
            last_name="Martin", phone=PHONE),
        ins("wp_wc_order_addresses", id=3, order_id=102, address_type="billing", first_name="Alice",
            last_name="Martin", email=OTHER, phone=PHONE),
        ins("wp_wc_order_operational_data", id=1, order_id=100, order_key="wc_order_SeCrEt", cart_hash="abc"),
        ins("wp_wc_order_operational_data", id=2, order_id=102, order_key="wc_order_0ther"),
        ins("wp_wc_orders_meta", id=1, order_id=100, meta_key="_wc_order_attribution_source_type",
            meta_value="organic"),
        ins("wp_wc_orders_meta", id=2, order_id=102, meta_key="_wc_order_attribution_source_type",
            meta_value="direct"),
        # Legacy (posts) orders: one by billing e-mail, one by account with another billing e-mail, a refund,
        # the other Alice's.
        ins("wp_posts", ID=200, post_type="shop_order", post_status="wc-completed", post_excerpt="Note client",
            post_date=d),
        ins("wp_posts", ID=201, post_type="shop_order_refund", post_parent=200, post_status="wc-completed",
            post_date=d),
        ins("wp_posts", ID=202, post_type="shop_order", post_status="wc-completed", post_date=d),
        ins("wp_posts", ID=203, post_type="shop_order", post_status="wc-completed", post_date=d),
        ins("wp_posts", ID=204, post_type="product", post_title="Théière", post_date=d),
    ]
    for meta_id, post, key, value in ((1, 200, "_billing_email", ALICE), (2, 200, "_order_key", "wc_order_legacy"),
                                      (3, 200, "_billing_phone", PHONE), (4, 202, "_customer_user", "2"),
                                      (5, 202, "_billing_email", OTHER), (6, 203, "_customer_user", "1"),
                                      (7, 203, "_billing_email", "alice.work@example.fr"),
                                      (8, 201, "_refund_amount", "5.00"), (9, 204, "_billing_email", ALICE)):
        rows.append(ins("wp_postmeta", meta_id=meta_id, post_id=post, meta_key=key, meta_value=value))
    for item, order in ((300, 100), (301, 101), (302, 102), (303, 200), (304, 203), (305, 103), (306, 201)):
        rows.append(ins("wp_woocommerce_order_items", order_item_id=item, order_item_name=f"Article {item}",
                        order_item_type="line_item", order_id=order))
    rows += [
        ins("wp_woocommerce_order_itemmeta", meta_id=1, order_item_id=300, meta_key="_qty", meta_value="2"),
        ins("wp_woocommerce_order_itemmeta", meta_id=2, order_item_id=302, meta_key="_qty", meta_value="1"),
        ins("wp_wc_order_stats", order_id=100, customer_id=10, status="wc-completed", date_created=d),
        ins("wp_wc_order_stats", order_id=101, customer_id=11, status="wc-completed", date_created=d),
        ins("wp_wc_order_stats", order_id=102, customer_id=12, status="wc-completed", date_created=d),
        ins("wp_wc_order_product_lookup", order_item_id=300, order_id=100, product_id=204, variation_id=0,
            customer_id=10, product_qty=2),
        ins("wp_wc_order_product_lookup", order_item_id=302, order_id=102, product_id=204, variation_id=0,
            customer_id=12, product_qty=1),
        ins("wp_wc_order_coupon_lookup", order_id=100, coupon_id=5, discount_amount=3),
        ins("wp_comments", comment_ID=400, comment_post_ID=204, comment_author="Alice", comment_author_email=ALICE,
            comment_author_IP="198.51.100.3", comment_content="Très belle théière", comment_type="review",
            user_id=1, comment_date=d),
        ins("wp_comments", comment_ID=401, comment_post_ID=204, comment_author="Alice M.",
            comment_author_email=OTHER, comment_content="Bof", comment_type="review", user_id=2, comment_date=d),
        ins("wp_comments", comment_ID=402, comment_post_ID=100, comment_author="WooCommerce",
            comment_content="Commande expédiée", comment_type="order_note", comment_date=d),
        ins("wp_comments", comment_ID=403, comment_post_ID=102, comment_author="WooCommerce",
            comment_content="Paiement reçu", comment_type="order_note", comment_date=d),
        ins("wp_commentmeta", meta_id=1, comment_id=400, meta_key="rating", meta_value="5"),
        ins("wp_commentmeta", meta_id=2, comment_id=401, meta_key="rating", meta_value="2"),
        ins("wp_woocommerce_sessions", session_id=1, session_key="1", session_value='a:1:{s:4:"cart";}',
            session_expiry=1900000000),
        ins("wp_woocommerce_sessions", session_id=2, session_key="2", session_value="a:0:{}",
            session_expiry=1900000000),
        ins("wp_woocommerce_downloadable_product_permissions", permission_id=500, download_id="d1", product_id=204,
            order_id=100, order_key="wc_order_SeCrEt", user_email=ALICE, user_id=1, access_granted=d),
        ins("wp_woocommerce_downloadable_product_permissions", permission_id=501, download_id="d1", product_id=204,
            order_id=102, order_key="wc_order_0ther", user_email=OTHER, user_id=2, access_granted=d),
        ins("wp_wc_download_log", download_log_id=1, timestamp=d, permission_id=500, user_id=1,
            user_ip_address="198.51.100.3"),
        ins("wp_wc_download_log", download_log_id=2, timestamp=d, permission_id=501, user_id=2,
            user_ip_address="198.51.100.9"),
        ins("wp_woocommerce_payment_tokens", token_id=600, gateway_id="stripe", token="pm_SECRET", user_id=1,
            type="CC"),
        ins("wp_woocommerce_payment_tokens", token_id=601, gateway_id="stripe", token="pm_OTHER", user_id=2,
            type="CC"),
        ins("wp_woocommerce_payment_tokenmeta", meta_id=1, payment_token_id=600, meta_key="last4", meta_value="4242"),
        ins("wp_woocommerce_payment_tokenmeta", meta_id=2, payment_token_id=601, meta_key="last4", meta_value="1881"),
        ins("wp_wc_stock_notifications", id=700, product_id=204, user_id=0, user_email=ALICE,
            date_created_gmt=d),
        ins("wp_wc_stock_notifications", id=701, product_id=204, user_id=2, user_email=OTHER, date_created_gmt=d),
        ins("wp_wc_stock_notificationmeta", id=1, notification_id=700, meta_key="_source", meta_value="product"),
    ]
    return rows


@pytest.fixture(scope="module")
def source():
    with mariadb_database(*shop_schemas()) as url:
        run_sql(url, seed_rows())
        yield build_source({"name": "woo", "type": "sql", "url": url, "preset": "woocommerce"},
                           SourceContext(now=lambda: NOW))


def test_check_passes_on_the_real_schema(source):
    assert source.check() is None


def test_finds_exactly_the_subjects_rows_in_both_order_storages(source):
    result = source.find(SubjectQuery(emails=[ALICE]))
    assert by_entity(result) == {
        "wp_users": {"1"},
        "wp_usermeta": {"1", "2", "3"},
        "wp_wc_customer_lookup": {"10", "11"},
        "wp_wc_orders": {"100", "101"},
        "refunds": {"103"},
        "wp_wc_order_addresses": {"1", "2"},
        "wp_wc_order_operational_data": {"1"},
        "wp_wc_orders_meta": {"1"},
        "legacy_orders": {"200", "203"},  # 203: found by the account although billed to another address
        "legacy_refunds": {"201"},
        "legacy_order_meta": {"1", "2", "3", "6", "7", "8"},
        "wp_woocommerce_order_items": {"300", "301", "303", "304", "305", "306"},
        "wp_woocommerce_order_itemmeta": {"1"},
        "wp_wc_order_stats": {"100", "101"},
        "wp_wc_order_product_lookup": {"300:100"},
        "wp_wc_order_coupon_lookup": {"100:5"},
        "reviews": {"400"},
        "review_ratings": {"1"},
        "order_notes": {"402"},
        "wp_woocommerce_sessions": {"1"},
        "wp_woocommerce_downloadable_product_permissions": {"500"},
        "wp_wc_download_log": {"1"},
        "wp_woocommerce_payment_tokens": {"600"},
        "wp_woocommerce_payment_tokenmeta": {"1"},
        "wp_wc_stock_notifications": {"700"},
        "wp_wc_stock_notificationmeta": {"1"},
    }
    assert "legacy_order_lookup" not in by_entity(result)  # a lookup only, not records
    assert result.discovered["wp_user_id"] == ["1"]
    assert set(result.discovered["order_id"]) == {"100", "101", "200", "203"}


def test_the_other_alice_with_the_same_name_and_phone_never_appears(source):
    text = repr([r.fields for r in source.find(SubjectQuery(emails=[ALICE])).records])
    for value in (OTHER, "wc_order_0ther", "pm_OTHER", "1881", "Bof", "Paiement reçu"):
        assert value not in text


def test_secrets_are_withheld(source):
    records = {(r.entity, r.record_id): r.fields for r in source.find(SubjectQuery(emails=[ALICE])).records}
    assert records[("wp_users", "1")]["user_pass"] == HASH_WITHHELD
    assert records[("wp_users", "1")]["user_activation_key"] == SECRET_WITHHELD
    assert records[("wp_usermeta", "3")]["meta_value"] == SECRET_WITHHELD  # session_tokens
    assert records[("wp_usermeta", "2")]["meta_value"] == PHONE
    assert records[("legacy_order_meta", "2")]["meta_value"] == SECRET_WITHHELD  # _order_key
    assert records[("wp_wc_order_operational_data", "1")]["order_key"] == SECRET_WITHHELD
    assert records[("wp_woocommerce_payment_tokens", "600")]["token"] == SECRET_WITHHELD
    assert records[("wp_woocommerce_payment_tokenmeta", "1")]["meta_value"] == "4242"
    assert records[("wp_woocommerce_downloadable_product_permissions", "500")]["order_key"] == SECRET_WITHHELD
    assert "wc_order_SeCrEt" not in repr(records) and "pm_SECRET" not in repr(records)


def test_contacts_on_file(source):
    assert {(c.email, c.matched_on) for c in source.contacts({"order_id": ["101"]})} == {(ALICE, "order_id")}
    assert {c.email for c in source.contacts({"email": [ALICE.upper()]})} == {ALICE}
