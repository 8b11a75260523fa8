"""Small in-memory sources, register and playbooks for testing the gathering engine without servers."""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import yaml

from bot.gathering import Gatherer
from bot.models import Right
from bot.playbooks import Playbooks
from bot.register import load_register
from integrations.base import OnFileContact, Record, Source, SourceResult, SubjectQuery
from integrations.sources import SourceContext, build_sources

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)


class FakeSource(Source):
    """Answers from a function of the query; records every query it was asked."""

    def __init__(self, name: str, answer: Callable[[SubjectQuery], SourceResult], accepts=("email",),
                 publishes=(), entities=("items",), contacts: dict[str, str] | None = None) -> None:
        self.name, self.system = name, f"System {name}"
        self.answer = answer
        self._accepts, self._publishes, self._entities = list(accepts), list(publishes), list(entities)
        self._contacts = contacts or {}
        self.queries: list[SubjectQuery] = []
        self.release = threading.Event()

    def find(self, query: SubjectQuery) -> SourceResult:
        self.queries.append(query)
        return self.answer(query)

    def accepts(self) -> list[str]:
        return self._accepts

    def publishes(self) -> list[str]:
        return self._publishes

    def entities(self) -> list[str]:
        return self._entities

    def contacts(self, identifiers):
        return [OnFileContact(email, self.name, kind) for kind, values in identifiers.items() for v in values
                for key, email in self._contacts.items() if key == f"{kind}:{v}"]


def record(source: str, record_id: str, matched_on: list[str], entity: str = "items", **fields) -> Record:
    return Record(source=source, system="", entity=entity, record_id=record_id, fields=fields, fetched_at="",
                  matched_on=matched_on)


def write_register(path: Path, names: list[str], portable: set[str] = frozenset()) -> Path:
    sources = {}
    for name in names:
        sources[name] = {"defaults": {
            "category": "orders", "purposes": ["Selling"], "legal_basis": "contract" if name in portable
            else "legitimate_interests", "legal_basis_note": "Keeping the shop running", "recipients": ["Staff"],
            "retention": {"en": "3 years", "fr": "3 ans"}, "origin": "subject"}}
    path.write_text(yaml.safe_dump({"categories": {"orders": {"en": "Orders", "fr": "Commandes"}},
                                    "sources": sources}), encoding="utf-8")
    return path


def write_playbooks(directory: Path, access_steps: list[dict] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "access.yaml").write_text(yaml.safe_dump({"right": "access",
                                                           "steps": access_steps or [{"sources": "all"}]}))
    for right in Right:
        if right.value != "access":
            body = {"right": right.value, "extends": "access"}
            if right.value == "portability":
                body["portable_only"] = True
            (directory / f"{right.value}.yaml").write_text(yaml.safe_dump(body))
    return directory


def make_gatherer(tmp_path: Path, sources: list[Source], timeouts: dict[str, float] | None = None,
                  portable: set[str] = frozenset(), access_steps: list[dict] | None = None) -> Gatherer:
    """Fake sources plus the playbooks' script steps, bound like bot.gathering.build_gatherer does."""
    playbooks = Playbooks(write_playbooks(tmp_path / "playbooks", access_steps))
    by_name = {s.name: s for s in sources}
    by_name.update(build_sources(playbooks.script_settings(),
                                 SourceContext(now=lambda: NOW, playbook_dir=playbooks.directory)))
    register = load_register(write_register(tmp_path / "register.yaml", list(by_name), portable))
    playbooks.bind(by_name, {n: (timeouts or {}).get(n, 5.0) for n in by_name})
    return Gatherer(by_name, playbooks, register, now=lambda: NOW)
