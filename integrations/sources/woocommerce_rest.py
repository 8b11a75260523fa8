"""WooCommerce REST API (v3) source: customer accounts, billing/shipping addresses and orders.

Documented shapes this follows (https://woocommerce.github.io/woocommerce-rest-api-docs/):
- `GET /wp-json/wc/v3/customers?email=...` (List all customers; `role=all` so that non-"customer"
  roles are found too), `GET /wp-json/wc/v3/orders?customer=<id>` and `?search=` (List all orders)
- Pagination: `page`/`per_page` with the `X-WP-Total` / `X-WP-TotalPages` headers
  (https://developer.wordpress.org/rest-api/using-the-rest-api/pagination/)
- Authentication over HTTPS: consumer key/secret as HTTP Basic auth, or as the `consumer_key` /
  `consumer_secret` query parameters when the server does not pass the Authorization header
  (https://developer.woocommerce.com/docs/apis/rest-api/authentication/)
- `DELETE /wp-json/wc/v3/customers/<id>?force=true` (customers do not support trashing)
Guest orders are found by billing email, and kept only when they belong to no account: an order
of another account is never returned because its billing address mentions the same email.
"""
from __future__ import annotations

from typing import Any, Callable

from integrations.base import Misconfigured, SourceResult
from integrations.sources.api_source import ApiSource, SourceSettings, injected, pick, same_email

SYSTEM = "WooCommerce"
API = "wp-json/wc/v3"
CUSTOMER_FIELDS = ("id", "email", "first_name", "last_name", "username", "role", "date_created",
                   "date_modified", "is_paying_customer")
ADDRESS_FIELDS = ("first_name", "last_name", "company", "address_1", "address_2", "city", "state", "postcode",
                  "country", "email", "phone")
ORDER_FIELDS = ("id", "number", "status", "currency", "date_created", "date_modified", "date_paid",
                "date_completed", "total", "total_tax", "shipping_total", "discount_total", "customer_id",
                "customer_ip_address", "customer_user_agent", "customer_note", "payment_method_title",
                "created_via")
LINE_FIELDS = ("name", "sku", "quantity", "total")


class WooCommerceSource(ApiSource):
    system = SYSTEM

    def __init__(self, name: str, client: Any, page_size: int) -> None:
        super().__init__(name, client)
        self.page_size = page_size

    def _customers(self, email: str) -> list[dict[str, Any]]:
        found: dict[Any, dict[str, Any]] = {}
        for page in self.client.pages_by_number(f"{API}/customers",
                                                {"email": email, "role": "all", "per_page": self.page_size},
                                                "customers"):
            for customer in page:
                if same_email(customer.get("email"), email):
                    found[customer.get("id")] = customer
        return list(found.values())

    def _find(self, emails: list[str], out: SourceResult) -> None:
        seen_orders: set[Any] = set()
        for email in emails:
            for customer in self._customers(email):
                cid = customer["id"]
                self.discover(out, "woocommerce_customer_id", cid)
                self.record(out, "customers", cid, pick(customer, CUSTOMER_FIELDS), "identity", ["email"])
                for kind in ("billing", "shipping"):
                    if any((customer.get(kind) or {}).values()):
                        self.record(out, f"customers.{kind}", cid, pick(customer[kind], ADDRESS_FIELDS), "contact",
                                    ["email"])
                # re-check the owner: an API that ignored the filter must not leak other accounts' orders
                self._orders({"customer": cid}, [f"customer {cid} (via customers, email)"], out, seen_orders,
                             lambda order, c=cid: order.get("customer_id") == c)
            self._orders({"search": email}, ["billing.email (guest order)"], out, seen_orders,
                         lambda order, e=email: not order.get("customer_id")
                         and same_email((order.get("billing") or {}).get("email"), e))

    def _orders(self, params: dict[str, Any], matched_on: list[str], out: SourceResult, seen: set[Any],
                keep: Callable[[dict[str, Any]], bool]) -> None:
        for page in self.client.pages_by_number(f"{API}/orders", {**params, "per_page": self.page_size}, "orders"):
            for order in page:
                if order.get("id") in seen or not keep(order):
                    continue
                seen.add(order.get("id"))
                fields = pick(order, ORDER_FIELDS)
                for kind in ("billing", "shipping"):
                    if order.get(kind):
                        fields[kind] = pick(order[kind], ADDRESS_FIELDS)
                fields["line_items"] = [pick(line, LINE_FIELDS) for line in order.get("line_items") or []]
                self.record(out, "orders", order["id"], fields, "orders", matched_on)

    def _erase(self, emails: list[str], out: SourceResult) -> None:
        """Delete the matching customer accounts; orders stay (accounting retention) and are listed by find."""
        for email in emails:
            for customer in self._customers(email):
                self.client.request("DELETE", f"{API}/customers/{customer['id']}", params={"force": "true"},
                                    what="customers/delete")
                self.record(out, "customers", customer["id"], {"action": "deleted"}, "erasure", ["email"])

    def _check(self) -> None:
        self.client.get_json(f"{API}/customers", {"per_page": 1, "_fields": "id"}, what="customers")


def build(name: str, settings: dict[str, Any], context: Any = None, **kwargs: Any) -> WooCommerceSource:
    """Settings: base_url (the shop's site URL), consumer_key[_env], consumer_secret[_env], auth (basic|query)."""
    conf = SourceSettings(name, "woocommerce_rest", settings, {"consumer_key", "consumer_secret", "auth"},
                          kwargs.get("environ"))
    key, secret = conf.secret("consumer_key"), conf.secret("consumer_secret")
    mode = conf.get("auth", "basic")
    if mode not in ("basic", "query"):
        raise Misconfigured(f"source {name!r} (woocommerce_rest): auth must be \"basic\" or \"query\"")
    auth: dict[str, Any] = ({"auth": (key, secret)} if mode == "basic"
                            else {"auth_params": {"consumer_key": key, "consumer_secret": secret}})
    client = conf.client(conf.base_url(), system=SYSTEM, **injected(context, kwargs), **auth)
    return WooCommerceSource(name, client, conf.page_size(100, 100))
