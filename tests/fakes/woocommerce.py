"""Fake WooCommerce REST API v3 (customers, orders, customer deletion).

Shapes from https://woocommerce.github.io/woocommerce-rest-api-docs/ (Customer and Order
properties, List all customers `email`/`role`, List all orders `customer`/`search`), pagination
headers `X-WP-Total`/`X-WP-TotalPages` plus `Link`
(https://developer.wordpress.org/rest-api/using-the-rest-api/pagination/), and authentication by
consumer key/secret as Basic auth or query string
(https://developer.woocommerce.com/docs/apis/rest-api/authentication/).
`search` is full-text over the order, so a namesake's orders come back too.
"""
from __future__ import annotations

import base64
import math
import re
from typing import Any

from tests.fakes.http_fake import FakeApi, Reply, Seen
from tests.fakes.people import FIRST, LAST, NAMESAKE, PHONE, STRANGER, SUBJECT

KEY, SECRET = "ck_0123456789abcdef", "cs_fedcba9876543210"
API = "/wp-json/wc/v3"


def _authorized(seen: Seen) -> bool:
    expected = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    return seen.headers.get("authorization") == expected or \
        (seen.arg("consumer_key") == KEY and seen.arg("consumer_secret") == SECRET)


def _address(email: str, first: str = FIRST, last: str = LAST, street: str = "12 rue de la République") -> dict:
    return {"first_name": first, "last_name": last, "company": "", "address_1": street, "address_2": "",
            "city": "Lyon", "state": "", "postcode": "69002", "country": "FR", "email": email, "phone": PHONE}


def _customer(cid: int, email: str, first: str = FIRST, last: str = LAST) -> dict[str, Any]:
    shipping = {k: v for k, v in _address(email, first, last).items() if k != "email"}
    return {"id": cid, "date_created": "2023-01-05T10:00:00", "date_created_gmt": "2023-01-05T09:00:00",
            "date_modified": "2024-02-01T08:00:00", "date_modified_gmt": "2024-02-01T07:00:00", "email": email,
            "first_name": first, "last_name": last, "role": "customer", "username": email.split("@")[0],
            "billing": _address(email, first, last), "shipping": shipping, "is_paying_customer": True,
            "avatar_url": "https://secure.gravatar.com/avatar/0", "meta_data": [],
            "_links": {"self": [{"href": f"https://shop.example{API}/customers/{cid}"}]}}


def _order(oid: int, customer_id: int, email: str, first: str = FIRST, last: str = LAST) -> dict[str, Any]:
    return {"id": oid, "parent_id": 0, "number": str(oid), "order_key": f"wc_order_{oid}", "created_via": "checkout",
            "version": "8.5.1", "status": "completed", "currency": "EUR", "date_created": "2024-03-01T10:00:00",
            "date_created_gmt": "2024-03-01T09:00:00", "date_modified": "2024-03-02T10:00:00",
            "discount_total": "0.00", "shipping_total": "4.90", "total": "29.90", "total_tax": "4.98",
            "prices_include_tax": True, "customer_id": customer_id, "customer_ip_address": "198.51.100.4",
            "customer_user_agent": "Mozilla/5.0", "customer_note": "Ring twice",
            "billing": _address(email, first, last),
            "shipping": {k: v for k, v in _address(email, first, last).items() if k != "email"},
            "payment_method": "stripe", "payment_method_title": "Carte bancaire", "transaction_id": "ch_3Nabc",
            "date_paid": "2024-03-01T10:01:00", "date_completed": "2024-03-03T10:00:00", "cart_hash": "abc",
            "meta_data": [], "line_items": [{"id": oid * 10, "name": "Savon d'Alep", "product_id": 93,
                                             "variation_id": 0, "quantity": 2, "tax_class": "", "subtotal": "25.00",
                                             "total": "25.00", "sku": "SAV-01", "price": 12.5}]}


class FakeWooCommerce(FakeApi):
    def __init__(self) -> None:
        super().__init__("WooCommerce", _authorized, Reply(401, {
            "code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.",
            "data": {"status": 401}}))
        self.customers = [_customer(25, "Camille.Martin@example.com"), _customer(26, NAMESAKE),
                          _customer(27, STRANGER, "Jean", "Dupont")]
        self.ignore_customer_filter = False  # like an old or plugin-altered API that drops unknown filters
        self.orders = ([_order(700 + i, 25, SUBJECT) for i in range(3)]            # the subject's account
                       + [_order(710 + i, 0, "CAMILLE.MARTIN@example.com") for i in range(2)]  # her guest orders
                       + [_order(720, 0, NAMESAKE), _order(721, 26, NAMESAKE)]   # the namesake's
                       + [_order(730, 27, SUBJECT, "Jean", "Dupont")])           # another account, her email typed in
        self.route("GET", f"{API}/customers", self._list_customers)
        self.route("GET", f"{API}/orders", self._list_orders)
        self.route("DELETE", f"{API}/customers/{{cid}}", self._delete_customer)

    def _page(self, seen: Seen, items: list[Any]) -> Reply:
        per_page, page = int(seen.arg("per_page", "10")), int(seen.arg("page", "1"))
        if not 1 <= per_page <= 100:
            return Reply(400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): per_page",
                               "data": {"status": 400}})
        pages = max(1, math.ceil(len(items) / per_page))
        headers = {"X-WP-Total": str(len(items)), "X-WP-TotalPages": str(pages)}
        if page < pages:
            headers["Link"] = f'<{self.url}{seen.path}?page={page + 1}&per_page={per_page}>; rel="next"'
        body = items[(page - 1) * per_page:page * per_page]
        if seen.arg("_fields"):
            body = [{k: item[k] for k in seen.arg("_fields").split(",")} for item in body]
        return Reply(200, body, headers)

    def _list_customers(self, seen: Seen) -> Reply:
        items = self.customers
        if seen.arg("email"):
            items = [c for c in items if c["email"].lower() == seen.arg("email").lower()]
        if seen.arg("role", "customer") not in ("all", "customer"):
            items = [c for c in items if c["role"] == seen.arg("role")]
        return self._page(seen, items)

    def _list_orders(self, seen: Seen) -> Reply:
        items = self.orders
        if seen.arg("customer") and not self.ignore_customer_filter:
            items = [o for o in items if o["customer_id"] == int(seen.arg("customer"))]
        if seen.arg("search"):
            words = set(re.split(r"[^a-z0-9]+", seen.arg("search").lower())) - {"", "com", "example"}
            items = [o for o in items if words & set(re.split(r"[^a-z0-9]+", " ".join(
                str(o["billing"][k]) for k in ("email", "first_name", "last_name")).lower()))]
        return self._page(seen, items)

    def _delete_customer(self, seen: Seen, cid: str) -> Reply:
        if seen.arg("force") != "true":
            return Reply(501, {"code": "woocommerce_rest_trash_not_supported",
                               "message": "Customers do not support trashing.", "data": {"status": 501}})
        found = [c for c in self.customers if c["id"] == int(cid)]
        if not found:
            return Reply(400, {"code": "woocommerce_rest_invalid_id", "message": "Invalid resource id.",
                               "data": {"status": 400}})
        self.customers.remove(found[0])
        return Reply(200, found[0])
