"""Helpdesk webhooks: verified at the door, made durable in the inbox, turned into cases by a drain.

`POST /webhooks/<helpdesk>`: the body is read raw and verified (signature and timestamp, or shared
secret) BEFORE anything parses it; a failure answers 401 with a generic body. A verified delivery
is appended to the inbox (bot.inbox) and answered 200 right away; a retried delivery ("duplicate")
is answered 200 without being kept twice; the same signed request sent again ("replay") gets 401.

The drain (a scheduled job; one process at a time) reads the inbox in batches: first, outside any
store transaction, it parses each entry and re-fetches its ticket from the API; then it applies the
batch in one store transaction (the embedded store rewrites its file per transaction, so batching
is what makes it keep up), falling back to one entry at a time if the batch fails; an entry that
collides with another instance's writes (a deadlock PostgreSQL resolved) is simply applied again.
A helpdesk that is down or rate limiting pauses the drain (Retry-After honoured); nothing is lost.
The door comes first: while webhooks keep arriving in this process (one in the last `quiet`), the
drain waits, so that its store writes (which hold Python's GIL while the file is serialised) do not
slow the acknowledgements down; it never waits longer than `max_delay` behind the oldest entry.
"""
from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, jsonify, request

from bot.inbox import Inbox, InboxEntry
from bot.service import Service
from bot.store import StoreConflict
from integrations.base import AuthFailed, Helpdesk, NotReady, WebhookRejected
from integrations.helpdesk_events import EventApplier, PreparedEvent
from integrations.zendesk import INVOCATION

log = logging.getLogger(__name__)

KEPT_HEADERS = (INVOCATION,)  # what the drain may need later; never the signature or the secret
FETCH_CONCURRENCY = 4  # tickets re-fetched in parallel by the drain (helpdesk rate limits still apply)
CONFLICT_RETRIES = 5  # an entry that collides with another instance's writes is applied again this often


def make_blueprint(helpdesk: Helpdesk, inbox: Inbox, max_bytes: int) -> Blueprint:
    blueprint = Blueprint(f"{helpdesk.name}_webhooks", __name__)

    @blueprint.post(f"/webhooks/{helpdesk.name}")
    def receive():
        if (request.content_length or 0) > max_bytes:
            return jsonify(error="too large"), 413
        body = request.get_data(cache=False)
        if len(body) > max_bytes:
            return jsonify(error="too large"), 413
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            helpdesk.verify_webhook(headers, body)
        except WebhookRejected as exc:
            log.info("%s webhook refused: %s", helpdesk.name, exc)
            return jsonify(error="unauthorized"), 401
        kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
        try:
            outcome = inbox.append(helpdesk.name, body, kept, dedupe_key=helpdesk.delivery_key(headers, body),
                                   replay_key=helpdesk.replay_key(headers, body))
        except OSError:
            log.exception("%s webhook: the inbox cannot be written", helpdesk.name)
            return jsonify(error="try again"), 503  # the helpdesk retries: nothing is lost
        if outcome == "replay":
            log.info("%s webhook refused: replayed request", helpdesk.name)
            return jsonify(error="unauthorized"), 401
        return jsonify(ok=True, duplicate=outcome == "duplicate"), 200

    return blueprint


class WebhookDrain:
    """Turns inbox entries into case changes. Call `run()` from the scheduler (or a test)."""

    def __init__(self, service: Service, helpdesk: Helpdesk, inbox: Inbox, batch: int = 50,
                 quiet: timedelta = timedelta(milliseconds=250), max_delay: timedelta = timedelta(seconds=30)) -> None:
        self.service = service
        self.helpdesk = helpdesk
        self.inbox = inbox
        self.batch = max(1, batch)
        self.quiet = quiet
        self.max_delay = max_delay
        self.paused_until: datetime | None = None
        self._warned_no_intake = False

    def run(self, limit: int = 10_000) -> int:
        """Handle up to `limit` entries; returns how many were handled (acknowledged)."""
        now = self.service.now()
        if self.paused_until is not None and now < self.paused_until:
            return 0
        intake = self.service.component("intake")
        if intake is None:
            if not self._warned_no_intake:
                log.warning("helpdesk webhooks wait in the inbox: no intake component is set up")
                self._warned_no_intake = True
            return 0
        handled = 0
        with self.inbox.draining() as mine:
            if not mine:
                return 0
            applier = EventApplier(self.service, intake)
            while handled < limit:
                entries = self.inbox.pending(min(self.batch, limit - handled))
                if not entries or self._door_busy(entries[0]):
                    break
                prepared, stopped = self._prepare(entries)
                if prepared:
                    self._apply(applier, prepared)
                    self.inbox.ack(prepared[-1][0])
                    handled += len(prepared)
                if stopped:
                    break
        return handled

    def _door_busy(self, oldest: InboxEntry) -> bool:
        now = self.service.now()
        last = self.inbox.last_append
        if last is None or now - last >= self.quiet:
            return False
        try:
            return now - datetime.fromisoformat(oldest.at) < self.max_delay
        except ValueError:
            return False

    # --- phase 1: parse and fetch, no store lock held ------------------------------------------------
    def _prepare(self, entries: list[InboxEntry]) -> tuple[list[tuple[InboxEntry, PreparedEvent | None]], bool]:
        """Fetch the batch's tickets a few at a time (an API call takes 100+ ms); stop at the first
        "not now" so that nothing after it is acknowledged before it."""
        with ThreadPoolExecutor(max_workers=FETCH_CONCURRENCY) as pool:
            outcomes = list(pool.map(self._try_fetch, entries))
        prepared: list[tuple[InboxEntry, PreparedEvent | None]] = []
        for entry, outcome in zip(entries, outcomes):
            if isinstance(outcome, (NotReady, AuthFailed)):
                wait = getattr(outcome, "retry_after", None) or (30.0 if isinstance(outcome, NotReady) else 300.0)
                self.paused_until = self.service.now() + timedelta(seconds=wait)
                log.warning("%s webhooks paused %.0fs: %s", self.helpdesk.name, wait, outcome)
                return prepared, True
            if isinstance(outcome, Exception):
                self._dead_letter(entry, f"{type(outcome).__name__}: {outcome}")
                prepared.append((entry, None))
            else:
                prepared.append((entry, outcome))
        return prepared, False

    def _try_fetch(self, entry: InboxEntry) -> PreparedEvent | None | Exception:
        try:
            return self._fetch(entry)
        except Exception as exc:  # noqa: BLE001 - an unreadable entry is kept aside, never retried forever
            return exc

    def _fetch(self, entry: InboxEntry) -> PreparedEvent | None:
        event = self.helpdesk.parse_webhook(entry.headers, entry.body)
        if event.kind == "ignored":
            return None
        snapshot = self.helpdesk.fetch_ticket(event.ticket_id, with_comments=event.kind != "ticket_created")
        target = None
        if event.kind == "ticket_merged" and event.merged_into:
            target = self.helpdesk.fetch_ticket(event.merged_into)
        return PreparedEvent(event, self.helpdesk.name, snapshot, target)

    # --- phase 2: apply, batched in one store transaction ------------------------------------------
    def _apply(self, applier: EventApplier, prepared: list[tuple[InboxEntry, PreparedEvent | None]]) -> None:
        work = [(entry, item) for entry, item in prepared if item is not None]
        if not work:
            return
        # ticket by ticket (a stable sort keeps each ticket's events in order): instances draining
        # events of the same tickets then take the tickets' locks in the same order, and rarely deadlock
        work.sort(key=lambda pair: (pair[1].system, str(pair[1].event.ticket_id)))
        try:
            with self.service.store.transaction():
                for _, item in work:
                    applier.apply(item)
            return
        except StoreConflict as exc:
            log.warning("%s webhooks: a batch of %d collided with another instance (%s); applying one by one",
                        self.helpdesk.name, len(work), exc)
        except Exception:  # noqa: BLE001 - find the entry at fault, keep the others
            log.exception("%s webhooks: a batch of %d failed; retrying one by one", self.helpdesk.name, len(work))
        for entry, item in work:
            for attempt in range(1, CONFLICT_RETRIES + 1):
                try:
                    with self.service.store.transaction():
                        applier.apply(item)
                    break
                except StoreConflict:
                    if attempt < CONFLICT_RETRIES:
                        continue  # the other writer has gone on: again
                    log.error("%s webhook entry kept colliding with other writers", self.helpdesk.name)
                    self._dead_letter(entry, f"kept colliding with other writers ({CONFLICT_RETRIES} tries)")
                except Exception as exc:  # noqa: BLE001
                    log.exception("%s webhook entry could not be applied", self.helpdesk.name)
                    self._dead_letter(entry, f"{type(exc).__name__}: {exc}")
                    break

    def _dead_letter(self, entry: InboxEntry, why: str) -> None:
        """Kept for an operator (with its body, to replay it), never silently dropped."""
        key = "webhook:" + hashlib.sha256(entry.body).hexdigest()[:32]
        doc: dict[str, Any] = {"channel": self.helpdesk.name, "received_at": entry.at, "why": why[:300],
                               "kind": "unprocessable_webhook", "body": entry.body.decode("utf-8", "replace")[:65536]}
        self.service.store.put("ignored", key, doc)
        log.error("%s webhook kept aside (%s): %s", self.helpdesk.name, key, why[:120])


def setup_webhooks(service: Service, helpdesk: Helpdesk) -> None:
    inbox = Inbox(service.data_dir / "inbox", service.now)
    settings = service.config.helpdesk
    drain = WebhookDrain(service, helpdesk, inbox, settings.inbox_batch,
                         quiet=timedelta(milliseconds=settings.drain_quiet_ms),
                         max_delay=timedelta(seconds=settings.drain_max_delay_seconds))
    service.components["helpdesk_inbox"] = inbox
    service.closers.append(inbox.close)
    service.components["helpdesk_drain"] = drain
    service.blueprints.append(make_blueprint(helpdesk, inbox, service.config.helpdesk.webhook_max_bytes))
    service.add_job(f"{helpdesk.name}_webhooks", drain.run, seconds=1)
