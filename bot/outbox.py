"""The outbox: side effects (tickets, notes, Slack posts, emails) stored before they run.

An effect is written in the same store transaction as the case change that caused it, keyed by an
idempotency key, so a crash never loses it and a retried transition never queues it twice. The
runner claims due effects with a lease, runs their handler at least once, backs off on errors and
rate limits, and after repeated failure marks the effect failed and flags the case for an agent.
Handlers must be idempotent on the effect's key (Zendesk `external_id`, a stored ticket id, ...).
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Protocol

from bot.faults import checkpoint
from bot.store import Store

log = logging.getLogger(__name__)

COLLECTION = "outbox"


@dataclass(frozen=True)
class Effect:
    """A side effect to queue. `key` must be the same every time the same effect is meant."""

    kind: str  # e.g. "helpdesk.open_ticket", "mail.send", "slack.post_case"
    key: str
    payload: dict[str, Any] = field(default_factory=dict)
    case_id: str = ""
    delay_seconds: float = 0.0


class RetryLater(Exception):
    """Raised by a handler when the far side said "not now" (429, 5xx, connection refused)."""

    def __init__(self, reason: str, after_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after_seconds = after_seconds


class PermanentFailure(Exception):
    """Raised by a handler when retrying cannot help (bad credentials, 4xx other than 429)."""


class Handler(Protocol):
    def __call__(self, effect: dict[str, Any]) -> dict[str, Any] | None:
        """Do the effect; return a small result to keep (e.g. the ticket id)."""


def effect_doc(effect: Effect, now: datetime) -> dict[str, Any]:
    return {
        "key": effect.key, "kind": effect.kind, "payload": effect.payload, "case_id": effect.case_id,
        "status": "pending", "attempts": 0, "created_at": now.isoformat(),
        "due_at": (now + timedelta(seconds=effect.delay_seconds)).isoformat(),
        "last_error": "", "result": None,
    }


def enqueue(store: Store, effect: Effect, now: datetime) -> bool:
    """Queue once: False when an effect with this key was already queued (or done)."""
    return store.insert_new(COLLECTION, effect.key, effect_doc(effect, now))


def backoff_seconds(attempts: int, base: float = 5.0, cap: float = 3600.0) -> float:
    return min(cap, base * (2 ** max(0, attempts - 1)))


class Outbox:
    """Runs due effects. One runner per process; several processes may run side by side."""

    def __init__(self, store: Store, clock: Callable[[], datetime], *, max_attempts: int = 8,
                 lease_seconds: float = 120.0, on_failure: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.on_failure = on_failure
        self.handlers: dict[str, Handler] = {}
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def enqueue(self, effect: Effect) -> bool:
        return enqueue(self.store, effect, self.clock())

    def pending(self) -> list[dict[str, Any]]:
        return self.store.find(COLLECTION, {"status": "pending"})

    def release_dead_leases(self) -> int:
        """On start: effects leased by a process of this host that is gone (killed, crashed) become
        claimable now rather than when their lease runs out, so a restart resumes the work at once.

        Only this host's workers are judged (their processes can be seen); a worker id naming this
        very process is a previous life of it (a container restarted with the same pid)."""
        host, _, _ = self.worker.rpartition(":")
        now = self.clock().isoformat()
        released = 0
        for doc in self.pending():
            owner = doc.get("lease_worker") or ""
            if not doc.get("lease_until") or doc["lease_until"] < now or owner.rpartition(":")[0] != host:
                continue
            if owner != self.worker and _process_alive(owner.rpartition(":")[2]):
                continue

            def release(current: dict[str, Any] | None, owner: str = owner) -> dict[str, Any] | None:
                if current is None or current.get("lease_worker") != owner or current.get("status") != "pending":
                    return current
                return {**current, "lease_until": None}

            self.store.update(COLLECTION, doc["key"], release)
            released += 1
        if released:
            log.warning("outbox: %d effect(s) leased by a process that is gone are claimable again", released)
        return released

    def run_due(self, limit: int = 50) -> int:
        """Run what is due now; returns how many effects were attempted."""
        now = self.clock()
        claimed = self.store.claim_due(COLLECTION, now.isoformat(), self.worker,
                                       (now + timedelta(seconds=self.lease_seconds)).isoformat(), limit)
        for effect in claimed:
            self._run_one(effect)
        return len(claimed)

    def _run_one(self, effect: dict[str, Any]) -> None:
        handler = self.handlers.get(effect["kind"])
        attempts = effect.get("attempts", 0) + 1
        checkpoint("outbox.claimed")
        try:
            if handler is None:
                raise PermanentFailure(f"no handler for {effect['kind']} (integration not configured?)")
            result = handler(effect)
            checkpoint("outbox.handled")
        except RetryLater as exc:
            self._retry(effect, attempts, exc.reason, exc.after_seconds)
        except PermanentFailure as exc:
            self._fail(effect, attempts, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in one handler must not stop the others
            log.exception("outbox effect %s (case %s) raised", effect["kind"], effect.get("case_id"))
            self._retry(effect, attempts, f"{type(exc).__name__}: {exc}", None)
        else:
            self._finish(effect["key"], lambda d: {**d, "status": "done", "attempts": attempts,
                                                   "done_at": self.clock().isoformat(), "result": result,
                                                   "lease_until": None, "last_error": ""})

    def _retry(self, effect: dict[str, Any], attempts: int, reason: str, after: float | None) -> None:
        if attempts >= self.max_attempts:
            self._fail(effect, attempts, reason)
            return
        wait = after if after is not None else backoff_seconds(attempts)
        due = (self.clock() + timedelta(seconds=wait)).isoformat()
        log.warning("outbox effect %s (case %s) will retry in %.0fs: %s",
                    effect["kind"], effect.get("case_id"), wait, reason)
        self._finish(effect["key"], lambda d: {**d, "attempts": attempts, "due_at": due,
                                               "lease_until": None, "last_error": reason})

    def _fail(self, effect: dict[str, Any], attempts: int, reason: str) -> None:
        log.error("outbox effect %s (case %s) failed for good: %s", effect["kind"], effect.get("case_id"), reason)
        failed = self._finish(effect["key"], lambda d: {**d, "status": "failed", "attempts": attempts,
                                                        "lease_until": None, "last_error": reason})
        if self.on_failure and failed:
            self.on_failure(failed)

    def retry_failed(self, key: str) -> None:
        """An agent asks to try a failed effect again."""
        self._finish(key, lambda d: {**d, "status": "pending", "attempts": 0, "due_at": self.clock().isoformat()})

    def _finish(self, key: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any] | None:
        def apply(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            return change(doc) if doc is not None else None

        return self.store.update(COLLECTION, key, apply)


def _process_alive(pid: str) -> bool:
    if not pid.isdigit():
        return True  # not a worker id we made: leave it to its lease
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
