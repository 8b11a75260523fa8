"""The Art. 30 register of processing: why each source, table and field is kept, for how long, for whom.

`config/register.yaml` describes every connected source. Values set on a source (`defaults`) apply
to its entities (tables, endpoints) unless an entity or one of its `fields` overrides them. A
source may `include` a fragment shipped for its shop engine (`config/register/prestashop.yaml`)
and override only what differs. Texts are plain strings or per language (`{fr: ..., en: ...}`);
purposes, recipients and categories may name an entry of the file's catalogues instead.

Loading validates everything once, at start: an error names the file, the source, the entity, the
missing key and how to fix it. The letter (Art. 15(1)(a)-(h)) is drafted from `Register.describe`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from bot.config import ConfigError

LEGAL_BASES = ("consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests")
#: subject: given by the person; observed: recorded from their use of the service (both count as
#: "provided by" the person for portability, WP29 WP242 rev.01 §1.2); derived: inferred by the shop;
#: third_party: obtained elsewhere (Art. 14: say from which source).
ORIGINS = ("subject", "observed", "derived", "third_party")
REQUIRED = ("category", "purposes", "legal_basis", "recipients", "retention", "origin")
OPTIONAL = ("legal_basis_note", "origin_source", "transfers", "automated_decision")
ENTRY_KEYS = frozenset(REQUIRED + OPTIONAL)
CATALOGUES = ("categories", "purposes", "recipients")
FALLBACK_LANGUAGE = "en"

Text = str | dict[str, str]


class RegisterError(ConfigError):
    """The register is missing something or says something impossible; the message says where and how to fix it."""


@dataclass(frozen=True)
class Processing:
    """What the register says about one source, entity and (optionally) field, in one language."""

    source: str
    entity: str
    field: str | None
    category: str  # label, e.g. "Coordonnées"
    category_code: str  # catalogue key, e.g. "contact" (Record.category)
    purposes: list[str]
    legal_basis: str  # one of LEGAL_BASES; the letter labels it via the `legal_basis.<code>` catalogue entry
    legal_basis_note: str  # e.g. the legitimate interest pursued (Art. 13(1)(d)) or the law that obliges
    recipients: list[str]
    retention: str
    origin: str  # one of ORIGINS
    origin_source: str  # where the data came from when not from the person (Art. 14(2)(f))
    transfers: list[dict[str, str]] = field(default_factory=list)  # {country, recipient, safeguard}
    automated_decision: dict[str, str] | None = None  # {logic, significance, consequences}

    @property
    def portable(self) -> bool:
        """Art. 20 covers data the person provided (incl. observed), processed by consent or contract."""
        return self.origin in ("subject", "observed") and self.legal_basis in ("consent", "contract")


def pick(text: Any, language: str) -> str:
    """One language of a localisable text: the asked one, else English, else the first given."""
    if isinstance(text, dict):
        if language in text:
            return str(text[language])
        if FALLBACK_LANGUAGE in text:
            return str(text[FALLBACK_LANGUAGE])
        return str(next(iter(text.values()), ""))
    return "" if text is None else str(text)


@dataclass
class _SourceEntry:
    defaults: dict[str, Any]
    entities: dict[str, dict[str, Any]]


class Register:
    """The validated register. Build it with `load_register`."""

    def __init__(self, path: Path, sources: dict[str, _SourceEntry], catalogues: dict[str, dict[str, Any]]):
        self.path = path
        self._sources = sources
        self._catalogues = catalogues

    @property
    def sources(self) -> list[str]:
        return sorted(self._sources)

    def entities(self, source: str) -> list[str]:
        return sorted(self._entry(source).entities)

    def categories(self, language: str = FALLBACK_LANGUAGE) -> dict[str, str]:
        """Category code -> label."""
        return {code: pick(text, language) for code, text in self._catalogues["categories"].items()}

    def _entry(self, source: str) -> _SourceEntry:
        try:
            return self._sources[source]
        except KeyError:
            raise RegisterError(f"{self.path}: no source {source!r} under sources:; add it (known: "
                                f"{', '.join(self.sources) or 'none'})") from None

    def _merged(self, source: str, entity: str, field_name: str | None) -> dict[str, Any]:
        entry = self._entry(source)
        merged = dict(entry.defaults)
        spec = entry.entities.get(entity, {})
        merged.update({k: v for k, v in spec.items() if k != "fields"})
        if field_name:
            merged.update((spec.get("fields") or {}).get(field_name, {}))
        return merged

    def missing(self, source: str, entity: str, field_name: str | None = None) -> list[str]:
        merged = self._merged(source, entity, field_name)
        return [key for key in REQUIRED if merged.get(key) in (None, "", [])]

    def describe(self, source: str, entity: str, field: str | None = None, language: str = "en") -> Processing:
        merged = self._merged(source, entity, field)
        absent = self.missing(source, entity, field)
        if absent:
            raise RegisterError(_missing_message(self.path, source, entity, absent[0]))
        lookup = self._catalogues
        return Processing(
            source=source, entity=entity, field=field,
            category=pick(lookup["categories"][merged["category"]], language),
            category_code=merged["category"],
            purposes=[pick(lookup["purposes"].get(p, p), language) for p in merged["purposes"]],
            legal_basis=merged["legal_basis"],
            legal_basis_note=pick(merged.get("legal_basis_note"), language),
            recipients=[pick(lookup["recipients"].get(r, r), language) for r in merged["recipients"]],
            retention=pick(merged["retention"], language),
            origin=merged["origin"],
            origin_source=pick(merged.get("origin_source"), language),
            transfers=[{"country": pick(t["country"], language),
                        "recipient": pick(lookup["recipients"].get(t["recipient"], t["recipient"]), language),
                        "safeguard": pick(t["safeguard"], language)} for t in merged.get("transfers") or []],
            automated_decision=({k: pick(v, language) for k, v in merged["automated_decision"].items()}
                                if merged.get("automated_decision") else None),
        )

    def coverage_problems(self, sources: Mapping[str, Iterable[str]]) -> list[str]:
        """For each configured source (name -> its entities): what the register fails to describe."""
        problems = []
        for name, entities in sources.items():
            if name not in self._sources:
                problems.append(f"{self.path}: source {name!r} is configured in [playbooks] sources but the "
                                f"register does not describe it; add sources: {name}: with its defaults")
                continue
            for entity in entities:
                absent = self.missing(name, entity)
                if absent:
                    problems.append(_missing_message(self.path, name, entity, absent[0]))
        return problems


def _missing_message(path: Path, source: str, entity: str, key: str) -> str:
    example = {"category": "category: contact", "purposes": "purposes: [orders]",
               "legal_basis": "legal_basis: contract", "recipients": "recipients: [staff]",
               "retention": "retention: {fr: 3 ans après le dernier achat, en: 3 years after the last purchase}",
               "origin": "origin: subject"}[key]
    return (f"{path}: source {source!r}, entity {entity!r}: no {key!r}; add it to the entity under "
            f"sources: {source}: entities: {entity}:, or to the source's defaults: (e.g. {example})")


# --- loading and validation --------------------------------------------------------------------
def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise RegisterError(f"register file {path} not found; set [playbooks] register to the path of "
                            "your register (start from config/register.yaml)") from None
    except yaml.YAMLError as exc:
        raise RegisterError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise RegisterError(f"{path}: expected a mapping with sources: at the top")
    return data


def _merge_entry(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    merged.setdefault("defaults", {}).update(over.get("defaults") or {})
    entities = merged.setdefault("entities", {})
    for name, spec in (over.get("entities") or {}).items():
        spec = dict(spec or {})
        target = entities.setdefault(name, {})
        fields = spec.pop("fields", None)
        target.update(spec)
        if fields:
            for fname, fspec in fields.items():
                target.setdefault("fields", {}).setdefault(fname, {}).update(fspec or {})
    return merged


class _Validator:
    def __init__(self, path: Path, catalogues: dict[str, dict[str, Any]]):
        self.path = path
        self.catalogues = catalogues

    def fail(self, where: str, message: str) -> None:
        raise RegisterError(f"{self.path}: {where}: {message}")

    def text(self, where: str, key: str, value: Any) -> None:
        if isinstance(value, str) and value.strip():
            return
        if isinstance(value, dict) and value and all(isinstance(k, str) and len(k) == 2 and isinstance(v, str)
                                                     and v.strip() for k, v in value.items()):
            return
        self.fail(where, f"{key} must be a text or one text per language, e.g. {{fr: ..., en: ...}}")

    def entry(self, where: str, spec: Any, allow_fields: bool) -> None:
        if not isinstance(spec, dict):
            self.fail(where, "expected a mapping of register keys")
        unknown = sorted(set(spec) - ENTRY_KEYS - ({"fields"} if allow_fields else set()))
        if unknown:
            self.fail(where, f"unknown key {unknown[0]!r}; known keys: {', '.join(sorted(ENTRY_KEYS))}")
        if "category" in spec and spec["category"] not in self.catalogues["categories"]:
            self.fail(where, f"category {spec['category']!r} is not defined under categories: at the top of "
                             "the file; add it there with its label per language")
        for key in ("purposes", "recipients"):
            if key in spec:
                if not isinstance(spec[key], list) or not spec[key]:
                    self.fail(where, f"{key} must be a non-empty list (entries of {key}: or texts)")
                for item in spec[key]:
                    if not (isinstance(item, str) and item in self.catalogues[key]):
                        self.text(where, key, item)
        if "legal_basis" in spec and spec["legal_basis"] not in LEGAL_BASES:
            self.fail(where, f"legal_basis {spec['legal_basis']!r} is not one of {', '.join(LEGAL_BASES)} "
                             "(Art. 6(1)(a)-(f))")
        if "origin" in spec and spec["origin"] not in ORIGINS:
            self.fail(where, f"origin {spec['origin']!r} is not one of {', '.join(ORIGINS)}")
        for key in ("retention", "legal_basis_note", "origin_source"):
            if key in spec:
                self.text(where, key, spec[key])
        for i, transfer in enumerate(spec.get("transfers") or []):
            if not isinstance(transfer, dict) or {"country", "recipient", "safeguard"} - set(transfer):
                self.fail(where, f"transfers[{i}] needs country, recipient and safeguard (Art. 46: e.g. "
                                 "standard contractual clauses, or the adequacy decision relied on)")
            for key in ("country", "recipient", "safeguard"):
                if not (key == "recipient" and transfer[key] in self.catalogues["recipients"]):
                    self.text(f"{where} transfers[{i}]", key, transfer[key])
        decision = spec.get("automated_decision")
        if decision is not None:
            if not isinstance(decision, dict) or {"logic", "significance"} - set(decision):
                self.fail(where, "automated_decision needs logic and significance (Art. 15(1)(h)), or null")
            for key, value in decision.items():
                self.text(where, f"automated_decision.{key}", value)
        if allow_fields:
            for fname, fspec in (spec.get("fields") or {}).items():
                self.entry(f"{where}, field {fname!r}", fspec, allow_fields=False)

    def complete(self, where: str, merged: dict[str, Any]) -> None:
        for key in REQUIRED:
            if merged.get(key) in (None, "", []):
                self.fail(where, f"no {key!r} (set it on the entity or in the source's defaults:)")
        if merged["legal_basis"] == "legitimate_interests" and not merged.get("legal_basis_note"):
            self.fail(where, "legal_basis legitimate_interests needs legal_basis_note naming the interest "
                             "pursued (Art. 13(1)(d), 14(2)(b))")
        if merged["origin"] == "third_party" and not merged.get("origin_source"):
            self.fail(where, "origin third_party needs origin_source saying where the data came from "
                             "(Art. 14(2)(f))")


def _add_catalogues(data: dict[str, Any], path: Path, catalogues: dict[str, dict[str, Any]]) -> None:
    """Catalogue files named by `catalogue:` first, then the file's own entries (which win)."""
    named = data.get("catalogue") or []
    for name in [named] if isinstance(named, str) else named:
        shared = _read_yaml((path.parent / name).resolve())
        for cat in CATALOGUES:
            catalogues[cat].update(shared.get(cat) or {})
    for cat in CATALOGUES:
        catalogues[cat].update(data.get(cat) or {})


def load_register(path: str | Path) -> Register:
    """Read, merge includes and validate the register; raises RegisterError naming what to fix."""
    path = Path(path)
    data = _read_yaml(path)
    unknown = sorted(set(data) - {"version", "sources", "catalogue", *CATALOGUES})
    if unknown:
        raise RegisterError(f"{path}: unknown top-level key {unknown[0]!r}; expected sources:, catalogue:, "
                            f"{', '.join(CATALOGUES)}")
    catalogues: dict[str, dict[str, Any]] = {name: {} for name in CATALOGUES}
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, dict) or not raw_sources:
        raise RegisterError(f"{path}: sources: must describe each configured source by name")
    entries: dict[str, dict[str, Any]] = {}
    for name, spec in raw_sources.items():
        spec = dict(spec or {})
        extra = sorted(set(spec) - {"include", "defaults", "entities"})
        if extra:
            raise RegisterError(f"{path}: source {name!r}: unknown key {extra[0]!r}; a source has include:, "
                                "defaults: and entities:")
        base: dict[str, Any] = {}
        if spec.get("include"):
            fragment_path = (path.parent / spec["include"]).resolve()
            fragment = _read_yaml(fragment_path)
            _add_catalogues(fragment, fragment_path, catalogues)
            base = {"defaults": fragment.get("defaults") or {}, "entities": fragment.get("entities") or {}}
        entries[name] = _merge_entry(base, spec)
    _add_catalogues(data, path, catalogues)  # the main file's entries win over the fragments'
    check = _Validator(path, catalogues)
    for cat in CATALOGUES:
        for code, text in catalogues[cat].items():
            check.text(f"{cat}: {code}", "label", text)
    sources: dict[str, _SourceEntry] = {}
    for name, entry in entries.items():
        check.entry(f"source {name!r} defaults", entry.get("defaults") or {}, allow_fields=False)
        entities = entry.get("entities") or {}
        for entity, spec in entities.items():
            where = f"source {name!r}, entity {entity!r}"
            check.entry(where, spec or {}, allow_fields=True)
            merged = {**entry["defaults"], **{k: v for k, v in (spec or {}).items() if k != "fields"}}
            check.complete(where, merged)
            for fname, fspec in ((spec or {}).get("fields") or {}).items():
                check.complete(f"{where}, field {fname!r}", {**merged, **(fspec or {})})
        sources[name] = _SourceEntry(defaults=entry["defaults"], entities={k: v or {} for k, v in entities.items()})
    return Register(path, sources, catalogues)
