"""Fake Shopify Admin REST API (customers search, customer orders, shop, GraphQL erasure).

Shapes from the Admin REST reference (https://shopify.dev/docs/api/admin-rest/2024-07/resources/customer,
.../resources/order), Link-header pagination (https://shopify.dev/docs/api/admin-rest/usage/pagination:
`page_info` must be used as given, with no other filter next to it) and the 401 body of a wrong token.
Customer search is full-text: like the real one, it also returns near matches (same name), which
the source must filter out.
"""
from __future__ import annotations

import itertools
import re
from typing import Any

from tests.fakes.http_fake import FakeApi, Reply, Seen
from tests.fakes.people import FIRST, LAST, NAMESAKE, PHONE, STRANGER

VERSION = "2024-10"
TOKEN = "shpat_test_0123456789abcdef"
PREFIX = f"/admin/api/{VERSION}"


def _address(cid: int, aid: int, email: str, street: str) -> dict[str, Any]:
    return {"id": aid, "customer_id": cid, "first_name": FIRST, "last_name": LAST, "company": None,
            "address1": street, "address2": "", "city": "Lyon", "province": "", "country": "France", "zip": "69002",
            "phone": PHONE, "name": f"{FIRST} {LAST}", "province_code": None, "country_code": "FR",
            "country_name": "France", "default": True}


def _customer(cid: int, email: str, street: str, first: str = FIRST, last: str = LAST) -> dict[str, Any]:
    address = _address(cid, cid + 1, email, street)
    return {
        "id": cid, "email": email, "created_at": "2023-03-02T10:15:00+01:00",
        "updated_at": "2024-05-06T11:00:00+02:00", "first_name": first, "last_name": last, "orders_count": 0,
        "state": "enabled", "total_spent": "0.00", "last_order_id": None, "note": "Prefers morning delivery",
        "verified_email": True, "multipass_identifier": None, "tax_exempt": False, "tags": "vip",
        "last_order_name": None, "currency": "EUR", "phone": PHONE, "addresses": [address],
        "tax_exemptions": [],
        "email_marketing_consent": {"state": "subscribed", "opt_in_level": "confirmed_opt_in",
                                    "consent_updated_at": "2023-03-02T10:16:00+01:00"},
        "sms_marketing_consent": {"state": "not_subscribed", "opt_in_level": "single_opt_in",
                                  "consent_updated_at": None, "consent_collected_from": "OTHER"},
        "admin_graphql_api_id": f"gid://shopify/Customer/{cid}", "default_address": address,
    }


def _order(oid: int, number: int, customer: dict[str, Any], total: str) -> dict[str, Any]:
    address = {k: v for k, v in customer["default_address"].items() if k not in ("id", "customer_id", "default")}
    return {
        "id": oid, "admin_graphql_api_id": f"gid://shopify/Order/{oid}", "browser_ip": "203.0.113.7",
        "buyer_accepts_marketing": True, "cancel_reason": None, "cancelled_at": None,
        "client_details": {"accept_language": "fr-FR", "browser_ip": "203.0.113.7", "session_hash": None,
                           "user_agent": "Mozilla/5.0"},
        "closed_at": None, "confirmation_number": f"X{oid}", "contact_email": customer["email"],
        "created_at": f"2024-0{number % 9 + 1}-10T09:00:00+02:00", "currency": "EUR", "email": customer["email"],
        "financial_status": "paid", "fulfillment_status": "fulfilled", "landing_site": "/", "name": f"#{number}",
        "note": None, "number": number - 1000, "order_number": number, "payment_gateway_names": ["shopify_payments"],
        "phone": PHONE, "processed_at": f"2024-0{number % 9 + 1}-10T09:00:00+02:00", "referring_site": "",
        "subtotal_price": total, "tags": "", "total_discounts": "0.00", "total_price": total, "total_tax": "3.00",
        "billing_address": address, "shipping_address": address,
        "customer": {"id": customer["id"], "email": customer["email"]},
        "line_items": [{"id": oid * 10, "name": "Savon d'Alep", "price": total, "product_id": 632910392,
                        "quantity": 1, "sku": "SAV-01", "title": "Savon d'Alep", "variant_id": 808950810,
                        "variant_title": "200 g", "vendor": "Maison"}],
        "shipping_lines": [{"code": "Colissimo", "price": "4.90", "title": "Colissimo"}],
    }


class FakeShopify(FakeApi):
    def __init__(self) -> None:
        super().__init__("Shopify", lambda seen: seen.headers.get("x-shopify-access-token") == TOKEN,
                         Reply(401, {"errors": "[API] Invalid API key or access token (unrecognized login or "
                                               "wrong password)"}))
        subject = _customer(207119551, "Camille.Martin@Example.com", "12 rue de la République")
        namesake = _customer(207119552, NAMESAKE, "3 quai Saint-Vincent")
        stranger = _customer(207119553, STRANGER, "8 rue Mercière", first="Jean", last="Dupont")
        self.customers = [subject, namesake, stranger]
        self.orders = {subject["id"]: [_order(450789469 + i, 1001 + i, subject, f"{19 + i}.90") for i in range(3)],
                       namesake["id"]: [_order(450789480, 1010, namesake, "99.00")], stranger["id"]: []}
        self.erasure_requests: list[str] = []
        self.link_base = ""  # tests set another origin here to check that it is not followed
        self._tokens: dict[str, tuple[list[Any], int, int]] = {}
        self._counter = itertools.count(1)
        self.route("GET", f"{PREFIX}/customers/search.json", self._search)
        self.route("GET", f"{PREFIX}/customers/{{cid}}/orders.json", self._customer_orders)
        self.route("GET", f"{PREFIX}/shop.json", lambda seen: {"shop": {"id": 548380009, "name": "Demo Shop"}})
        self.route("POST", f"{PREFIX}/graphql.json", self._graphql)

    def _page(self, seen: Seen, path: str, items: list[Any], key: str) -> Reply:
        token = seen.arg("page_info")
        if token:
            if set(seen.query) - {"page_info", "limit", "fields"}:
                return Reply(400, {"errors": {"page_info": ["Invalid value: other parameters given"]}})
            items, offset, limit = self._tokens[token]
            limit = int(seen.arg("limit", str(limit)))
        else:
            offset, limit = 0, min(int(seen.arg("limit", "50")), 250)
        links = []
        if offset + limit < len(items):
            nxt = f"tok{next(self._counter)}"
            self._tokens[nxt] = (items, offset + limit, limit)
            links.append(f'<{self.link_base or self.url}{path}?limit={limit}&page_info={nxt}>; rel="next"')
        if offset:
            prev = f"tok{next(self._counter)}"
            self._tokens[prev] = (items, max(0, offset - limit), limit)
            links.insert(0, f'<{self.url}{path}?limit={limit}&page_info={prev}>; rel="previous"')
        headers = {"Link": ", ".join(links)} if links else {}
        headers["X-Shopify-Shop-Api-Call-Limit"] = "1/40"
        return Reply(200, {key: items[offset:offset + limit]}, headers)

    def _search(self, seen: Seen) -> Reply:
        if seen.arg("page_info"):
            return self._page(seen, seen.path, [], "customers")
        # full-text: any customer sharing a word with the query (names, email parts) comes back
        words = set(re.split(r"[^a-z0-9]+", seen.arg("query").lower().removeprefix("email:"))) - {"", "com", "example"}
        hits = [c for c in self.customers
                if words & set(re.split(r"[^a-z0-9]+", f"{c['email']} {c['first_name']} {c['last_name']}".lower()))]
        return self._page(seen, seen.path, hits, "customers")

    def _customer_orders(self, seen: Seen, cid: str) -> Reply:
        if not seen.arg("page_info") and seen.arg("status") != "any":
            return Reply(400, {"errors": "this fake expects status=any so that closed orders are included"})
        return self._page(seen, seen.path, self.orders.get(int(cid), []), "orders")

    def _graphql(self, seen: Seen) -> dict[str, Any]:
        body = seen.json()
        gid = body["variables"]["customerId"]
        assert "customerRequestDataErasure" in body["query"]
        if not any(c["admin_graphql_api_id"] == gid for c in self.customers):
            return {"data": {"customerRequestDataErasure": {"customerId": None, "userErrors": [
                {"field": ["customerId"], "message": "Customer does not exist", "code": "DOES_NOT_EXIST"}]}}}
        self.erasure_requests.append(gid)
        return {"data": {"customerRequestDataErasure": {"customerId": gid, "userErrors": []}},
                "extensions": {"cost": {"requestedQueryCost": 10}}}
