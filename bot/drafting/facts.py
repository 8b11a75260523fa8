"""What the letter says about this person: the records found, grouped, and the register's answers for them.

Only what applies to the data actually found: a transfer, a third-party source or an automated
decision appears when the register says so for a table or field that holds some of this
person's data, never because the shop has one somewhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

from integrations.base import Record


class Processing(Protocol):
    """One register entry, as `bot.register.Register.describe` returns it (optional: legal_basis_note)."""

    category: str  # the label in the letter's language
    purposes: list[str]
    legal_basis: str  # an Art. 6(1) code (consent, contract, legal_obligation, legitimate_interests, ...)
    recipients: list[str]
    retention: str
    origin: str
    origin_source: str
    transfers: list[dict[str, str]]
    automated_decision: dict[str, Any] | None


class Register(Protocol):
    def describe(self, source: str, entity: str, field: str | None = None, language: str = "en") -> Processing:
        """The register entry for a table (or one of its fields); raises when the register has none
        (bot.register raises RegisterError, a ValueError; a LookupError is accepted too)."""


#: Register `origin` values meaning "collected from the person" (given by them, or observed from their
#: use of the shop); anything else (derived, third_party) is reported under Art. 15(1)(g).
SUBJECT_ORIGINS = frozenset({"", "subject", "observed"})


@dataclass
class CategorySummary:
    category: str
    count: int = 0
    entities: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)


@dataclass
class SystemSummary:
    system: str
    count: int = 0
    categories: list[CategorySummary] = field(default_factory=list)


@dataclass
class Facts:
    total: int
    systems: list[SystemSummary]
    processing: list[dict[str, Any]]  # one row per category: purposes, legal bases, retention, systems
    recipients: list[str]
    transfers: list[dict[str, str]]
    origins: list[dict[str, str]]  # data not collected from the person: category, system, source
    automated: list[dict[str, Any]]
    consent_based: bool
    missing: list[str]  # "source.entity" the register does not describe: the agent must look
    entity_categories: dict[tuple[str, str], str] = field(default_factory=dict)  # (source, entity) -> category

    @property
    def categories(self) -> list[str]:
        return [row["category"] for row in self.processing]

    category_labels: dict[str, str] = field(default_factory=dict)  # register category code -> label

    def category_of(self, record: Record) -> str:
        return (self.category_labels.get(record.category) or record.category
                or self.entity_categories.get((record.source, record.entity)) or record.entity)


def _add(items: list, value: Any) -> None:
    if value and value not in items:
        items.append(value)


def _has_value(value: Any) -> bool:
    return value not in (None, "", [], {})


def build_facts(records: Iterable[Record], register: Register, language: str) -> Facts:
    records = list(records)
    entity_entries: dict[tuple[str, str], Processing | None] = {}
    field_entries: dict[tuple[str, str, str], Processing | None] = {}
    missing: list[str] = []

    def describe(source: str, entity: str, name: str | None = None) -> Processing | None:
        try:
            return register.describe(source, entity, name, language=language)
        except (LookupError, ValueError):
            return None

    category_labels = register.categories(language) if hasattr(register, "categories") else {}

    systems: dict[str, SystemSummary] = {}
    for record in records:
        key = (record.source, record.entity)
        if key not in entity_entries:
            entity_entries[key] = describe(record.source, record.entity)
            if entity_entries[key] is None:
                _add(missing, f"{record.source}.{record.entity}")
        entry = entity_entries[key]
        system = systems.setdefault(record.system, SystemSummary(record.system))
        system.count += 1
        category = (category_labels.get(record.category) or record.category or
                    (entry.category if entry is not None else "") or record.entity)
        summary = next((c for c in system.categories if c.category == category), None)
        if summary is None:
            summary = CategorySummary(category)
            system.categories.append(summary)
        summary.count += 1
        _add(summary.entities, record.entity)
        for name, value in record.fields.items():
            if not _has_value(value):
                continue
            _add(summary.fields, name)
            fkey = (record.source, record.entity, name)
            if fkey not in field_entries:
                field_entries[fkey] = describe(record.source, record.entity, name) if entry is not None else None

    rows: dict[str, dict[str, Any]] = {}
    recipients: list[str] = []
    transfers: list[dict[str, str]] = []
    origins: list[dict[str, str]] = []
    automated: list[dict[str, Any]] = []
    consent = False
    used = [(s, e, entry) for (s, e), entry in entity_entries.items() if entry is not None]
    used += [(s, e, entry) for (s, e, _), entry in field_entries.items() if entry is not None]
    system_of = {(r.source, r.entity): r.system for r in records}
    for source, entity, entry in used:
        system = system_of[(source, entity)]
        row = rows.setdefault(entry.category, {"category": entry.category, "purposes": [], "legal_bases": [],
                                               "legal_basis_notes": [], "retention": [], "systems": []})
        for purpose in entry.purposes or []:
            _add(row["purposes"], purpose)
        _add(row["legal_bases"], entry.legal_basis)
        _add(row["legal_basis_notes"], getattr(entry, "legal_basis_note", ""))
        _add(row["retention"], entry.retention)
        _add(row["systems"], system)
        consent = consent or "consent" in (entry.legal_basis or "").lower()
        for recipient in entry.recipients or []:
            _add(recipients, recipient)
        for transfer in entry.transfers or []:
            _add(transfers, {k: str(transfer.get(k, "")) for k in ("country", "recipient", "safeguard")})
        if (entry.origin or "").lower() not in SUBJECT_ORIGINS:
            _add(origins, {"category": entry.category, "system": system, "origin": entry.origin,
                           "source": entry.origin_source})
        if entry.automated_decision:
            decision = dict(entry.automated_decision)
            decision.setdefault("category", entry.category)
            _add(automated, decision)
    return Facts(total=len(records), systems=sorted(systems.values(), key=lambda s: (-s.count, s.system)),
                 processing=list(rows.values()), recipients=recipients, transfers=transfers, origins=origins,
                 automated=automated, consent_based=consent, missing=missing,
                 entity_categories={k: e.category for k, e in entity_entries.items() if e is not None},
                 category_labels=dict(category_labels))
