"""Fake Stripe API (customers, charges, payment methods, customer deletion).

Shapes from https://docs.stripe.com/api (the Customer, Charge and PaymentMethod objects; list
objects with `has_more` and `starting_after`, https://docs.stripe.com/api/pagination; the `email`
filter of List all customers is exact and case-sensitive; 401 error body of a wrong key). Card
objects are complete on purpose (fingerprint, checks, wallet…) and a customer's metadata holds a
card number typed by an agent: the source must let none of it through.
"""
from __future__ import annotations

from typing import Any

from tests.fakes.http_fake import FakeApi, Reply, Seen
from tests.fakes.people import FIRST, LAST, NAMESAKE, PHONE, STRANGER, SUBJECT

SECRET_KEY = "sk_test_51MzTestKey0123456789"
FULL_PAN = "4000 0025 0000 3155"

ADDRESS = {"city": "Lyon", "country": "FR", "line1": "12 rue de la République", "line2": None,
           "postal_code": "69002", "state": None}


def _customer(cid: str, email: str, name: str, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    return {"id": cid, "object": "customer", "address": ADDRESS, "balance": 0, "created": 1680893993,
            "currency": "eur", "default_source": None, "delinquent": False, "description": None, "discount": None,
            "email": email, "invoice_prefix": "0759376C",
            "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                                 "rendering_options": None},
            "livemode": False, "metadata": metadata or {}, "name": name, "next_invoice_sequence": 1,
            "phone": PHONE, "preferred_locales": ["fr"], "shipping": None, "tax_exempt": "none", "test_clock": None}


def _card(last4: str, fingerprint: str) -> dict[str, Any]:
    return {"brand": "visa", "checks": {"address_line1_check": "pass", "address_postal_code_check": "pass",
                                        "cvc_check": "pass"},
            "country": "FR", "display_brand": "visa", "exp_month": 8, "exp_year": 2027, "fingerprint": fingerprint,
            "funding": "credit", "generated_from": None, "iin": "400002", "issuer": "Demo Bank", "last4": last4,
            "networks": {"available": ["visa"], "preferred": None},
            "three_d_secure_usage": {"supported": True}, "wallet": None}


def _charge(chid: str, customer: dict[str, Any], amount: int, last4: str) -> dict[str, Any]:
    card = {**_card(last4, "Xt5EWLLDS7FJjR1c"), "amount_authorized": amount, "installments": None, "mandate": None,
            "network": "visa", "network_token": {"used": False}, "three_d_secure": None}
    return {"id": chid, "object": "charge", "amount": amount, "amount_captured": amount, "amount_refunded": 0,
            "application": None, "balance_transaction": f"txn_{chid[3:]}",
            "billing_details": {"address": ADDRESS, "email": customer["email"], "name": customer["name"],
                                "phone": PHONE},
            "calculated_statement_descriptor": "DEMO SHOP", "captured": True, "created": 1700000000 + amount,
            "currency": "eur", "customer": customer["id"], "description": "Order #1001", "disputed": False,
            "failure_code": None, "failure_message": None, "fraud_details": {}, "livemode": False, "metadata": {},
            "outcome": {"network_status": "approved_by_network", "risk_level": "normal", "risk_score": 32,
                        "seller_message": "Payment complete.", "type": "authorized"},
            "paid": True, "payment_intent": f"pi_{chid[3:]}", "payment_method": f"pm_{chid[3:]}",
            "payment_method_details": {"card": card, "type": "card"}, "receipt_email": customer["email"],
            "receipt_number": None, "receipt_url": f"https://pay.stripe.com/receipts/payment/CAcaFwoV{chid}",
            "refunded": False, "shipping": None, "statement_descriptor": None, "status": "succeeded"}


def _payment_method(pmid: str, customer: dict[str, Any], last4: str) -> dict[str, Any]:
    return {"id": pmid, "object": "payment_method", "allow_redisplay": "unspecified",
            "billing_details": {"address": ADDRESS, "email": customer["email"], "name": customer["name"],
                                "phone": PHONE},
            "card": _card(last4, "Fq4iOvNKgqxfj0Fs"), "created": 1690000000, "customer": customer["id"],
            "livemode": False, "metadata": {}, "type": "card"}


class FakeStripe(FakeApi):
    def __init__(self) -> None:
        super().__init__("Stripe", lambda seen: seen.headers.get("authorization") == f"Bearer {SECRET_KEY}",
                         Reply(401, {"error": {"message": "Invalid API Key provided: sk_test_****6789",
                                               "type": "invalid_request_error"}}))
        name = f"{FIRST} {LAST}"
        subject = _customer("cus_NffrFeUfNV2Hib", SUBJECT, name, {"support_note": f"paid by card {FULL_PAN}"})
        subject_again = _customer("cus_NffrFeUfNV2Hic", SUBJECT, name)  # a second account, same address
        namesake = _customer("cus_NamesakeXYZ0001", NAMESAKE, name)
        stranger = _customer("cus_StrangerXYZ0001", STRANGER, "Jean Dupont")
        self.customers = [subject, subject_again, namesake, stranger]
        self.charges = [_charge(f"ch_3MmlLrLkdIwHu7ix{i:04d}", subject, 1099 + i, "3155") for i in range(3)] + \
            [_charge("ch_3MmlLrLkdIwHu7ixNAME", namesake, 5000, "4242")]
        self.payment_methods = [_payment_method("pm_1Q0PsIJvEtkwdCNY0001", subject, "3155"),
                                _payment_method("pm_1Q0PsIJvEtkwdCNY0002", subject, "0077"),
                                _payment_method("pm_1Q0PsIJvEtkwdCNYNAME", namesake, "4242")]
        self.route("GET", "/v1/customers", lambda seen: self._list(seen, self.customers, "/v1/customers",
                                                                   email="email"))
        self.route("GET", "/v1/charges", lambda seen: self._list(seen, self.charges, "/v1/charges",
                                                                 customer="customer"))
        self.route("GET", "/v1/payment_methods", self._payment_methods)
        self.route("DELETE", "/v1/customers/{cid}", self._delete)

    def _list(self, seen: Seen, items: list[dict[str, Any]], url: str, **filters: str) -> Reply:
        limit = int(seen.arg("limit", "10"))
        if not 1 <= limit <= 100:
            return Reply(400, {"error": {"message": "Invalid integer: limit", "param": "limit",
                                         "type": "invalid_request_error"}})
        for param, field in filters.items():
            if seen.arg(param):
                items = [item for item in items if item[field] == seen.arg(param)]  # exact, case-sensitive
        start = 0
        if seen.arg("starting_after"):
            start = next(i for i, item in enumerate(items) if item["id"] == seen.arg("starting_after")) + 1
        page = items[start:start + limit]
        return Reply(200, {"object": "list", "url": url, "has_more": start + limit < len(items), "data": page})

    def _payment_methods(self, seen: Seen) -> Reply:
        if seen.arg("type") not in ("", "card"):
            return Reply(200, {"object": "list", "url": "/v1/payment_methods", "has_more": False, "data": []})
        return self._list(seen, self.payment_methods, "/v1/payment_methods", customer="customer")

    def _delete(self, seen: Seen, cid: str) -> Reply:
        found = [c for c in self.customers if c["id"] == cid]
        if not found:
            return Reply(404, {"error": {"message": f"No such customer: '{cid}'", "type": "invalid_request_error"}})
        self.customers.remove(found[0])
        return Reply(200, {"id": cid, "object": "customer", "deleted": True})
