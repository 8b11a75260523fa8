"""Rights of others (Art. 15(4)): redact other people's data inside the subject's records.

Rules come from a YAML file (`[drafting] redaction_rules`, see config/redaction.yaml). The subject's
own email addresses, phone numbers and name are kept. Each redaction is reported as (record, field,
kind, count), never with the value, so the agent can review what was withheld.
"""
from __future__ import annotations

import copy
import re
import unicodedata
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Iterable

import yaml

from bot.models import Case
from integrations.base import Misconfigured, Record

REPO_ROOT = Path(__file__).resolve().parents[2]
MIN_PHONE_DIGITS = 9  # fewer digits are dates, amounts or references, not phone numbers
OWN_PHONE_DIGITS = 9  # compare the last 9 digits: 06... and +33 6... are the same number


@dataclass(frozen=True)
class Rules:
    free_text_fields: tuple[str, ...]
    patterns: dict[str, re.Pattern[str]]
    person_names: tuple[dict[str, str], ...]
    third_party_fields: tuple[str, ...]


def resolve_rules_path(configured: str) -> Path:
    path = Path(configured)
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path
    return path


def load_rules(configured: str) -> Rules:
    """Read and check the rules; Misconfigured names the key and the fix."""
    path = resolve_rules_path(configured)
    where = f"[drafting] redaction_rules ({path})"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise Misconfigured(f"{where}: file not found; point it at a copy of config/redaction.yaml") from None
    except yaml.YAMLError as exc:
        raise Misconfigured(f"{where}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise Misconfigured(f"{where}: expected a mapping of rules")
    patterns = {}
    for kind, pattern in (raw.get("patterns") or {}).items():
        try:
            patterns[str(kind)] = re.compile(str(pattern))
        except re.error as exc:
            raise Misconfigured(f"{where}: patterns.{kind} is not a valid regular expression ({exc})") from None
    names = tuple(dict(spec) for spec in raw.get("person_names") or [])
    for spec in names:
        if not ({"first", "last"} <= set(spec) or "full" in spec):
            raise Misconfigured(f"{where}: each person_names entry needs first+last or full, got {spec}")
    return Rules(free_text_fields=tuple(str(f).lower() for f in raw.get("free_text_fields") or []),
                 patterns=patterns, person_names=names,
                 third_party_fields=tuple(str(f).lower() for f in raw.get("third_party_fields") or []))


def _fold(text: str) -> str:
    """Case- and accent-insensitive form used to compare names and addresses."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(text.lower().split())


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _matches(name: str, globs: Iterable[str]) -> bool:
    return any(fnmatchcase(name.lower(), g) for g in globs)


@dataclass
class Subject:
    """What is the subject's own and therefore never redacted."""

    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)  # last OWN_PHONE_DIGITS digits
    names: set[str] = field(default_factory=set)  # folded "first last"

    def owns(self, kind: str, value: str) -> bool:
        if kind == "email":
            return value.lower() in self.emails
        if kind == "phone":
            return _digits(value)[-OWN_PHONE_DIGITS:] in self.phones
        if kind == "name":
            return _fold(value) in self.names
        return False


def _dicts(value: Any):
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _dicts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _dicts(v)


def _leaves(value: Any, key: str = "", path: str = ""):
    """(leaf key, path, parent container, index in parent) for each scalar inside `value`."""
    if isinstance(value, dict):
        for k, v in value.items():
            p = f"{path}.{k}" if path else str(k)
            if isinstance(v, (dict, list)):
                yield from _leaves(v, str(k), p)
            else:
                yield str(k), p, value, k
    elif isinstance(value, list):
        for i, v in enumerate(value):
            p = f"{path}[{i}]"
            if isinstance(v, (dict, list)):
                yield from _leaves(v, key, p)
            else:
                yield key, p, value, i


class Redactor:
    def __init__(self, rules: Rules, markers: dict[str, str]) -> None:
        self.rules = rules
        self.markers = markers  # kind -> text put in place of the value (from the letter language's strings)

    def _names_in(self, fields: dict[str, Any]) -> list[str]:
        found = []
        for container in _dicts(fields):
            lowered = {str(k).lower(): v for k, v in container.items()}
            for spec in self.rules.person_names:
                if "full" in spec:
                    values = [v for k, v in lowered.items() if fnmatchcase(k, spec["full"].lower())]
                else:
                    first, last = lowered.get(spec["first"].lower()), lowered.get(spec["last"].lower())
                    values = [f"{first} {last}"] if isinstance(first, str) and isinstance(last, str) else []
                for value in values:
                    if isinstance(value, str) and value.strip() and not re.search(r"[@\d]", value):
                        found.append(" ".join(value.split()))
        return found

    def subject_of(self, case: Case, records: Iterable[Record]) -> Subject:
        """The subject's own identifiers: from the case, and from the records that are plainly theirs."""
        subject = Subject()
        for person in (case.subject, case.requester if not case.third_party else None):
            if person is None:
                continue
            if person.email:
                subject.emails.add(person.email.lower())
            if person.phone:
                subject.phones.add(_digits(person.phone)[-OWN_PHONE_DIGITS:])
            if person.name:
                subject.names.add(_fold(person.name))
        verified = case.verification.get("verified_email")
        if verified:
            subject.emails.add(verified.lower())
        records = list(records)
        direct = [r for r in records if any(" via " not in m for m in r.matched_on)]
        for record in direct:
            for name in self._names_in(record.fields):
                subject.names.add(_fold(name))
        # Records found directly on the subject's identifiers, or in the subject's own name (an address
        # they entered for themselves), hold the subject's own email addresses and phone numbers.
        direct_ids = {id(r) for r in direct}
        own = direct + [r for r in records if id(r) not in direct_ids and (names := self._names_in(r.fields))
                        and all(_fold(n) in subject.names for n in names)]
        for record in own:
            for key, _path, container, index in _leaves(record.fields):
                value = container[index]
                if not isinstance(value, str):
                    continue
                if "mail" in key.lower() and "@" in value:
                    subject.emails.add(value.strip().lower())
                elif "phone" in key.lower() or "mobile" in key.lower():
                    digits = _digits(value)
                    if len(digits) >= MIN_PHONE_DIGITS:
                        subject.phones.add(digits[-OWN_PHONE_DIGITS:])
        return subject

    def redact(self, case: Case, records: list[Record]) -> tuple[list[Record], list[dict[str, Any]]]:
        """Copies of `records` with other people's data replaced, and the list of redactions."""
        subject = self.subject_of(case, records)
        others = sorted({n for r in records for n in self._names_in(r.fields) if not subject.owns("name", n)},
                        key=len, reverse=True)
        name_patterns = []
        for name in others:
            parts = name.split()
            variants = {name, " ".join(parts[1:] + parts[:1])} if len(parts) > 1 else {name}
            name_patterns += [re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, v.split())) + r"(?!\w)",
                                         re.IGNORECASE) for v in sorted(variants)]
        out, redactions = [], []
        for record in records:
            fields = copy.deepcopy(record.fields)
            counts: dict[tuple[str, str], int] = {}
            for key, path, container, index in list(_leaves(fields)):
                value = container[index]
                if not isinstance(value, str) or not value:
                    continue
                if _matches(key, self.rules.third_party_fields):
                    if not any(subject.owns(kind, value) for kind in ("email", "phone", "name")):
                        container[index] = self.markers.get("third_party", self.markers["other"])
                        counts[(path, "third_party")] = counts.get((path, "third_party"), 0) + 1
                    continue
                if not _matches(key, self.rules.free_text_fields):
                    continue
                text = value
                for kind, pattern in self.rules.patterns.items():
                    text = pattern.sub(lambda m, k=kind: self._replace(m, k, subject, counts, path), text)
                for pattern in name_patterns:
                    text = pattern.sub(lambda m: self._replace(m, "name", subject, counts, path), text)
                container[index] = text
            for (path, kind), count in sorted(counts.items()):
                redactions.append({"source": record.source, "system": record.system, "entity": record.entity,
                                   "record_id": record.record_id, "field": path, "kind": kind, "count": count})
            out.append(Record(source=record.source, system=record.system, entity=record.entity,
                              record_id=record.record_id, fields=fields, fetched_at=record.fetched_at,
                              category=record.category, matched_on=list(record.matched_on)))
        return out, redactions

    def _replace(self, match: re.Match[str], kind: str, subject: Subject, counts: dict, path: str) -> str:
        value = match.group(0)
        if kind == "phone" and len(_digits(value)) < MIN_PHONE_DIGITS:
            return value
        if subject.owns(kind, value):
            return value
        counts[(path, kind)] = counts.get((path, kind), 0) + 1
        return self.markers.get(kind, self.markers["other"])
