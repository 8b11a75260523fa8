"""A small Python script kept beside the playbooks, for a system that has no connector yet.

The script (`playbooks/scripts/<file>.py`) defines one function:
`find(subject: SubjectQuery, context: ScriptContext) -> list[Record]`. It runs like any source:
same time limit, same provenance (the source name and fetch time are set here, whatever the script
wrote) and the same failure reporting. Settings: `script` (file name), `entities` (what the
register must describe), `accepts`/`publishes` (identifier kinds), and free `options` for the script.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from bot.identity import check_kind
from integrations.base import Misconfigured, Record, Source, SourceResult, SubjectQuery
from integrations.sources import SourceContext, settings_reader
from integrations.sources.masking import clean_fields

SETTINGS = {"script", "entities", "accepts", "publishes", "options", "system"}


@dataclass
class ScriptContext:
    """What a script gets besides the subject: its options, the clock, and a record maker."""

    source: str
    system: str
    options: dict[str, Any]
    now: Callable[[], Any]
    base_dir: Path
    discovered: dict[str, list[str]] = field(default_factory=dict)  # identifiers the script learnt

    def path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def record(self, entity: str, record_id: object, fields: dict[str, Any], matched_on: list[str]) -> Record:
        return Record(source=self.source, system=self.system, entity=entity, record_id=str(record_id),
                      fields=fields, fetched_at=self.now().isoformat(), matched_on=list(matched_on))


def load_script(path: Path) -> ModuleType:
    if not path.is_file():
        raise Misconfigured(f"script {path} not found (scripts live in the playbooks' scripts/ folder)")
    spec = importlib.util.spec_from_file_location(f"dsarbot_playbook_script_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise Misconfigured(f"script {path} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "find", None)):
        raise Misconfigured(f"script {path} must define find(subject, context) -> list[Record]")
    return module


class ScriptSource(Source):
    def __init__(self, name: str, system: str, path: Path, entities: list[str], accepts: list[str],
                 publishes: list[str], options: dict[str, Any], context: SourceContext) -> None:
        self.name = name
        self.system = system
        self.path = path
        self._module = load_script(path)
        self._entities = entities
        self._accepts = [check_kind(k, f"script {name!r} accepts") for k in accepts]
        self._publishes = [check_kind(k, f"script {name!r} publishes") for k in publishes]
        self._options = options
        self._context = context

    def accepts(self) -> list[str]:
        return self._accepts

    def publishes(self) -> list[str]:
        return self._publishes

    def entities(self) -> list[str]:
        return self._entities

    def check(self) -> str | None:
        checker = getattr(self._module, "check", None)
        return checker(self._options) if callable(checker) else None

    def find(self, query: SubjectQuery) -> SourceResult:
        context = ScriptContext(self.name, self.system, dict(self._options), self._context.now,
                                self._context.base_dir)
        visible = SubjectQuery(emails=list(query.emails) if "email" in self._accepts else [],
                               identifiers={k: v for k, v in query.identifiers.items() if k in self._accepts},
                               case_id=query.case_id)
        found = self._module.find(visible, context)
        if not isinstance(found, list) or not all(isinstance(r, Record) for r in found):
            raise Misconfigured(f"script {self.path.name} must return a list of Record")
        fetched_at = self._context.now().isoformat()
        records = []
        for record in found:
            if record.entity not in self._entities:
                raise Misconfigured(f"script {self.path.name} returned entity {record.entity!r}, not declared in "
                                    "its entities setting (the register must describe it)")
            # Provenance is ours to state, not the script's.
            records.append(Record(source=self.name, system=self.system, entity=record.entity,
                                  record_id=str(record.record_id), fields=clean_fields(record.fields),
                                  fetched_at=fetched_at, matched_on=list(record.matched_on)))
        discovered = {k: v for k, v in context.discovered.items() if k in self._publishes and v}
        return SourceResult(self.name, records, discovered)


def build(name: str, settings: dict[str, Any], context: SourceContext) -> ScriptSource:
    read = settings_reader(name, settings, SETTINGS)
    script = str(read("script") or "")
    if not script or "/" in script or "\\" in script or not script.endswith(".py"):
        raise Misconfigured(f"source {name!r}: script must be the file name of a .py file in "
                            f"{context.playbook_dir / 'scripts'}")
    entities = list(read("entities") or [])
    if not entities:
        raise Misconfigured(f"source {name!r}: entities must list what the script returns (for the register)")
    return ScriptSource(name, read("system", name), context.playbook_dir / "scripts" / script, entities,
                        list(read("accepts") or ["email"]), list(read("publishes") or []),
                        dict(read("options") or {}), context)
