"""Fuzz targets: the real service on a temporary data dir, fed one input at a time and checked after each.

`MailTarget.feed(raw)` runs the mailbox's own path (`integrations.mailbox.mail_message`: parse,
attachments into the vault, original kept when unreadable) then `Intake.receive`, then the outbox
(acknowledgement, verification) and the desk page an agent would open. Every input must end as
exactly one of: a case opened (flagged when it could not be read), a message attached to a case,
an `ignored` record with its reason, or a duplicate of an input already on record. Anything else
(an exception, no record, two records, an outbox handler raising, a desk page failing) raises
`Broken` with what went wrong. The service is rebuilt every `recycle_every` inputs so that the
embedded store, rewritten on every commit, stays small and the run stays fast.
"""
from __future__ import annotations

import itertools
import logging
import random
import re
import shutil
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bot.attachments import Limits
from bot.config import load_config
from bot.intake import IntakeResult
from bot.models import Message
from bot.service import Service, build_service
from bot.vault import vault_of
from bot.web.app import create_app
from integrations.mailbox import mail_message

RECEIVED = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
AGENT, AGENT_PASSWORD = "fuzzer", "fuzz-agent-password"
OUTCOMES = ("case_opened", "attached", "ignored", "duplicate")
_CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')


class Broken(AssertionError):
    """An input that did not end as exactly one record (or crashed on the way)."""


class _Errors(logging.Handler):
    """Collects log records that carry an exception: a handler that raised is a crash, even if caught."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)

    def take(self) -> list[str]:
        found = [f"{r.name}: {r.getMessage()}: {r.exc_info[1]!r}" for r in self.records]  # type: ignore[index]
        self.records.clear()
        return found


def service_config(data_dir: Path, **sections: dict[str, Any]):
    from werkzeug.security import generate_password_hash

    overrides: dict[str, dict[str, Any]] = {
        "service": {"data_dir": str(data_dir), "base_url": "http://dsar.test", "shop_name": "Fuzz Shop"},
        "desk": {"agents": {AGENT: generate_password_hash(AGENT_PASSWORD, method="pbkdf2:sha256:1000")}},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_config(None, environ={}, overrides=overrides)


class ServiceTarget:
    """A service rebuilt every `recycle_every` inputs, with a logged-in desk client and crash capture."""

    name = "service"

    def __init__(self, root: Path, recycle_every: int = 60, check_desk: bool = True) -> None:
        self.root = Path(root)
        self.recycle_every = recycle_every
        self.check_desk = check_desk
        self.tried = 0
        self.outcomes: Counter[str] = Counter()
        self._generation = itertools.count()
        self._service: Service | None = None
        self._fed = 0
        self._errors = _Errors()
        self.desk: Any = None
        self.now = RECEIVED  # the service's clock; targets that need time to pass move it

    # --- the service ---------------------------------------------------------------------------
    def sections(self) -> dict[str, dict[str, Any]]:
        return {}

    def service(self) -> Service:
        if self._service is None or self._fed >= self.recycle_every:
            self.close()
            data_dir = self.root / f"{self.name}-{next(self._generation)}"
            self._service = build_service(service_config(data_dir, **self.sections()), now=lambda: self.now)
            self._fed = 0
            logging.getLogger().addHandler(self._errors)
            self.started(self._service)
        self._fed += 1
        return self._service

    def started(self, service: Service) -> None:
        """A fresh service: log an agent in on the desk."""
        app = create_app(service)
        self.app = app
        if self.check_desk:
            self.desk = app.test_client()
            token = _CSRF.search(self.desk.get("/desk/login").data)
            assert token, "the desk login page has no CSRF field"
            response = self.desk.post("/desk/login", data={"login": AGENT, "password": AGENT_PASSWORD,
                                                           "csrf_token": token.group(1).decode()})
            assert response.status_code == 303, response.status_code

    def close(self) -> None:
        logging.getLogger().removeHandler(self._errors)
        if self._service is not None:
            data_dir = self._service.data_dir
            self._service.close()
            self._service = None
            shutil.rmtree(data_dir, ignore_errors=True)

    def crashes_logged(self) -> list[str]:
        return self._errors.take()

    def run_outbox(self, service: Service) -> None:
        for _ in range(20):
            if not service.outbox.run_due():
                break
        crashes = self.crashes_logged()
        if crashes:
            raise Broken("an outbox handler raised: " + "; ".join(crashes))

    def desk_page(self, path: str) -> None:
        if self.desk is None:
            return
        response = self.desk.get(path)
        if response.status_code != 200:
            raise Broken(f"desk page {path} answered {response.status_code}")


def counts(service: Service) -> dict[str, int]:
    return {name: service.store.count(name) for name in ("cases", "messages", "ignored")}


class MailTarget(ServiceTarget):
    """Raw mail through the mailbox's path into intake."""

    name = "mail"

    def __init__(self, root: Path, recycle_every: int = 60, check_desk: bool = True, seed: int = 0) -> None:
        super().__init__(root, recycle_every, check_desk)
        self._uniq = itertools.count(1)
        self._random = random.Random(seed)
        self.keys: set[tuple[str, ...]] = set()
        self.refs: list[str] = []
        self.message_ids: list[str] = []

    def started(self, service: Service) -> None:
        super().started(service)
        self.keys.clear()
        self.refs.clear()
        self.message_ids.clear()

    def fill(self, raw: bytes) -> bytes:
        """Placeholders of tests/fuzz/mailgen.py: fresh numbers, and references to what exists."""
        raw = re.sub(rb"@@UNIQ@@", lambda _: b"fz%d" % next(self._uniq), raw)
        ref = self._random.choice(self.refs).encode() if self.refs else b"DSR-260302-ABCDE"
        msgid = self._random.choice(self.message_ids).encode() if self.message_ids else b"none@fuzz.example"
        return raw.replace(b"@@REF@@", ref).replace(b"@@MSGID@@", msgid)

    def feed(self, raw: bytes) -> str:
        """One raw mail in; its outcome name out. Raises Broken when it did not end as one record."""
        self.tried += 1
        service = self.service()
        raw = self.fill(raw)
        message = mail_message(raw, RECEIVED, vault_of(service), Limits())
        outcome = self.receive(service, message)
        self.outcomes[outcome] += 1
        return outcome

    def receive(self, service: Service, message: Message) -> str:
        # What makes two inputs the same mail, decided here and not by intake (the code under test): the
        # same Message-ID (`<>`, `<` and none are all none) and the same content.
        same = (message.message_id.strip().strip("<>").strip().lower(), message.sender.lower(), message.subject,
                message.text)
        before = counts(service)
        result = service.components["intake"].receive(message)
        outcome = check_outcome(service, message, result, before, seen=same in self.keys)
        self.keys.add(same)
        if result.outcome == "case_opened":
            self.refs.append(result.case_ref)
        if result.outcome in ("case_opened", "attached") and message.message_id:
            self.message_ids.append(message.message_id.strip().strip("<>"))
        self.run_outbox(service)
        if result.case_ref:
            self.desk_page(f"/desk/cases/{result.case_ref}")
        elif result.outcome == "ignored":
            self.desk_page("/desk/not-requests")
        return outcome


def check_outcome(service: Service, message: Message, result: IntakeResult, before: dict[str, int],
                  seen: bool) -> str:
    """The one record an input must leave; its outcome name for the histogram. Raises Broken."""
    after = counts(service)
    grew = {name: after[name] - before[name] for name in after}
    outcome = result.outcome
    if outcome not in OUTCOMES:
        raise Broken(f"unknown intake outcome {outcome!r}")
    if outcome == "duplicate":
        if not seen:
            raise Broken("a mail seen for the first time was dropped as a duplicate of another one")
        if any(grew.values()):
            raise Broken(f"a duplicate changed the store: {grew}")
        return outcome
    if grew["messages"] != 1 or service.store.get("messages", message.id) is None:
        raise Broken(f"the message is not on record exactly once (messages grew by {grew['messages']})")
    if outcome == "ignored":
        doc = service.store.get("ignored", message.id)
        if grew != {"cases": 0, "messages": 1, "ignored": 1} or not doc or not doc.get("why"):
            raise Broken(f"ignored without exactly one reasoned record: {grew}")
        return f"ignored ({doc['classification']['kind']})"
    case = service.cases.get(result.case_id)
    if message.id not in case.message_ids:
        raise Broken(f"{outcome}: the case does not list the message")
    if outcome == "attached":
        if grew != {"cases": 0, "messages": 1, "ignored": 0}:
            raise Broken(f"attached but the store grew by {grew}")
        if not any(f.code == "new_message" and not f.resolved for f in case.flags):
            raise Broken("attached without telling the agent (no new_message flag)")
        return outcome
    if grew != {"cases": 1, "messages": 1, "ignored": 0}:
        raise Broken(f"case opened but the store grew by {grew}")
    flags = {f.code: f.detail for f in case.open_flags}
    if message.parse_error:
        if not flags.get("unparseable"):
            raise Broken("an unreadable message opened a case without the 'unparseable' flag and its reason")
        return "case_opened (flagged unparseable)"
    return "case_opened" if "unsure_request" not in flags else "case_opened (flagged unsure)"
