"""Keeps each case and its helpdesk ticket in step, through the outbox, for whichever helpdesk is set.

Effects (all idempotent on their key; handlers read the CURRENT case, so a late retry never
writes stale values):
- `helpdesk.open_ticket` (key `helpdesk:{case}:open`), planned when a case opens without a ticket;
- `helpdesk.update_fields` (key `helpdesk:{case}:fields:v{version}`), planned on state changes,
  extensions, flags and relinks; skipped when the ticket already shows what the case says;
- `helpdesk.note` / `helpdesk.reply`: internal notes (+ vault files) and public replies, queued by
  other parts with `note_effect` / `reply_effect` (or `queue_note` / `queue_reply`); a ready draft
  (action `gathered`) is sent as a note with its files by the planner here.
`setup(service)` picks the helpdesk from `[helpdesk] kind` (zendesk | freshdesk; builtin: nothing),
registers handlers, planners, the webhook blueprint and the drain job, and a credentials check.
"""
from __future__ import annotations

import logging
import mimetypes
from datetime import datetime
from typing import Any, Iterable

from bot.cases import Change
from bot.config import ConfigError
from bot.faults import checkpoint
from bot.i18n import t
from bot.models import Case
from bot.outbox import Effect, PermanentFailure, RetryLater
from bot.service import Service
from bot.vault import safe_name, vault_of
from integrations.base import (AuthFailed, Helpdesk, IntegrationError, Misconfigured, NoteFile, NotReady,
                               TicketRef)
from integrations.helpdesk_fields import fingerprint

log = logging.getLogger(__name__)

OPEN_TICKET = "helpdesk.open_ticket"
UPDATE_FIELDS = "helpdesk.update_fields"
NOTE = "helpdesk.note"
REPLY = "helpdesk.reply"
#: Changes that alter what the ticket shows, besides state changes.
FIELD_ACTIONS = frozenset({"extend", "flag", "resolve_flag", "ticket_linked"})


# --- effects others queue -------------------------------------------------------------------------
def note_effect(case: Case, key: str, text: str, attachments: Iterable[str | dict[str, str]] = ()) -> Effect:
    """An internal note on the case's ticket. `attachments`: vault paths, or draft file entries
    ({"vault_path", "name", "content_type"})."""
    return Effect(NOTE, key=key, case_id=case.id, payload={"text": text, "attachments": list(attachments)})


def reply_effect(case: Case, key: str, text: str) -> Effect:
    """A public reply on the case's ticket (text only: data never leaves through a ticket)."""
    return Effect(REPLY, key=key, case_id=case.id, payload={"text": text})


def queue_note(service: Service, case: Case, key: str, text: str, attachments: Iterable[str] = ()) -> bool:
    """Queue a note when a helpdesk is configured (False: none is, or the key was already queued)."""
    return bool(service.component("helpdesk")) and service.outbox.enqueue(note_effect(case, key, text, attachments))


def queue_reply(service: Service, case: Case, key: str, text: str) -> bool:
    return bool(service.component("helpdesk")) and service.outbox.enqueue(reply_effect(case, key, text))


# --- planning ---------------------------------------------------------------------------------------
def plan(helpdesk_name: str):
    def planner(change: Change) -> Iterable[Effect]:
        case = change.case
        has_ticket = case.ticket.get("system") == helpdesk_name
        if change.action == "open":
            if has_ticket:  # it came from this helpdesk: write our fields onto that very ticket
                yield Effect(UPDATE_FIELDS, key=f"helpdesk:{case.id}:fields:v{case.version}", case_id=case.id)
            else:
                yield Effect(OPEN_TICKET, key=f"helpdesk:{case.id}:open", case_id=case.id)
            return
        if change.action == "gathered" and case.draft.get("hash"):
            # agents review in their helpdesk: the draft's files as an internal note (never public)
            yield note_effect(case, f"helpdesk:{case.id}:draft:{case.draft['hash'][:24]}",
                              t("helpdesk.draft_note", case.language, ref=case.ref),
                              [f for f in case.draft.get("files", []) if f.get("vault_path")])
        if not has_ticket:  # the open handler syncs whatever happened before the ticket existed
            return
        if change.action == "ticket_linked" and change.detail.get("kind") == "created":
            return  # the ticket was just created with these values
        if change.before != change.after or change.action in FIELD_ACTIONS:
            yield Effect(UPDATE_FIELDS, key=f"helpdesk:{case.id}:fields:v{case.version}", case_id=case.id)

    return planner


# --- handlers ---------------------------------------------------------------------------------------
def _outcome(exc: IntegrationError) -> Exception:
    """The three integration outcomes, in the outbox's words."""
    if isinstance(exc, NotReady):
        return RetryLater(str(exc), exc.retry_after)
    if isinstance(exc, AuthFailed):  # a human fixes the credentials; keep trying meanwhile
        return RetryLater(str(exc))
    return PermanentFailure(str(exc))


def link_ticket(service: Service, case_id: str, ref: TicketRef, kind: str) -> Case:
    """Remember the case's ticket (and the way back from the ticket) in one transaction."""
    def mutate(case: Case) -> None:
        case.ticket = {"system": ref.system, "id": ref.id, **({"url": ref.url} if ref.url else {})}

    with service.store.transaction():
        service.store.put("refs", f"ticket:{ref.system}:{ref.id}", {"case_id": case_id})
        return service.cases.record(case_id, "ticket_linked", "system", mutate,
                                    {"ticket": ref.id, "system": ref.system, "kind": kind})


class HelpdeskSync:
    """The outbox handlers. One instance per service, around the configured helpdesk."""

    def __init__(self, service: Service, helpdesk: Helpdesk) -> None:
        self.service = service
        self.helpdesk = helpdesk
        self.store = service.store
        self.cases = service.cases

    def register(self) -> None:
        for kind, handler in ((OPEN_TICKET, self.open_ticket), (UPDATE_FIELDS, self.update_fields),
                              (NOTE, self.note), (REPLY, self.reply)):
            self.service.outbox.register(kind, self._guarded(handler), keep_trying=True)

    @staticmethod
    def _guarded(handler):
        def run(effect: dict[str, Any]) -> dict[str, Any] | None:
            try:
                return handler(effect)
            except IntegrationError as exc:
                raise _outcome(exc) from exc

        return run

    def _linked(self, case: Case) -> bool:
        return case.ticket.get("system") == self.helpdesk.name and bool(case.ticket.get("id"))

    def open_ticket(self, effect: dict[str, Any]) -> dict[str, Any]:
        case = self.cases.get(effect["case_id"])
        if self._linked(case):  # linked meanwhile (e.g. by its own webhook): make sure it shows the case
            return {"ticket": case.ticket["id"], "existing": True, **self.sync(case.id)}
        ref = None
        if effect["attempts"] > 1:  # an earlier attempt may have created it and lost the answer
            ref = self.helpdesk.find_ticket(case)
        found = ref is not None
        if ref is None:
            ref = self.helpdesk.open_ticket(case, effect["key"])
            checkpoint("outbox.ticket_opened")
            # the new ticket shows this version of the case: no need to write it again
            self.store.put("kv", self._sync_key(case.id, ref.id),
                           {"version": case.version, "fingerprint": fingerprint(case, self.cases.jurisdiction)})
        linked = link_ticket(self.service, case.id, ref, "created")
        self.store.put("kv", f"ticket_status:{ref.system}:{ref.id}", {"status": "open"})
        self.sync(case.id)  # whatever changed while the ticket was being opened (or what a lost attempt wrote)
        log.info("case %s: %s ticket %s %s", linked.ref, self.helpdesk.name, ref.id, "found" if found else "opened")
        return {"ticket": ref.id, "found_existing": found}

    def update_fields(self, effect: dict[str, Any]) -> dict[str, Any]:
        return self.sync(effect["case_id"])

    @staticmethod
    def _sync_key(case_id: str, ticket_id: str) -> str:
        return f"helpdesk_sync:{case_id}:{ticket_id}"

    def sync(self, case_id: str) -> dict[str, Any]:
        """Make the ticket show the current case; never let an older write win over a newer one."""
        force = False
        for _ in range(3):
            case = self.cases.get(case_id)
            if not self._linked(case):
                return {"skipped": "no ticket yet"}
            key = self._sync_key(case.id, case.ticket["id"])
            wanted = fingerprint(case, self.cases.jurisdiction)
            shown = self.store.get("kv", key) or {}
            if not force and (shown.get("fingerprint") == wanted or shown.get("version", 0) > case.version):
                return {"skipped": "the ticket already shows this", "version": case.version}
            self.helpdesk.update_fields(case)
            prior: dict[str, Any] = {}

            def keep_newest(doc: dict[str, Any] | None, case: Case = case) -> dict[str, Any]:
                prior.update(doc or {})
                if (doc or {}).get("version", 0) > case.version:
                    return doc or {}
                return {"version": case.version, "fingerprint": wanted}

            self.store.update("kv", key, keep_newest)
            if prior.get("version", 0) <= case.version:
                return {"synced": case.version}
            force = True  # a newer version was written meanwhile, maybe before ours: write the newest again
        return {"synced": "after concurrent updates"}

    def _posting_case(self, effect: dict[str, Any]) -> Case:
        case = self.cases.get(effect["case_id"])
        if self._linked(case):
            return case
        opening = self.store.get("outbox", f"helpdesk:{case.id}:open")
        if opening and opening.get("status") == "pending":
            # wait for the opening effect's next attempt; waiting is no failure of this one
            due = datetime.fromisoformat(opening["due_at"])
            raise RetryLater("the case's ticket is not opened yet",
                             max(5.0, (due - self.service.now()).total_seconds() + 1), counts=False)
        raise PermanentFailure(f"case {case.ref} has no {self.helpdesk.name} ticket")

    def note(self, effect: dict[str, Any]) -> dict[str, Any]:
        case = self._posting_case(effect)
        text = effect["payload"]["text"]
        if effect["attempts"] > 1 and self.helpdesk.already_posted(case, effect["key"], text):
            return {"already_posted": True}
        files = [self._vault_file(path) for path in effect["payload"].get("attachments", [])]
        self.helpdesk.add_note(case, text, files, idempotency_key=effect["key"])
        return {"posted": True, "files": len(files)}

    def reply(self, effect: dict[str, Any]) -> dict[str, Any]:
        case = self._posting_case(effect)
        text = effect["payload"]["text"]
        if effect["attempts"] > 1 and self.helpdesk.already_posted(case, effect["key"], text):
            return {"already_posted": True}
        self.helpdesk.public_reply(case, text, idempotency_key=effect["key"])
        return {"posted": True}

    def _vault_file(self, item: str | dict[str, str]) -> NoteFile:
        entry = {"vault_path": item} if isinstance(item, str) else item
        relative = entry["vault_path"]
        vault = vault_of(self.service)
        name = safe_name(entry.get("name") or relative.rsplit("/", 1)[-1])
        content_type = entry.get("content_type") or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return NoteFile(name, content_type, vault.read(relative))


# --- wiring -----------------------------------------------------------------------------------------
def make_helpdesk(service: Service) -> Helpdesk | None:
    config = service.config
    kind = config.helpdesk.kind
    try:
        if kind == "zendesk":
            from integrations.zendesk import ZendeskHelpdesk

            return ZendeskHelpdesk(config.zendesk, service.cases.jurisdiction, now=service.now)
        if kind == "freshdesk":
            from integrations.freshdesk import FreshdeskHelpdesk

            return FreshdeskHelpdesk(config.freshdesk, service.cases.jurisdiction, now=service.now)
    except Misconfigured as exc:
        raise ConfigError(str(exc)) from None
    return None


def setup(service: Service) -> None:
    helpdesk = make_helpdesk(service)
    if helpdesk is None:
        return
    from integrations.helpdesk_webhooks import setup_webhooks

    service.components["helpdesk"] = helpdesk
    sync = HelpdeskSync(service, helpdesk)
    sync.register()
    service.components["helpdesk_sync"] = sync
    service.cases.add_planner(plan(helpdesk.name))

    def check() -> str | None:
        try:
            return helpdesk.check_credentials()
        except IntegrationError as exc:
            return f"[{helpdesk.name}] {exc}"

    service.startup_checks.append(check)
    setup_webhooks(service, helpdesk)
