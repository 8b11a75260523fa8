"""The SaaS sources (Shopify, WooCommerce REST, Stripe, Brevo, Mailchimp) against local fakes.

Each fake speaks the documented API shapes and fails the test on any request it does not expect.
Sleeps are injected (a 429's Retry-After is recorded, never waited for) and the clock is fixed.
"""
from __future__ import annotations

import importlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import pytest

from integrations.base import Source, SubjectQuery
from integrations.sources import SOURCE_TYPES
from tests.fakes import brevo, mailchimp, shopify, stripe, woocommerce
from tests.fakes.http_fake import FakeApi, closed_port_url
from tests.fakes.people import NAMESAKE, STRANGER, SUBJECT

NOW = datetime(2024, 6, 3, 12, 0, tzinfo=timezone.utc)
CATEGORIES = {"identity", "contact", "orders", "payment", "marketing", "consent"}


@dataclass
class System:
    kind: str
    fake: Callable[[], FakeApi]
    credentials: dict[str, Any]
    wrong_credentials: dict[str, Any]
    first_path: str  # a regex of the first request `find` sends (where faults are injected)
    system: str


SYSTEMS = {
    "shopify": System("shopify", shopify.FakeShopify, {"access_token": shopify.TOKEN, "api_version": shopify.VERSION},
                      {"access_token": "shpat_wrong", "api_version": shopify.VERSION}, r".*/customers/search\.json",
                      "Shopify"),
    "woocommerce_rest": System("woocommerce_rest", woocommerce.FakeWooCommerce,
                               {"consumer_key": woocommerce.KEY, "consumer_secret": woocommerce.SECRET},
                               {"consumer_key": woocommerce.KEY, "consumer_secret": "cs_wrong"},
                               r".*/wc/v3/customers", "WooCommerce"),
    "stripe": System("stripe", stripe.FakeStripe, {"secret_key": stripe.SECRET_KEY}, {"secret_key": "sk_test_wrong"},
                     r"/v1/customers", "Stripe"),
    "brevo": System("brevo", brevo.FakeBrevo, {"api_key": brevo.API_KEY}, {"api_key": "xkeysib-wrong"},
                    r"/v3/contacts/.*@.*", "Brevo"),
    "mailchimp": System("mailchimp", mailchimp.FakeMailchimp, {"api_key": mailchimp.API_KEY},
                        {"api_key": "wrong-us6"}, r"/3\.0/lists", "Mailchimp"),
}


class Sleeps(list):
    """Records the waits a source asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(kind: str, base_url: str, sleeps: Sleeps | None = None, environ: dict[str, str] | None = None,
         **settings: Any) -> Source:
    module = importlib.import_module(SOURCE_TYPES[kind])
    return module.build(f"{kind}_main", {"base_url": base_url, **settings}, None,
                        sleep=sleeps if sleeps is not None else Sleeps(), now=lambda: NOW, environ=environ or {})


@pytest.fixture(params=sorted(SYSTEMS))
def system(request: pytest.FixtureRequest) -> Iterator[tuple[System, FakeApi]]:
    spec = SYSTEMS[request.param]
    with spec.fake() as fake:
        yield spec, fake
    fake.assert_clean()


def fake_of(factory: Callable[[], FakeApi]) -> Iterator[FakeApi]:
    with factory() as fake:
        yield fake
    fake.assert_clean()


@pytest.fixture
def fake_shopify() -> Iterator[shopify.FakeShopify]:
    yield from fake_of(shopify.FakeShopify)  # type: ignore[misc]


@pytest.fixture
def fake_woo() -> Iterator[woocommerce.FakeWooCommerce]:
    yield from fake_of(woocommerce.FakeWooCommerce)  # type: ignore[misc]


@pytest.fixture
def fake_stripe() -> Iterator[stripe.FakeStripe]:
    yield from fake_of(stripe.FakeStripe)  # type: ignore[misc]


@pytest.fixture
def fake_brevo() -> Iterator[brevo.FakeBrevo]:
    yield from fake_of(brevo.FakeBrevo)  # type: ignore[misc]


@pytest.fixture
def fake_mailchimp() -> Iterator[mailchimp.FakeMailchimp]:
    yield from fake_of(mailchimp.FakeMailchimp)  # type: ignore[misc]


def dump(result: Any) -> str:
    return json.dumps([r.to_doc() for r in result.records], ensure_ascii=False)


def ids(result: Any, entity: str) -> set[str]:
    return {r.record_id for r in result.records if r.entity == entity}


SUBJECT_QUERY = SubjectQuery(emails=[SUBJECT], case_id="case-1")


# --- behaviour every source shares ----------------------------------------------------------------
def test_find_returns_the_subject_only_with_provenance(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    result = make(spec.kind, fake.url, **spec.credentials).find(SUBJECT_QUERY)
    assert result.error == ""
    assert result.records, "the subject is known to every fake"
    text = dump(result)
    assert NAMESAKE not in text.lower() and STRANGER not in text.lower()  # same name and phone, other person
    for record in result.records:
        assert record.source == f"{spec.kind}_main" and record.system == spec.system
        assert record.entity and record.record_id and record.matched_on
        assert record.fetched_at == NOW.isoformat()
        assert record.category in CATEGORIES
    assert result.discovered  # the system's own ids, for later playbook steps


def test_a_namesake_gets_only_her_own_records(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    result = make(spec.kind, fake.url, **spec.credentials).find(SubjectQuery(emails=[NAMESAKE]))
    assert result.error == "" and result.records
    assert SUBJECT not in dump(result).lower()


def test_unknown_person_yields_nothing_and_no_error(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    result = make(spec.kind, fake.url, **spec.credentials).find(SubjectQuery(emails=["nobody@example.net"]))
    assert (result.records, result.error) == ([], "")


def test_429_with_retry_after_is_honoured_then_succeeds(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    sleeps = Sleeps()
    fake.fail(2, 429, {"Retry-After": "3"}, path=spec.first_path)
    result = make(spec.kind, fake.url, sleeps, **spec.credentials).find(SUBJECT_QUERY)
    assert result.error == "" and result.records
    assert sleeps == [3.0, 3.0]


def test_429_that_persists_is_reported_after_bounded_retries(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    sleeps = Sleeps()
    fake.fail(100, 429, {"Retry-After": "1"}, path=spec.first_path)
    result = make(spec.kind, fake.url, sleeps, max_retries=2, **spec.credentials).find(SUBJECT_QUERY)
    assert result.error.startswith("not_ready: ") and "rate limited (HTTP 429) after 3 attempt(s)" in result.error
    assert sleeps == [1.0, 1.0]
    assert len(fake.calls("GET", spec.first_path)) == 3


def test_a_retry_after_longer_than_allowed_fails_at_once(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    sleeps = Sleeps()
    fake.fail(1, 429, {"Retry-After": "3600"}, path=spec.first_path)
    result = make(spec.kind, fake.url, sleeps, max_retry_wait_seconds=60, **spec.credentials).find(SUBJECT_QUERY)
    assert result.error.startswith("not_ready: ") and sleeps == []


def test_server_errors_are_retried_with_backoff(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    sleeps = Sleeps()
    fake.fail(2, 503, path=spec.first_path)
    result = make(spec.kind, fake.url, sleeps, **spec.credentials).find(SUBJECT_QUERY)
    assert result.error == "" and sleeps == [1.0, 2.0]


def test_refused_credentials_are_reported_as_such(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    source = make(spec.kind, fake.url, **spec.wrong_credentials)
    result = source.find(SUBJECT_QUERY)
    assert result.records == []
    assert result.error.startswith(f"auth_failed: credentials refused by {spec.system} (HTTP 401")
    assert (source.check() or "").startswith(f"auth_failed: credentials refused by {spec.system} (HTTP 401")


def test_check_passes_with_good_credentials(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    assert make(spec.kind, fake.url, **spec.credentials).check() is None
    assert len(fake.requests) == 1  # one cheap request


def test_server_down_is_reported(system: tuple[System, FakeApi]) -> None:
    spec, _fake = system
    source = make(spec.kind, closed_port_url(), **spec.credentials)
    assert source.find(SUBJECT_QUERY).error.startswith(f"not_ready: cannot connect to {spec.system} at 127.0.0.1")
    assert (source.check() or "").startswith("not_ready: cannot connect")


def test_timeout_is_reported(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    fake.hang(spec.first_path)
    result = make(spec.kind, fake.url, timeout_seconds=0.3, **spec.credentials).find(SUBJECT_QUERY)
    assert result.error.startswith(f"not_ready: {spec.system} did not answer within 0.3s")


def test_a_query_without_verified_email_is_refused(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    result = make(spec.kind, fake.url, **spec.credentials).find(SubjectQuery(emails=[], identifiers={"phone": ["x"]}))
    assert result.error.startswith("misconfigured: no verified email") and fake.requests == []


def test_no_personal_data_or_secret_in_logs(system: tuple[System, FakeApi], caplog: pytest.LogCaptureFixture) -> None:
    spec, fake = system
    caplog.set_level(logging.DEBUG)
    make(spec.kind, fake.url, **spec.credentials).find(SUBJECT_QUERY)
    fake.fail(1, 401)
    make(spec.kind, fake.url, **spec.credentials).find(SUBJECT_QUERY)
    assert caplog.records  # the requests were logged…
    secret = next(iter(spec.credentials.values()))
    assert SUBJECT not in caplog.text.lower() and "camille" not in caplog.text.lower() and secret not in caplog.text


def test_redirects_are_not_followed(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    with FakeApi("elsewhere", lambda seen: True) as elsewhere:
        fake.fail(1, 302, {"Location": elsewhere.url + "/collect"}, path=spec.first_path)
        result = make(spec.kind, fake.url, **spec.credentials).find(SUBJECT_QUERY)
        assert result.error.startswith("misconfigured: ") and "redirect" in result.error
        assert elsewhere.requests == []


def test_erase_removes_the_subject_only(system: tuple[System, FakeApi]) -> None:
    spec, fake = system
    source = make(spec.kind, fake.url, **spec.credentials)
    erased = source.erase(SUBJECT_QUERY)
    assert erased.error == "" and erased.records
    assert {r.category for r in erased.records} == {"erasure"}
    assert source.find(SubjectQuery(emails=[NAMESAKE])).records  # the namesake is untouched


# --- Shopify --------------------------------------------------------------------------------------
def test_shopify_filters_near_matches_and_follows_page_info(fake_shopify: shopify.FakeShopify) -> None:
    result = make("shopify", fake_shopify.url, page_size=1, **SYSTEMS["shopify"].credentials).find(SUBJECT_QUERY)
    assert result.error == ""
    assert ids(result, "customers") == {"207119551"}  # the search also returned the namesake
    assert ids(result, "orders") == {"450789469", "450789470", "450789471"}
    assert len(fake_shopify.calls("GET", r".*/customers/search\.json")) == 2
    assert len(fake_shopify.calls("GET", r".*/customers/207119551/orders\.json")) == 3
    assert not fake_shopify.calls("GET", r".*/customers/207119552/orders\.json")
    consent = next(r for r in result.records if r.entity == "customers.marketing_consent")
    assert consent.fields["email_marketing_consent"]["state"] == "subscribed"
    order = next(r for r in result.records if r.entity == "orders")
    assert order.matched_on == ["customer_id 207119551 (via customers, email)"]
    assert order.fields["line_items"] == [{"title": "Savon d'Alep", "variant_title": "200 g", "sku": "SAV-01",
                                           "quantity": 1, "price": "19.90"}]
    assert result.discovered == {"shopify_customer_id": ["207119551"]}


def test_shopify_never_follows_a_link_to_another_host(fake_shopify: shopify.FakeShopify) -> None:
    with FakeApi("elsewhere", lambda seen: True) as elsewhere:
        fake_shopify.link_base = elsewhere.url
        result = make("shopify", fake_shopify.url, page_size=1, **SYSTEMS["shopify"].credentials).find(SUBJECT_QUERY)
        assert result.error.startswith("misconfigured: Shopify pointed to an address outside the configured")
        assert elsewhere.requests == []


def test_shopify_erasure_uses_the_documented_mutation(fake_shopify: shopify.FakeShopify) -> None:
    make("shopify", fake_shopify.url, **SYSTEMS["shopify"].credentials).erase(SUBJECT_QUERY)
    assert fake_shopify.erasure_requests == ["gid://shopify/Customer/207119551"]


# --- WooCommerce ----------------------------------------------------------------------------------
def test_woocommerce_finds_account_and_guest_orders_but_no_one_elses(fake_woo: woocommerce.FakeWooCommerce) -> None:
    result = make("woocommerce_rest", fake_woo.url, page_size=2,
                  **SYSTEMS["woocommerce_rest"].credentials).find(SUBJECT_QUERY)
    assert result.error == ""
    assert ids(result, "customers") == {"25"}
    assert ids(result, "orders") == {"700", "701", "702", "710", "711"}  # not 730: another account's order
    guest = next(r for r in result.records if r.record_id == "710")
    assert guest.matched_on == ["billing.email (guest order)"]
    assert guest.fields["customer_ip_address"] == "198.51.100.4"
    assert len(fake_woo.calls("GET", r".*/orders")) >= 5  # page=… until X-WP-TotalPages
    assert [r.arg("page") for r in fake_woo.calls("GET", r".*/orders") if r.arg("customer")] == ["1", "2"]


def test_woocommerce_rechecks_the_owner_of_each_order(fake_woo: woocommerce.FakeWooCommerce) -> None:
    fake_woo.ignore_customer_filter = True
    result = make("woocommerce_rest", fake_woo.url, **SYSTEMS["woocommerce_rest"].credentials).find(SUBJECT_QUERY)
    assert ids(result, "orders") == {"700", "701", "702", "710", "711"}


def test_woocommerce_query_string_auth(fake_woo: woocommerce.FakeWooCommerce) -> None:
    creds = SYSTEMS["woocommerce_rest"].credentials
    result = make("woocommerce_rest", fake_woo.url, auth="query", **creds).find(SUBJECT_QUERY)
    assert result.error == "" and result.records
    assert all("authorization" not in r.headers and r.arg("consumer_key") == woocommerce.KEY
               for r in fake_woo.requests)


def test_woocommerce_erase_deletes_the_account_with_force(fake_woo: woocommerce.FakeWooCommerce) -> None:
    make("woocommerce_rest", fake_woo.url, **SYSTEMS["woocommerce_rest"].credentials).erase(SUBJECT_QUERY)
    assert [c["id"] for c in fake_woo.customers] == [26, 27]


# --- Stripe ---------------------------------------------------------------------------------------
def test_stripe_finds_customers_charges_and_cards(fake_stripe: stripe.FakeStripe) -> None:
    query = SubjectQuery(emails=["Camille.Martin@Example.com"])  # Stripe's filter is case-sensitive
    result = make("stripe", fake_stripe.url, page_size=1, **SYSTEMS["stripe"].credentials).find(query)
    assert result.error == ""
    assert ids(result, "customers") == {"cus_NffrFeUfNV2Hib", "cus_NffrFeUfNV2Hic"}
    assert ids(result, "charges") == {"ch_3MmlLrLkdIwHu7ix0000", "ch_3MmlLrLkdIwHu7ix0001", "ch_3MmlLrLkdIwHu7ix0002"}
    assert ids(result, "payment_methods") == {"pm_1Q0PsIJvEtkwdCNY0001", "pm_1Q0PsIJvEtkwdCNY0002"}
    assert [r.arg("starting_after") for r in fake_stripe.calls("GET", "/v1/charges")
            if r.arg("customer") == "cus_NffrFeUfNV2Hib"] == ["", "ch_3MmlLrLkdIwHu7ix0000",
                                                               "ch_3MmlLrLkdIwHu7ix0001"]


def test_stripe_never_leaks_more_than_the_last_four_digits(fake_stripe: stripe.FakeStripe) -> None:
    result = make("stripe", fake_stripe.url, **SYSTEMS["stripe"].credentials).find(SUBJECT_QUERY)
    text = dump(result)
    assert not re.search(r"\d(?:[ -]?\d){12,18}", text), "a 13-19 digit run (card number) leaked"
    assert stripe.FULL_PAN not in text and "fingerprint" not in text and "iin" not in text
    for record in result.records:
        card = record.fields.get("card") or record.fields.get("payment_method", {}).get("card")
        if card is not None:
            assert set(card) <= {"brand", "last4", "exp_month", "exp_year"} and len(card["last4"]) == 4
    customer = next(r for r in result.records if r.record_id == "cus_NffrFeUfNV2Hib")
    assert customer.fields["metadata"]["support_note"] == "paid by card ••••3155"


# --- Brevo ----------------------------------------------------------------------------------------
def test_brevo_contact_consent_lists_and_campaign_activity(fake_brevo: brevo.FakeBrevo) -> None:
    result = make("brevo", fake_brevo.url, **SYSTEMS["brevo"].credentials).find(SUBJECT_QUERY)
    assert result.error == ""
    consent = next(r for r in result.records if r.entity == "contacts.consent")
    assert consent.fields == {"emailBlacklisted": False, "smsBlacklisted": True,
                              "listUnsubscribed": [{"list_id": 7, "list_name": "Conseils beauté"}]}
    assert {r.fields["list_name"] for r in result.records if r.entity == "contacts.lists"} == \
        {"Newsletter", "Ventes privées"}
    events = [r.fields for r in result.records if r.entity == "contacts.statistics"]
    assert sorted(e["event"] for e in events) == ["clicked", "delivered", "opened", "sent", "sent",
                                                  "unsubscribed_by_user"]
    click = next(e for e in events if e["event"] == "clicked")
    assert click["url"] == "https://shop.example/soldes" and click["campaign_name"] == "Soldes de printemps"
    assert [r.arg("offset") for r in fake_brevo.calls("GET", "/v3/contacts/lists")] == ["0", "50"]
    assert len(fake_brevo.calls("GET", r"/v3/emailCampaigns/\d+")) == 2  # each campaign asked once


def test_brevo_rate_limit_reset_header_is_honoured(fake_brevo: brevo.FakeBrevo) -> None:
    sleeps = Sleeps()
    fake_brevo.fail(1, 429, {"x-sib-ratelimit-reset": "7"}, path=r"/v3/contacts/lists")
    result = make("brevo", fake_brevo.url, sleeps, **SYSTEMS["brevo"].credentials).find(SUBJECT_QUERY)
    assert result.error == "" and sleeps == [7.0]


# --- Mailchimp ------------------------------------------------------------------------------------
def test_mailchimp_members_opt_in_evidence_and_activity(fake_mailchimp: mailchimp.FakeMailchimp) -> None:
    result = make("mailchimp", fake_mailchimp.url, page_size=2, **SYSTEMS["mailchimp"].credentials).find(SUBJECT_QUERY)
    assert result.error == ""
    consents = {r.fields["list_name"]: r.fields for r in result.records if r.entity == "lists.members.consent"}
    assert set(consents) == {"Newsletter FR", "Clients VIP"}
    assert consents["Newsletter FR"]["status"] == "subscribed"
    assert consents["Newsletter FR"]["ip_opt"] == "198.51.100.23"
    assert consents["Newsletter FR"]["timestamp_opt"] == "2022-11-05T18:25:41+00:00"
    activity = [r for r in result.records if r.entity == "lists.members.activity-feed"]
    assert len(activity) == 6
    assert {a.fields["activity_type"] for a in activity} == {"sent", "open", "click", "unsub"}
    feed = fake_mailchimp.calls("GET", r"/3\.0/lists/a1b2c3d4e5/members/[0-9a-f]{32}/activity-feed")
    assert [r.arg("offset") for r in feed] == ["0", "2", "4"]
    assert len(fake_mailchimp.calls("GET", r"/3\.0/lists")) == 2  # count=2, total 3


def test_mailchimp_compares_the_address_it_gets_back(fake_mailchimp: mailchimp.FakeMailchimp) -> None:
    fake_mailchimp.members[("f6g7h8i9j0", mailchimp.md5(SUBJECT))]["email_address"] = NAMESAKE
    result = make("mailchimp", fake_mailchimp.url, **SYSTEMS["mailchimp"].credentials).find(SUBJECT_QUERY)
    assert {r.fields["list_name"] for r in result.records} == {"Newsletter FR"}


def test_mailchimp_configured_audiences_only(fake_mailchimp: mailchimp.FakeMailchimp) -> None:
    creds = SYSTEMS["mailchimp"].credentials
    result = make("mailchimp", fake_mailchimp.url, list_ids=["f6g7h8i9j0"], **creds).find(SUBJECT_QUERY)
    assert {r.fields["list_name"] for r in result.records} == {"Clients VIP"}
    assert not fake_mailchimp.calls("GET", r"/3\.0/lists/a1b2c3d4e5/.*")
    wrong = make("mailchimp", fake_mailchimp.url, list_ids=["zzz"], **creds).find(SUBJECT_QUERY)
    assert wrong.error == "misconfigured: Mailchimp has no audience 'zzz'; check list_ids"


def test_mailchimp_erase_is_permanent_delete_in_every_audience(fake_mailchimp: mailchimp.FakeMailchimp) -> None:
    make("mailchimp", fake_mailchimp.url, **SYSTEMS["mailchimp"].credentials).erase(SUBJECT_QUERY)
    assert len(fake_mailchimp.calls("POST", r".*/actions/delete-permanent")) == 2
    assert list(fake_mailchimp.members) == [("a1b2c3d4e5", mailchimp.md5(NAMESAKE))]


# --- secrets from the environment ------------------------------------------------------------
def test_secrets_can_come_from_the_environment(fake_stripe: stripe.FakeStripe) -> None:
    source = make("stripe", fake_stripe.url, environ={"DSARBOT_STRIPE_KEY": stripe.SECRET_KEY},
                  secret_key_env="DSARBOT_STRIPE_KEY")
    assert source.check() is None
