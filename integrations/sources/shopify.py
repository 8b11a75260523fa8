"""Shopify Admin API source: the subject's customer accounts, addresses, marketing consent and orders.

Documented shapes this follows:
- Customer search and resource: https://shopify.dev/docs/api/admin-rest/2024-07/resources/customer
  (`GET /admin/api/{version}/customers/search.json?query=email:...`, `GET .../customers/{id}/orders.json`)
- Cursor pagination by Link header (page_info): https://shopify.dev/docs/api/admin-rest/usage/pagination
- Rate limits (429 + Retry-After): https://shopify.dev/docs/api/admin-rest/usage/rate-limits
- Authentication: `X-Shopify-Access-Token` header (custom app Admin API access token)
- Erasure: GraphQL `customerRequestDataErasure`
  https://shopify.dev/docs/api/admin-graphql/latest/mutations/customerRequestDataErasure
Customer search is full-text and may return near matches; only customers whose email equals a
verified email (case-insensitively) are kept.
"""
from __future__ import annotations

from typing import Any

from integrations.base import Misconfigured, NotReady, SourceResult
from integrations.sources.api_source import ApiSource, SourceSettings, injected, pick, same_email

SYSTEM = "Shopify"
CUSTOMER_FIELDS = ("id", "email", "first_name", "last_name", "phone", "state", "verified_email", "created_at",
                   "updated_at", "note", "tags", "currency", "tax_exempt", "orders_count", "total_spent",
                   "last_order_id", "last_order_name")
ADDRESS_FIELDS = ("first_name", "last_name", "company", "address1", "address2", "city", "province", "zip",
                  "country", "country_code", "phone", "default")
ORDER_FIELDS = ("id", "name", "order_number", "email", "phone", "created_at", "processed_at", "cancelled_at",
                "cancel_reason", "closed_at", "financial_status", "fulfillment_status", "currency", "total_price",
                "subtotal_price", "total_tax", "total_discounts", "browser_ip", "note", "tags",
                "payment_gateway_names", "landing_site", "referring_site")
LINE_FIELDS = ("title", "variant_title", "sku", "quantity", "price")
ERASE_MUTATION = ("mutation erase($customerId: ID!) { customerRequestDataErasure(customerId: $customerId) "
                  "{ customerId userErrors { field message code } } }")


class ShopifySource(ApiSource):
    system = SYSTEM

    def __init__(self, name: str, client: Any, api_version: str, page_size: int) -> None:
        super().__init__(name, client)
        self.prefix = f"admin/api/{api_version}"
        self.page_size = page_size

    def _customers(self, email: str) -> list[dict[str, Any]]:
        found: dict[Any, dict[str, Any]] = {}
        for page in self.client.pages_by_link(f"{self.prefix}/customers/search.json",
                                              {"query": f"email:{email}", "limit": self.page_size},
                                              "customers", "customers/search"):
            for customer in page:
                if same_email(customer.get("email"), email):
                    found[customer.get("id")] = customer
        return list(found.values())

    def _find(self, emails: list[str], out: SourceResult) -> None:
        for email in emails:
            for customer in self._customers(email):
                self._customer_records(customer, out)
                self._orders(customer["id"], out)

    def _customer_records(self, customer: dict[str, Any], out: SourceResult) -> None:
        cid = customer["id"]
        self.discover(out, "shopify_customer_id", cid)
        self.record(out, "customers", cid, pick(customer, CUSTOMER_FIELDS), "identity", ["email"])
        for address in customer.get("addresses") or []:
            self.record(out, "customers.addresses", f"{cid}/{address.get('id', '')}",
                        pick(address, ADDRESS_FIELDS), "contact", ["email"])
        consent = pick(customer, ("email_marketing_consent", "sms_marketing_consent", "accepts_marketing",
                                  "accepts_marketing_updated_at", "marketing_opt_in_level"))
        if consent:
            self.record(out, "customers.marketing_consent", cid, consent, "consent", ["email"])

    def _orders(self, customer_id: Any, out: SourceResult) -> None:
        via = [f"customer_id {customer_id} (via customers, email)"]
        for page in self.client.pages_by_link(f"{self.prefix}/customers/{customer_id}/orders.json",
                                              {"status": "any", "limit": self.page_size}, "orders",
                                              "customers/orders"):
            for order in page:
                fields = pick(order, ORDER_FIELDS)
                for key in ("billing_address", "shipping_address"):
                    if order.get(key):
                        fields[key] = pick(order[key], ADDRESS_FIELDS)
                fields["line_items"] = [pick(line, LINE_FIELDS) for line in order.get("line_items") or []]
                self.record(out, "orders", order["id"], fields, "orders", via)

    def _erase(self, emails: list[str], out: SourceResult) -> None:
        """Ask Shopify to erase each matching customer (it does so after its own waiting period)."""
        for email in emails:
            for customer in self._customers(email):
                gid = customer.get("admin_graphql_api_id") or f"gid://shopify/Customer/{customer['id']}"
                response = self.client.request("POST", f"{self.prefix}/graphql.json", what="customerRequestDataErasure",
                                               json={"query": ERASE_MUTATION, "variables": {"customerId": gid}})
                body = self.client.decode(response, "customerRequestDataErasure") or {}
                payload = (body.get("data") or {}).get("customerRequestDataErasure") or {}
                problems = body.get("errors") or payload.get("userErrors")
                if any((p.get("extensions") or {}).get("code") == "THROTTLED" for p in body.get("errors") or []):
                    raise NotReady("Shopify throttled the erasure request (GraphQL cost limit)")
                if problems:
                    codes = ", ".join(str(p.get("code") or p.get("message", "error")) for p in problems)
                    raise Misconfigured(f"Shopify refused the erasure of customer {customer['id']}: {codes}")
                self.record(out, "customers", customer["id"], {"action": "erasure_requested"}, "erasure", ["email"])

    def _check(self) -> None:
        self.client.get_json(f"{self.prefix}/shop.json", what="shop")


def build(name: str, settings: dict[str, Any], context: Any = None, **kwargs: Any) -> ShopifySource:
    """Settings: base_url (https://<shop>.myshopify.com), access_token[_env], api_version, page_size…"""
    conf = SourceSettings(name, "shopify", settings, {"access_token", "api_version"}, kwargs.get("environ"))
    client = conf.client(conf.base_url(), system=SYSTEM, **injected(context, kwargs),
                         headers={"X-Shopify-Access-Token": conf.secret("access_token")})
    return ShopifySource(name, client, str(conf.get("api_version", "2024-10")), conf.page_size(250, 250))
