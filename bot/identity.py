"""Identifier kinds used to find a subject's records, and the rule that names and phones never identify anyone.

Two customers can share a name, a phone or a postal address (a family, a shared office line), so
these are never search keys: only e-mail addresses and account or order identifiers are. Every
place that matches records (SQL mappings, log matchers, playbook steps, queries) asks this module.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping

#: Kinds that describe a person but do not single one out; refused as search keys everywhere.
WEAK_KINDS = frozenset({
    "name", "full_name", "first_name", "firstname", "last_name", "lastname", "display_name",
    "phone", "phone_mobile", "mobile", "telephone", "billing_phone", "shipping_phone",
    "address", "address1", "address_1", "postcode", "zip", "city", "birthday", "date_of_birth",
    "ip", "ip_address", "user_agent", "company",
})

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class WeakIdentifier(ValueError):
    """Someone tried to search by a name, a phone or another shared attribute."""


def check_kind(kind: str, where: str) -> str:
    """The kind itself if it may be used as a search key; raises with `where` in the message otherwise."""
    if not _KIND.match(kind or ""):
        raise ValueError(f"{where}: identifier kind {kind!r} must be lower-case letters, digits and _")
    if kind in WEAK_KINDS or kind.endswith("_phone") or kind.endswith("_name"):
        raise WeakIdentifier(f"{where}: {kind!r} cannot identify a person (two customers can share it); "
                             "match on an e-mail address or an account/order identifier instead")
    return kind


def normalise_email(email: str) -> str:
    """Compare e-mail addresses case-insensitively, as every shop engine does in practice."""
    return email.strip().lower()


def normalise_value(kind: str, value: object) -> str | None:
    """An identifier value as a comparable string; None for blanks and the `0` that shop engines use for 'none'."""
    if value is None:
        return None
    text = str(value).strip()
    if text in ("", "0", "None"):
        return None
    return normalise_email(text) if kind == "email" else text


def merge(target: dict[str, list[str]], kind: str, values: Iterable[object]) -> list[str]:
    """Add values of one kind to `target`; returns those that were new, in order."""
    known = target.setdefault(kind, [])
    seen = set(known)
    added = []
    for value in values:
        norm = normalise_value(kind, value)
        if norm is not None and norm not in seen:
            seen.add(norm)
            known.append(norm)
            added.append(norm)
    return added


def seeds(emails: Iterable[str], identifiers: Mapping[str, Iterable[object]]) -> dict[str, list[str]]:
    """The verified starting points of a search, normalised, with weak kinds refused."""
    known: dict[str, list[str]] = {}
    merge(known, "email", emails)
    for kind, values in identifiers.items():
        check_kind(kind, "query identifiers")
        merge(known, kind, values)
    return {k: v for k, v in known.items() if v}
