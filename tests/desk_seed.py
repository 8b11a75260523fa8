"""A service with a seeded store for desk tests: cases in every interesting state, built through intake
and CaseBook (the production paths), at a fixed time.

Today is Wednesday 14 May 2025, 10:00 in Paris. The cases, by due date:
- `overdue`   received Mon 7 Apr, awaiting identity, due 7 May (7 days late), too late to extend;
- `due_soon`  received Fri 18 Apr, due Mon 19 May, with an open flag (the requester wrote again);
- `drafted`   received Thu 24 Apr, verified, drafted with a letter and an export, due Mon 26 May;
- `failed`    received Wed 30 Apr, gathering failed (one source down), due Fri 30 May;
- `hostile`   received Mon 12 May, subject `<script>alert(1)</script> {{7*7}}`, an attachment, due 12 Jun;
- `dismissed` received Fri 2 May, dismissed as not a request.
Plus one auto-reply (in `ignored`), one quarantined item and one sent mail.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from werkzeug.security import generate_password_hash

from bot.config import Config, load_config
from bot.intake import Classification, Intake
from bot.models import Attachment, Case, Message
from bot.service import Service, build_service
from bot.vault import Vault
from tests.conftest import FakeClock

NOW = datetime(2025, 5, 14, 8, 0, tzinfo=timezone.utc)  # 10:00 in Paris
PASSWORD = "correct horse battery"
AGENTS = ("alice", "bob")
HOSTILE_SUBJECT = "<script>alert(1)</script> {{7*7}}"
HOSTILE_TEXT = "<img src=x onerror=alert(2)> {{ config }} \"quoted\" & more"


@lru_cache(maxsize=None)
def password_hash(password: str = PASSWORD) -> str:
    # Few pbkdf2 rounds: tests check the flow, not the hash's cost (production uses scrypt).
    return generate_password_hash(password, method="pbkdf2:sha256:1000")


def desk_config(data_dir: Path, **desk: object) -> Config:
    return load_config(None, environ={}, overrides={
        "service": {"data_dir": str(data_dir), "secret_key": "test-secret-key"},
        "desk": {"agents": {login: password_hash() for login in AGENTS}, **desk},
    })


@dataclass
class Seeded:
    service: Service
    clock: FakeClock
    refs: dict[str, str]
    ignored_message_id: str

    def case(self, name: str) -> Case:
        return self.service.cases.by_ref(self.refs[name])


_SENDERS = {
    # sender -> what the classifier says about it (the real classifier is another module's job)
    "paul.overdue@example.fr": Classification("request", ["access"], "fr", 0.93, ["« droit d'accès »", "art. 15"]),
    "nina.soon@example.com": Classification("request", ["erasure"], "en", 0.88, ["'delete my account'"]),
    "claire.draft@example.fr": Classification("request", ["access", "portability"], "fr", 0.97,
                                              ["« copie de mes données »", "RGPD"]),
    "omar.failed@example.fr": Classification("request", ["access"], "fr", 0.9, ["« accès »"]),
    "mallory@example.net": Classification("request", ["access"], "en", 0.61, ["'my data'"]),
    "newsletter@example.org": Classification("request", ["access"], "en", 0.55, ["'data'"]),
    "mailer-daemon@example.net": Classification("auto_reply", [], "en", 0.99, ["Auto-Submitted: auto-replied"]),
}


def _classify(message: Message) -> Classification:
    return _SENDERS[message.sender]


def _message(sender: str, subject: str, text: str, received: datetime, name: str = "",
             attachments: list[Attachment] | None = None, message_id: str = "") -> Message:
    return Message(id="", channel="email", sender=sender, sender_name=name, subject=subject, text=text,
                   received_at=received, attachments=attachments or [], message_id=message_id or
                   f"<{hashlib.sha1((sender + subject).encode()).hexdigest()[:16]}@mail.example>")


def _at(day: int, month: int = 5, hour: int = 9) -> datetime:
    return datetime(2025, month, day, hour, 0, tzinfo=timezone.utc)


LETTER = """<!doctype html><html lang="fr"><head><meta charset="utf-8"><style>
body{font:15px/1.5 Georgia,serif;margin:1.5rem 2rem;color:#222} h1{font-size:1.1rem}</style></head>
<body><p>Madame Claire Draft,</p><h1>Votre demande d'accès DSR</h1>
<p>Vous nous avez demandé une copie de vos données. Voici ce que nous détenons.</p>
<script>document.body.innerHTML = "SCRIPT RAN"</script></body></html>"""


def seed(data_dir: Path, **desk: object) -> Seeded:
    clock = FakeClock(NOW)
    service = build_service(desk_config(data_dir, **desk), now=clock)
    cases, vault = service.cases, Vault(service.data_dir)
    service.components["vault"] = vault
    intake = Intake(cases, _classify)
    refs: dict[str, str] = {}

    def receive(name: str, message: Message) -> Case:
        result = intake.receive(message)
        refs[name] = result.case_ref
        return cases.get(result.case_id)

    case = receive("overdue", _message("paul.overdue@example.fr", "Demande d'accès à mes données",
                                       "Bonjour,\nje souhaite exercer mon droit d'accès (art. 15 RGPD).\nPaul",
                                       _at(7, 4), "Paul Overdue"))
    cases.transition(case.id, "request_identity", "system")

    case = receive("due_soon", _message("nina.soon@example.com", "Please delete my account",
                                        "Hello, please delete my account and all my data. Nina", _at(18, 4),
                                        "Nina Soon"))
    cases.flag(case.id, "new_message", "the requester wrote again: read the new message")

    case = receive("drafted", _message("claire.draft@example.fr", "Copie de mes données",
                                       "Bonjour, merci de m'envoyer une copie de mes données.", _at(24, 4),
                                       "Claire Draft"))
    cases.transition(case.id, "verify", "system", mutate=lambda c: c.verification.update(
        {"method": "email_code", "verified": True, "verified_email": "claire.draft@example.fr",
         "differs_from_sender": False}))
    cases.transition(case.id, "start_gathering", "system")
    vault.write(f"drafts/{case.id}/letter.html", LETTER.encode())
    vault.write(f"drafts/{case.id}/export.csv", b"order,date\nA-1001,2024-11-02\n")
    draft = {"hash": hashlib.sha256(b"draft-1").hexdigest(), "at": _at(13).isoformat(),
             "letter_html_path": f"drafts/{case.id}/letter.html",
             "files": [{"name": "export.csv", "vault_path": f"drafts/{case.id}/export.csv", "size": 30}]}

    def keep_draft(c: Case) -> None:
        c.draft = draft
        c.gathering = {"sources": {"shop_db": {"status": "ok", "records": 3}, "newsletter": {"status": "ok",
                                                                                           "records": 1}},
                       "complete": True, "records": 4, "at": _at(13).isoformat()}

    cases.transition(case.id, "gathered", "system", mutate=keep_draft, detail={"draft_hash": draft["hash"]})

    case = receive("failed", _message("omar.failed@example.fr", "Accès RGPD", "Je veux mes données.", _at(30, 4),
                                      "Omar Failed"))
    cases.transition(case.id, "verify", "system", mutate=lambda c: c.verification.update(
        {"method": "email_code", "verified": True, "verified_email": "omar.failed@example.fr"}))
    cases.transition(case.id, "start_gathering", "system")
    cases.transition(case.id, "gathering_failed", "system", mutate=lambda c: c.gathering.update(
        {"sources": {"shop_db": {"status": "ok", "records": 2}, "crm": {"status": "failed", "error": "timeout"}},
         "complete": False}))
    cases.flag(case.id, "sources_failed", "no answer from: crm (retry or refuse with reasons)")

    vault.write("attachments/hostile/0", b"%PDF-1.4 not really")
    receive("hostile", _message("mallory@example.net", HOSTILE_SUBJECT, HOSTILE_TEXT, _at(12), "<b>Mallory</b>",
                                attachments=[Attachment("../../etc/passwd<script>.html", "text/html", 19,
                                                        "0" * 64, "attachments/hostile/0")]))

    case = receive("dismissed", _message("newsletter@example.org", "Your data newsletter", "Read our news.",
                                         _at(2), "News"))
    cases.transition(case.id, "dismiss", "system")

    ignored = intake.receive(_message("mailer-daemon@example.net", "Absent du bureau <b>jusqu'au 20</b>",
                                      "Je suis absent.", _at(13), "Mailer"))
    service.store.put("quarantine", "q1", {"received_at": _at(13, hour=11).isoformat(), "reason": "too_large",
                                           "size": 48_000_000, "sender": "big<file>@example.com"})
    sent = service.data_dir / "sent-mail"
    sent.mkdir()
    (sent / "0001-ack.eml").write_bytes(
        b"From: Demo Shop <confidentialite@shop.example>\r\nTo: nina.soon@example.com\r\n"
        b"Subject: =?utf-8?q?Votre_demande_<b>re=C3=A7ue</b>?=\r\nDate: Fri, 18 Apr 2025 11:00:00 +0200\r\n"
        b"Auto-Submitted: auto-generated\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Hello <script>alert(3)</script>, we received your request.\r\n")
    return Seeded(service, clock, refs, ignored.message_id)
