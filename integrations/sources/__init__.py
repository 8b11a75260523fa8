"""Data sources: each type name maps to a module exposing `build(name, settings, context) -> Source`."""
from __future__ import annotations

#: The registry of source types. Each module exposes
#: `build(name: str, settings: dict, context, **kwargs) -> integrations.base.Source`.
SOURCE_TYPES: dict[str, str] = {
    "shopify": "integrations.sources.shopify",
    "woocommerce_rest": "integrations.sources.woocommerce_rest",
    "stripe": "integrations.sources.stripe",
    "brevo": "integrations.sources.brevo",
    "mailchimp": "integrations.sources.mailchimp",
}
