"""Building SaaS sources from settings (errors name the key) and the shared HTTP helpers, without a server."""
from __future__ import annotations

import importlib
import re
from datetime import datetime, timezone
from typing import Any

import pytest

from integrations.base import Misconfigured
from integrations.sources import SOURCE_TYPES
from integrations.sources.http import HttpClient, next_link, parse_retry_after

NOW = datetime(2024, 6, 3, 12, 0, tzinfo=timezone.utc)


def test_registry_lists_buildable_modules() -> None:
    for kind in ("shopify", "woocommerce_rest", "stripe", "brevo", "mailchimp"):
        assert callable(importlib.import_module(SOURCE_TYPES[kind]).build)


@pytest.mark.parametrize("kind,settings,message", [
    ("shopify", {"base_url": "http://shop.example", "access_token": "t"}, "must use https"),
    ("shopify", {"base_url": "https://shop.example"}, "access_token is required"),
    ("stripe", {"secret_key": "k", "secretkey": "k"}, "unknown setting 'secretkey'"),
    ("stripe", {"secret_key_env": "STRIPE_KEY"}, "environment variable STRIPE_KEY"),
    ("woocommerce_rest", {"base_url": "https://shop.example", "consumer_key": "a", "consumer_secret": "b",
                          "auth": "oauth"}, "auth must be"),
    ("mailchimp", {"api_key": "nodatacenter"}, "no data center suffix"),
    ("brevo", {"api_key": "k", "timeout_seconds": -1}, "timeout_seconds must be a positive number"),
    ("mailchimp", {"api_key": "k-us6", "page_size": 5000}, "page_size must be between 1 and 1000"),
])
def test_configuration_errors_name_the_key(kind: str, settings: dict[str, Any], message: str) -> None:
    module = importlib.import_module(SOURCE_TYPES[kind])
    with pytest.raises(Misconfigured, match=re.escape(message)):
        module.build("s", settings, None, environ={})


def test_mailchimp_datacenter_comes_from_the_key() -> None:
    source = importlib.import_module(SOURCE_TYPES["mailchimp"]).build("mc", {"api_key": "abc-us21"}, None)
    assert source.client.base_url == "https://us21.api.mailchimp.com"


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("2.5", lambda: NOW) == 2.5
    assert parse_retry_after("Mon, 03 Jun 2024 12:00:05 GMT", lambda: NOW) == 5.0
    assert parse_retry_after("soon", lambda: NOW) is None and parse_retry_after(None, lambda: NOW) is None


def test_next_link_reads_rfc8288_headers() -> None:
    header = ('<https://s.myshopify.com/admin/api/2024-10/customers.json?page_info=p1&limit=2>; rel="previous", '
              '<https://s.myshopify.com/admin/api/2024-10/customers.json?page_info=n2&limit=2>; rel="next"')
    assert next_link(header) == "https://s.myshopify.com/admin/api/2024-10/customers.json?page_info=n2&limit=2"
    assert next_link(header.split(", ")[0]) is None and next_link(None) is None


def test_client_stays_inside_its_base_url() -> None:
    client = HttpClient("https://shop.example/boutique", system="X")
    assert client.url("https://shop.example:443/boutique/wp-json/x") == "https://shop.example:443/boutique/wp-json/x"
    for elsewhere in ("https://evil.example/boutique/x", "http://shop.example/boutique/x", "https://shop.example/x"):
        with pytest.raises(Misconfigured):
            client.url(elsewhere)
