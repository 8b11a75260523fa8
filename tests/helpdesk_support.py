"""Shared test material for the helpdesk tests: a settable clock, a tiny classifier, service builders."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bot.config import load_config
from bot.intake import Classification, Intake
from bot.models import Message
from bot.service import Service, build_service
from tests.fakes import freshdesk as fd
from tests.fakes import zendesk as zd


class Clock:
    """Injected time: tests move it, nothing sleeps."""

    def __init__(self, start: datetime | None = None) -> None:
        self.value = (start or datetime.now(timezone.utc)).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)

    def iso(self) -> str:
        return self.value.strftime("%Y-%m-%dT%H:%M:%SZ")


_REQUEST_WORDS = ("données", "data", "rgpd", "gdpr", "article 15", "effacer", "supprimer", "erase", "delete")
_ERASE_WORDS = ("effacer", "supprimer", "erase", "delete")


def tiny_classifier(message: Message) -> Classification:
    """Keyword rules, enough to tell a request from a question in these tests."""
    text = f"{message.subject}\n{message.text}".lower()
    if not any(word in text for word in _REQUEST_WORDS):
        return Classification("other", confidence=0.9)
    rights = ["erasure"] if any(word in text for word in _ERASE_WORDS) else ["access"]
    language = "fr" if any(word in text for word in ("données", "rgpd", "effacer", "supprimer")) else "en"
    return Classification("request", rights, language, 0.9, ["keyword"])


def helpdesk_sections(kind: str, url: str) -> dict[str, dict[str, Any]]:
    """The config sections of a helpdesk whose API is the fake at `url`."""
    sections: dict[str, dict[str, Any]] = {"helpdesk": {"kind": kind}}
    if kind == "zendesk":
        sections["zendesk"] = {"base_url": url, "email": zd.EMAIL, "api_token": zd.TOKEN,
                               "webhook_secret": zd.SECRET, "field_ids": zd.FIELD_IDS}
    elif kind == "freshdesk":
        sections["freshdesk"] = {"base_url": url, "api_key": fd.API_KEY, "webhook_secret": fd.SECRET}
    return sections


def helpdesk_config(data_dir: Path, kind: str, url: str, **extra: Any):
    sections: dict[str, dict[str, Any]] = {"service": {"data_dir": str(data_dir)}, **helpdesk_sections(kind, url)}
    for section, values in extra.items():
        sections.setdefault(section, {}).update(values)
    return load_config(None, environ={}, overrides=sections)


def make_service(data_dir: Path, kind: str, url: str, clock: Clock, **extra: Any) -> Service:
    """The service with only the helpdesk integration, and an Intake on the tiny classifier."""
    service = build_service(helpdesk_config(data_dir, kind, url, **extra), now=clock,
                            integrations=["integrations.helpdesk_sync"])
    service.components.setdefault("intake", Intake(service.cases, tiny_classifier))
    return service


def run_outbox(service: Service, rounds: int = 20) -> None:
    """Run what is due until nothing is (time does not move here)."""
    for _ in range(rounds):
        if not service.outbox.run_due():
            return


def effects(service: Service, kind: str | None = None) -> list[dict[str, Any]]:
    docs = service.store.find("outbox")
    return [d for d in docs if kind is None or d["kind"] == kind]
