"""Stripe source: customers, their charges and saved cards, never more than a card's last 4 digits.

Documented shapes this follows (https://docs.stripe.com/api):
- `GET /v1/customers?email=` (List all customers; the filter is exact and case-sensitive, so the
  verified spelling and its lowercase form are both asked): https://docs.stripe.com/api/customers/list
- `GET /v1/charges?customer=`: https://docs.stripe.com/api/charges/list
- `GET /v1/payment_methods?customer=&type=card`: https://docs.stripe.com/api/payment_methods/list
- Pagination `has_more` + `starting_after`: https://docs.stripe.com/api/pagination
- Auth `Authorization: Bearer <secret or restricted key>`: https://docs.stripe.com/api/authentication
- 429 on rate limits: https://docs.stripe.com/rate-limits
- `DELETE /v1/customers/{id}`: https://docs.stripe.com/api/customers/delete
Cards are reduced to brand, last4 and expiry; fingerprints, BIN/IIN, checks, wallets and network
tokens are dropped, and every string is passed through a card-number mask as a second guard.
"""
from __future__ import annotations

from typing import Any

from integrations.base import SourceResult
from integrations.sources.api_source import (ApiSource, SourceSettings, injected, mask_card_numbers, pick,
                                             same_email)

SYSTEM = "Stripe"
CUSTOMER_FIELDS = ("id", "email", "name", "phone", "address", "shipping", "created", "currency", "description",
                   "preferred_locales", "balance", "delinquent", "tax_exempt", "metadata")
CHARGE_FIELDS = ("id", "created", "amount", "amount_captured", "amount_refunded", "currency", "status", "paid",
                 "captured", "refunded", "description", "receipt_email", "receipt_number", "statement_descriptor",
                 "failure_code", "shipping")
BILLING_FIELDS = ("name", "email", "phone", "address")
CARD_FIELDS = ("brand", "exp_month", "exp_year")


def card_summary(card: dict[str, Any] | None) -> dict[str, Any]:
    """Brand, last 4 digits and expiry: all a data subject needs to recognise a card, nothing more."""
    summary = pick(card, CARD_FIELDS)
    digits = "".join(ch for ch in str((card or {}).get("last4") or "") if ch.isdigit())
    if digits:
        summary["last4"] = digits[-4:]
    return summary


class StripeSource(ApiSource):
    system = SYSTEM

    def __init__(self, name: str, client: Any, page_size: int) -> None:
        super().__init__(name, client)
        self.page_size = page_size

    def _customers(self, email: str) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for spelling in dict.fromkeys((email, email.lower())):
            for page in self.client.pages_by_cursor("v1/customers", {"email": spelling, "limit": self.page_size},
                                                    "customers"):
                for customer in page:
                    if same_email(customer.get("email"), email) and not customer.get("deleted"):
                        found[customer["id"]] = customer
        return list(found.values())

    def _find(self, emails: list[str], out: SourceResult) -> None:
        for email in emails:
            for customer in self._customers(email):
                cid = customer["id"]
                self.discover(out, "stripe_customer_id", cid)
                self._add(out, "customers", cid, pick(customer, CUSTOMER_FIELDS), "identity", ["email"])
                via = [f"customer {cid} (via customers, email)"]
                for page in self.client.pages_by_cursor("v1/charges", {"customer": cid, "limit": self.page_size},
                                                        "charges"):
                    for charge in page:
                        self._add(out, "charges", charge["id"], self._charge(charge), "payment", via)
                for page in self.client.pages_by_cursor("v1/payment_methods", {"customer": cid, "type": "card",
                                                                               "limit": self.page_size},
                                                        "payment_methods"):
                    for method in page:
                        fields = pick(method, ("id", "type", "created"))
                        fields["card"] = card_summary(method.get("card"))
                        fields["billing_details"] = pick(method.get("billing_details"), BILLING_FIELDS)
                        self._add(out, "payment_methods", method["id"], fields, "payment", via)

    @staticmethod
    def _charge(charge: dict[str, Any]) -> dict[str, Any]:
        fields = pick(charge, CHARGE_FIELDS)
        fields["billing_details"] = pick(charge.get("billing_details"), BILLING_FIELDS)
        details = charge.get("payment_method_details") or {}
        fields["payment_method"] = {"type": details.get("type", "")}
        if details.get("card"):
            fields["payment_method"]["card"] = card_summary(details["card"])
        return fields

    def _add(self, out: SourceResult, entity: str, record_id: str, fields: dict[str, Any], category: str,
             matched_on: list[str]) -> None:
        self.record(out, entity, record_id, mask_card_numbers(fields), category, matched_on)

    def _erase(self, emails: list[str], out: SourceResult) -> None:
        """Delete the matching customers (Stripe keeps charges for its own legal obligations)."""
        for email in emails:
            for customer in self._customers(email):
                self.client.request("DELETE", f"v1/customers/{customer['id']}", what="customers/delete")
                self.record(out, "customers", customer["id"], {"action": "deleted"}, "erasure", ["email"])

    def _check(self) -> None:
        self.client.get_json("v1/customers", {"limit": 1}, what="customers")


def build(name: str, settings: dict[str, Any], context: Any = None, **kwargs: Any) -> StripeSource:
    """Settings: secret_key[_env] (a restricted key with read access to customers, charges and
    payment methods is enough; write on customers only for erasure), api_version, base_url."""
    conf = SourceSettings(name, "stripe", settings, {"secret_key", "api_version"}, kwargs.get("environ"))
    headers = {"Authorization": f"Bearer {conf.secret('secret_key')}"}
    if conf.get("api_version"):
        headers["Stripe-Version"] = str(conf.get("api_version"))
    client = conf.client(conf.base_url("https://api.stripe.com"), system=SYSTEM, headers=headers,
                         **injected(context, kwargs))
    return StripeSource(name, client, conf.page_size(100, 100))
