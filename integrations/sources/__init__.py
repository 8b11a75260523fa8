"""Data sources: one module per kind of system, registered here by type name.

Each module exposes `build(name: str, settings: dict, context: SourceContext) -> Source`. A source
is configured as one table of `[playbooks] sources`; adding a kind of system is one module plus
one line in SOURCE_TYPES. Every source has `name` (the register and playbooks use it), `type`,
and optionally `timeout` (seconds) and `enabled`; a secret `x` may be given as `x_env` (the name of
an environment variable) instead. For example:

    [[playbooks.sources]]
    name = "shop"
    type = "sql"
    url_env = "SHOP_DB_URL"          # mysql+pymysql://readonly@db/prestashop
    preset = "prestashop"            # or woocommerce, generic; `entities` overrides/extends
    prefix = "ps_"                   # the shop's table prefix if not the preset's

    [[playbooks.sources]]
    name = "events"
    type = "event_log"
    path = "/var/log/shop/events-*.jsonl.gz"
    match = { email = "user.email", customer_id = "customer_id" }

Identifier kinds a source publishes (customer_id ...) feed the sources that accept them. Two
sources of the same engine would both publish `customer_id`: rename one (`publish =
{ customer_id = "shop2_customer_id" }`) so that its ids are never mistaken for the other's.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from integrations.base import Misconfigured, Source

#: type name -> module path; each module has `build(name, settings, context, **kwargs) -> Source`.
SOURCE_TYPES: dict[str, str] = {
    "sql": "integrations.sources.sql",
    "event_log": "integrations.sources.event_log",
    "consent_log": "integrations.sources.consent_log",
    "script": "integrations.sources.script",
    "shopify": "integrations.sources.shopify",
    "woocommerce_rest": "integrations.sources.woocommerce_rest",
    "stripe": "integrations.sources.stripe",
    "brevo": "integrations.sources.brevo",
    "mailchimp": "integrations.sources.mailchimp",
}

#: Keys every source table may have, whatever its type. `timeout` and `enabled` are the gatherer's:
#: modules get the time limit as `context.timeout` and never see these two keys.
COMMON_SETTINGS = frozenset({"name", "type", "timeout", "enabled", "description"})
GATHERER_SETTINGS = frozenset({"timeout", "enabled"})


@dataclass
class SourceContext:
    """What a source may use besides its own settings."""

    now: Callable[[], datetime]
    data_dir: Path = Path("data")
    base_dir: Path = Path(".")  # relative paths in settings resolve from here
    playbook_dir: Path = Path("playbooks")  # scripts live in playbook_dir / "scripts"
    timeout: float = 30.0  # this source's time limit in seconds (its `timeout` setting, else [playbooks])
    extra: dict[str, Any] = field(default_factory=dict)

    def path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def timeout_for(self, settings: dict[str, Any]) -> float:
        value = settings.get("timeout", self.timeout)
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise Misconfigured(f"source {settings.get('name')!r}: timeout must be a number of seconds") from None
        if seconds <= 0:
            raise Misconfigured(f"source {settings.get('name')!r}: timeout must be positive")
        return seconds


def secret(settings: dict[str, Any], key: str) -> str:
    """`key` from the settings, or from the environment variable named by `<key>_env` (keeps secrets out of files)."""
    if settings.get(f"{key}_env"):
        value = os.environ.get(str(settings[f"{key}_env"]), "")
        if not value:
            raise Misconfigured(f"source {settings.get('name')!r}: environment variable "
                                f"{settings[f'{key}_env']} (named by {key}_env) is not set")
        return value
    return str(settings.get(key) or "")


def settings_reader(name: str, settings: dict[str, Any], known: set[str] | frozenset[str]) -> Callable[..., Any]:
    """Refuses unknown keys (typos) and returns a getter for the known ones."""
    allowed = set(known) | COMMON_SETTINGS | {f"{k}_env" for k in known}
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise Misconfigured(f"source {name!r}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(allowed))}")

    def read(key: str, default: Any = None) -> Any:
        return settings.get(key, default)

    return read


def build_source(settings: dict[str, Any], context: SourceContext) -> Source:
    name, kind = settings.get("name"), settings.get("type")
    if not name or not isinstance(name, str):
        raise Misconfigured("each source needs a name (used in the register and the playbooks)")
    if kind not in SOURCE_TYPES:
        raise Misconfigured(f"source {name!r}: type {kind!r} is not one of {', '.join(sorted(SOURCE_TYPES))}")
    module = importlib.import_module(SOURCE_TYPES[kind])
    own = replace(context, timeout=context.timeout_for(settings))
    return module.build(name, {k: v for k, v in settings.items() if k not in GATHERER_SETTINGS}, own)


def build_sources(configured: list[dict[str, Any]], context: SourceContext) -> dict[str, Source]:
    """Every enabled source by name; an error names the entry and what to fix."""
    sources: dict[str, Source] = {}
    for index, settings in enumerate(configured):
        if not isinstance(settings, dict):
            raise Misconfigured(f"[playbooks] sources[{index}] must be a table with name and type")
        if settings.get("enabled", True) in (False, "false", "0", 0):
            continue
        try:
            source = build_source(dict(settings), context)
        except Misconfigured as exc:
            raise Misconfigured(f"[playbooks] sources[{index}]: {exc}") from None
        if source.name in sources:
            raise Misconfigured(f"[playbooks] sources[{index}]: the name {source.name!r} is used twice")
        sources[source.name] = source
    return sources
