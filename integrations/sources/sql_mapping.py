"""The declarative mapping of a shop database: which tables hold the subject, found by what, joined how.

A mapping (a preset in `presets/*.yaml`, extended or overridden by the source's settings) lists
entities. Each entity reads one table, finds its rows by identifier kinds (`match`: kind ->
column, OR-ed), and may produce new identifier kinds from the rows it found (`produces`), which
other entities then match on: e-mail -> customer id -> orders -> order lines. Entities run in
dependency order; a cycle or a name/phone used as a key is refused when the mapping loads.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.identity import check_kind
from integrations.base import Misconfigured
from integrations.sources.masking import MASKS

PRESETS_DIR = Path(__file__).parent / "presets"
TRANSFORMS = ("ipv4_int",)
ENTITY_KEYS = {"table", "key", "match", "produces", "where", "include", "exclude", "mask", "transform",
               "optional", "records", "meta"}


@dataclass(frozen=True)
class MatchRule:
    kind: str
    column: str
    where: dict[str, list[Any]] = field(default_factory=dict)  # extra equality filters (EAV meta_key, ...)


@dataclass(frozen=True)
class MetaSpec:
    """Key/value tables (wp_usermeta, wp_postmeta): mask values by the row's key."""

    key_column: str
    value_column: str
    mask: dict[str, str]


@dataclass
class Entity:
    name: str
    table: str
    key: list[str]
    match: list[MatchRule]
    produces: dict[str, str] = field(default_factory=dict)  # kind -> column
    where: dict[str, list[Any]] = field(default_factory=dict)
    include: list[str] | None = None  # None: every column but the excluded ones
    exclude: list[str] = field(default_factory=list)
    mask: dict[str, str] = field(default_factory=dict)  # column -> one of MASKS
    transform: dict[str, str] = field(default_factory=dict)  # column -> one of TRANSFORMS
    optional: bool = False  # a module table that may not be installed
    records: bool = True  # False: a lookup that only discovers identifiers
    meta: MetaSpec | None = None


@dataclass(frozen=True)
class ContactRule:
    """Where an e-mail address on file is found from one identifier kind (for identity verification)."""

    kind: str
    table: str
    column: str
    email: str  # the e-mail column, in `table` or in `via_table`
    via_table: str = ""
    via_join: tuple[str, str] = ("", "")  # (column in table, column in via_table)


@dataclass
class Mapping:
    system: str
    entities: dict[str, Entity]
    levels: list[list[str]]  # entities in dependency order; one level's entities need only earlier levels
    accepts: list[str]  # kinds a query may start from (local names)
    publish: dict[str, str]  # local kind -> name published to other sources
    contacts: list[ContactRule]

    @property
    def published(self) -> list[str]:
        return list(dict.fromkeys(self.publish.values()))


def _rules(name: str, raw: Any, where_label: str) -> list[MatchRule]:
    rules = []
    if isinstance(raw, dict):
        raw = [{"kind": k, "column": v} for k, v in raw.items()]
    if not isinstance(raw, list) or not raw:
        raise Misconfigured(f"{where_label}: entity {name!r} needs match: (identifier kind -> column)")
    for item in raw:
        if not isinstance(item, dict) or not {"kind", "column"} <= set(item):
            raise Misconfigured(f"{where_label}: entity {name!r}: each match rule needs kind and column")
        kind = check_kind(item["kind"], f"{where_label}: entity {name!r} match")
        rules.append(MatchRule(kind, item["column"], _where(item.get("where"))))
    return rules


def _where(raw: Any) -> dict[str, list[Any]]:
    return {col: (vals if isinstance(vals, list) else [vals]) for col, vals in (raw or {}).items()}


def _entity(name: str, spec: dict[str, Any], where_label: str, prefix: tuple[str, str]) -> Entity:
    unknown = sorted(set(spec) - ENTITY_KEYS)
    if unknown:
        raise Misconfigured(f"{where_label}: entity {name!r}: unknown key {unknown[0]!r}; "
                            f"known: {', '.join(sorted(ENTITY_KEYS))}")
    table = spec.get("table", name)
    old, new = prefix
    if old and new and table.startswith(old):
        table = new + table[len(old):]
    key = spec.get("key")
    key = [key] if isinstance(key, str) else list(key or [])
    if not key:
        raise Misconfigured(f"{where_label}: entity {name!r} needs key: (the column(s) identifying a row)")
    for column, mask in (spec.get("mask") or {}).items():
        if mask not in MASKS:
            raise Misconfigured(f"{where_label}: entity {name!r}: mask for {column!r} must be one of {MASKS}")
    for column, transform in (spec.get("transform") or {}).items():
        if transform not in TRANSFORMS:
            raise Misconfigured(f"{where_label}: entity {name!r}: transform for {column!r} must be one of "
                                f"{TRANSFORMS}")
    meta = spec.get("meta")
    produces = {check_kind(k, f"{where_label}: entity {name!r} produces"): v
                for k, v in (spec.get("produces") or {}).items()}
    return Entity(name=name, table=table, key=key, match=_rules(name, spec.get("match"), where_label),
                  produces=produces, where=_where(spec.get("where")), include=spec.get("include"),
                  exclude=list(spec.get("exclude") or []), mask=dict(spec.get("mask") or {}),
                  transform=dict(spec.get("transform") or {}), optional=bool(spec.get("optional", False)),
                  records=bool(spec.get("records", True)),
                  meta=MetaSpec(meta["key"], meta["value"], dict(meta.get("mask") or {})) if meta else None)


def _levels(entities: dict[str, Entity], where_label: str) -> list[list[str]]:
    producers: dict[str, set[str]] = {}
    for entity in entities.values():
        for kind in entity.produces:
            producers.setdefault(kind, set()).add(entity.name)
    deps = {name: {p for rule in e.match for p in producers.get(rule.kind, set()) if p != name}
            for name, e in entities.items()}
    levels, done = [], set()
    while len(done) < len(entities):
        ready = sorted(n for n in entities if n not in done and deps[n] <= done)
        if not ready:
            stuck = sorted(set(entities) - done)
            raise Misconfigured(f"{where_label}: entities {', '.join(stuck)} depend on each other in a cycle; "
                                "break it by removing a match or produces entry")
        levels.append(ready)
        done.update(ready)
    return levels


def _contacts(raw: list[dict[str, Any]], where_label: str, prefix: tuple[str, str]) -> list[ContactRule]:
    rules = []
    old, new = prefix

    def table(name: str) -> str:
        return new + name[len(old):] if old and new and name.startswith(old) else name

    for item in raw or []:
        via = item.get("email_via") or {}
        try:
            rules.append(ContactRule(
                kind=check_kind(item["kind"], f"{where_label} contacts"), table=table(item["table"]),
                column=item["column"], email=via.get("column", item.get("email", "")),
                via_table=table(via["table"]) if via else "",
                via_join=tuple(via["join"]) if via else ("", "")))
        except KeyError as exc:
            raise Misconfigured(f"{where_label}: contacts entry {item!r} lacks {exc.args[0]!r}") from None
    return rules


def read_preset(name: str) -> dict[str, Any]:
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
        raise Misconfigured(f"no SQL preset {name!r}; known presets: {known}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def build_mapping(preset: str | None, overrides: dict[str, Any] | None = None, prefix: str = "",
                  only: list[str] | None = None, where_label: str = "sql source") -> Mapping:
    """The preset (if any) with the source's own entities merged over it, validated."""
    raw = copy.deepcopy(read_preset(preset)) if preset else {"entities": {}}
    overrides = overrides or {}
    for name, spec in (overrides.get("entities") or {}).items():
        if spec is None:  # `ps_mail: null` in the settings removes a preset entity
            raw["entities"].pop(name, None)
        else:
            raw["entities"][name] = {**raw["entities"].get(name, {}), **spec}
    for key in ("system", "accepts", "publish", "contacts"):
        if key in overrides:
            raw[key] = overrides[key]
    if only:
        missing = sorted(set(only) - set(raw["entities"]))
        if missing:
            raise Misconfigured(f"{where_label}: tables lists {missing[0]!r}, which the mapping does not define")
        raw["entities"] = {k: v for k, v in raw["entities"].items() if k in only}
    if not raw.get("entities"):
        raise Misconfigured(f"{where_label}: no entities; set preset: (prestashop, woocommerce, generic) "
                            "or describe entities:")
    prefix_pair = (raw.get("default_prefix", ""), prefix)
    entities = {name: _entity(name, spec or {}, where_label, prefix_pair) for name, spec in raw["entities"].items()}
    accepts = [check_kind(k, f"{where_label} accepts") for k in raw.get("accepts") or ["email"]]
    matched_kinds = {rule.kind for e in entities.values() for rule in e.match}
    publish = {k: check_kind(v, f"{where_label} publish") for k, v in (raw.get("publish") or {}).items()
               if any(k in e.produces for e in entities.values())}
    if "accepts" not in overrides:  # a preset cut down by `tables:` accepts what its remaining tables match on
        accepts = [k for k in accepts if k in matched_kinds]
    unusable = sorted(set(accepts) - matched_kinds)
    if unusable:
        raise Misconfigured(f"{where_label}: accepts {unusable[0]!r} but no entity matches on it")
    return Mapping(system=raw.get("system", "Database"), entities=entities, levels=_levels(entities, where_label),
                   accepts=accepts, publish=publish, contacts=_contacts(raw.get("contacts"), where_label,
                                                                        prefix_pair))
