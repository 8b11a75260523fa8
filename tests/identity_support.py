"""Test kit for identity, the form and delivery: a service on a temp dir with an injected clock,
a recording mailer and a fake "addresses on file" lookup (the interface of bot.gathering)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bot.config import load_config
from bot.intake import Classification, Intake
from bot.models import Message
from bot.service import Service, build_service
from integrations.base import Mailer, OutgoingMail

START = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)  # a Monday


class Clock:
    def __init__(self, start: datetime = START) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


class RecordingMailer(Mailer):
    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []

    def send(self, mail: OutgoingMail) -> str:
        self.sent.append(mail)
        return mail.message_id

    def to(self, address: str) -> list[OutgoingMail]:
        return [m for m in self.sent if m.to == address]

    def last_code(self, address: str) -> str:
        return re.findall(r"(?m)^[^\n]*?: (\d{6,})$", self.to(address)[-1].text)[-1]

    def wrong_code(self, address: str, offset: int = 1) -> str:
        """A code that is certainly not the one just sent."""
        code = self.last_code(address)
        return f"{(int(code) + offset) % 10 ** len(code):0{len(code)}d}"

    def last_link(self, address: str, kind: str = "verify") -> str:
        links = re.findall(rf"https?://\S+/{kind}/[A-Za-z0-9_-]+", self.to(address)[-1].text)
        return links[0]


@dataclass
class OnFileContact:
    email: str
    source: str
    matched_on: str


@dataclass
class FakeContacts:
    """Customers on file: email -> {identifier name: value}. Mirrors Gatherer.contacts_on_file."""

    customers: dict[str, dict[str, str]] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def contacts_on_file(self, email: str | None, identifiers: dict[str, str]) -> list[OnFileContact]:
        self.calls.append((email, dict(identifiers)))
        found = []
        for address, ids in self.customers.items():
            if email and email == address:
                found.append(OnFileContact(address, "shop_db", "email"))
            for key, value in identifiers.items():
                if ids.get(key) == value:
                    found.append(OnFileContact(address, "shop_db", key))
        return found

    def gather(self, query, rights):
        """Enough of bot.gathering's result for the pipeline: one source, answered fully."""
        self.calls.append(("gather", tuple(query.emails)))
        return _Gathered(records=[address for address in query.emails if address in self.customers])


@dataclass
class _Gathered:
    records: list[str]
    complete: bool = True

    @property
    def sources(self) -> dict[str, dict[str, str]]:
        return {"shop_db": {"status": "ok"}}


class FakeDrafter:
    """Writes a real draft through bot.drafting's file contract (vault + hash)."""

    def __init__(self, service: Service) -> None:
        from bot.vault import vault_of

        self.vault = vault_of(service)

    def draft(self, case, result) -> dict[str, Any]:
        from bot.drafting.files import DraftFile, write_draft

        files = [DraftFile("letter.txt", f"Letter for {case.ref}".encode(), "text/plain", "letter_text"),
                 DraftFile("answer.pdf", b"%PDF-1.4 answer for " + case.ref.encode(), "application/pdf", "pdf"),
                 DraftFile("data.json", b'{"records": %d}' % len(result.records), "application/json", "json")]
        hash_, entries = write_draft(self.vault, case.id, files)
        return {"hash": hash_, "files": entries, "kind": "access" if result.records else "no_data"}


def make_service(tmp_path: Path, clock: Clock, customers: dict[str, dict[str, str]] | None = None,
                 **sections: dict[str, Any]) -> tuple[Service, RecordingMailer, FakeContacts]:
    overrides = {"service": {"data_dir": str(tmp_path / "data"), "base_url": "http://dsar.test",
                             "secret_key": "test-secret", "shop_name": "Test Shop"}}
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    config = load_config(None, environ={}, overrides=overrides)
    service = build_service(config, now=clock)
    mailer, contacts = RecordingMailer(), FakeContacts(dict(customers or {}))
    service.components["mailer"] = mailer
    service.components["gatherer"] = contacts
    service.components["drafter"] = FakeDrafter(service)
    # these tests choose what is a request themselves: replace the service's real classifier
    service.components["intake"] = Intake(service.cases, _classifier)
    return service, mailer, contacts


def _classifier(message: Message) -> Classification:
    return Classification(kind="request", rights=["access"], language="en", confidence=0.9)


def email_message(sender: str, text: str = "I want a copy of my data (GDPR art. 15).", *, reply_to: str = "",
                  sender_name: str = "", subject: str = "Data request", at: datetime = START) -> Message:
    return Message(id="", channel="email", sender=sender, sender_name=sender_name, reply_to=reply_to,
                   subject=subject, text=text, received_at=at, message_id=f"<{abs(hash((sender, text, subject)))}@m>")


def run_outbox(service: Service, rounds: int = 5) -> None:
    for _ in range(rounds):
        if not service.outbox.run_due():
            return
