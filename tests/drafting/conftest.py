"""Fixtures for drafting tests: a service on a temporary data dir with a fixed clock, verified cases, drafts."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from bot.config import load_config
from bot.drafting.drafter import Drafter
from bot.models import Case, Person
from bot.service import Service, build_service
from tests.drafting import demo_customer as demo

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=timezone.utc)
RECEIVED = datetime(2026, 2, 24, 9, 0, tzinfo=timezone.utc)
SHOP = {"shop_name": "La Boutique Démo", "dpo_email": "dpo@boutique-demo.fr", "dpo_name": "Claire Lefèvre",
        "postal_address": "La Boutique Démo SAS\n18 rue du Faubourg Saint-Denis\n75010 Paris"}


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_service(data_dir: Path, clock: Callable[[], datetime] | None = None, **sections: dict[str, Any]) -> Service:
    overrides: dict[str, dict[str, Any]] = {"service": {"data_dir": str(data_dir), **SHOP}}
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return build_service(load_config(None, environ={}, overrides=overrides), now=clock or Clock(),
                         integrations=["bot.drafting"])


def verified_case(service: Service, language: str = "fr", rights: tuple[str, ...] = ("access",),
                  email: str = demo.EMAIL, name: str = demo.NAME, received: datetime = RECEIVED) -> Case:
    case = service.cases.open(received_at=received, rights=list(rights), language=language, channel="email",
                              requester=Person(email=email, name=name))
    return service.cases.transition(case.id, "verify", "system", mutate=lambda c: c.verification.update(
        {"verified": True, "verified_email": email}))


def drafter(service: Service, extra: bool = False) -> Drafter:
    entries = {**demo.ENTRIES, **(demo.EXTRA_ENTRIES if extra else {})}
    return Drafter(service, register=demo.DemoRegister(entries))


def gather_result(extra: bool = False, more: list | None = None) -> demo.GatherResult:
    records = demo.records() + ([demo.stripe_record()] if extra else []) + list(more or [])
    sources = {"shop_db": {"status": "ok", "error": "", "count": 19}, "brevo": {"status": "ok", "error": "", "count": 1}}
    if extra:
        sources["stripe"] = {"status": "ok", "error": "", "count": 1}
    return demo.GatherResult(records, sources)


@dataclass
class Drafted:
    service: Service
    drafter: Drafter
    case: Case
    draft: dict[str, Any]

    def file(self, role: str) -> bytes:
        entry = next(f for f in self.draft["files"] if f["role"] == role)
        return self.drafter.vault.read(entry["vault_path"])

    def text(self, role: str) -> str:
        return self.file(role).decode("utf-8")

    def pdf_text(self, tmp: Path) -> str:
        path = tmp / "answer.pdf"
        path.write_bytes(self.file("pdf"))
        return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True,
                              text=True).stdout


def draft_for(tmp: Path, language: str, extra: bool = False, more: list | None = None,
              rights: tuple[str, ...] = ("access",)) -> Drafted:
    service = make_service(tmp)
    case = verified_case(service, language, rights=rights)
    d = drafter(service, extra)
    return Drafted(service, d, case, d.draft(case, gather_result(extra, more)))


@pytest.fixture(scope="session")
def drafted_fr(tmp_path_factory) -> Drafted:
    return draft_for(tmp_path_factory.mktemp("fr"), "fr")


@pytest.fixture(scope="session")
def drafted_en(tmp_path_factory) -> Drafted:
    return draft_for(tmp_path_factory.mktemp("en"), "en")


@pytest.fixture
def service(tmp_path) -> Service:
    return make_service(tmp_path)
