"""The outbox: side effects (tickets, notes, Slack posts, emails) stored before they run.

An effect is written in the same store transaction as the case change that caused it, keyed by an
idempotency key, so a crash never loses it and a retried transition never queues it twice. The
runner claims due effects with a lease and runs their handler at least once. Each attempt is
counted in the store *before* the handler runs, so a handler sees `effect["attempts"] > 1` whenever
an earlier attempt may have done (part of) the work and its answer was lost (crash, timeout), and
an effect that crashes the process still counts its attempts.

Errors: RetryLater (429, 5xx, unreachable) backs off exponentially or as long as the far side
asked (Retry-After). After `max_attempts` the effect is marked failed and the case flagged for an
agent, unless its kind was registered with `keep_trying=True` (helpdesk tickets, mail, Slack posts:
a helpdesk, mail server or Slack down for hours must not lose one): then the case is flagged once
and the effect keeps trying at the capped interval; when it finally succeeds the flag is resolved
(`on_recovered`).
PermanentFailure marks it failed and flags the case.
Handlers must be idempotent on the effect's key (Zendesk `external_id`, a stored ticket id, ...).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Protocol

from bot.faults import checkpoint
from bot.store import Store
from bot.workers import gone, worker_id

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
    """Raised by a handler when the far side said "not now" (429, 5xx, connection refused).

    `counts=False` says the handler only waited for something else (another effect) and did
    nothing outside: the attempt is not counted and never leads to a flag.
    """

    def __init__(self, reason: str, after_seconds: float | None = None, *, counts: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after_seconds = after_seconds
        self.counts = counts


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


BACKOFF_CAP = 3600.0


def backoff_seconds(attempts: int, base: float = 5.0, cap: float = BACKOFF_CAP) -> float:
    return min(cap, base * (2 ** max(0, attempts - 1)))


class Outbox:
    """Runs due effects. One runner per process; several processes may run side by side."""

    def __init__(self, store: Store, clock: Callable[[], datetime], *, max_attempts: int = 8,
                 lease_seconds: float = 120.0, on_failure: Callable[[dict[str, Any]], None] | None = None,
                 on_recovered: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.on_failure = on_failure  # the effect failed for good, or keeps failing: tell an agent
        self.on_recovered = on_recovered  # a flagged effect finally went through
        self.handlers: dict[str, Handler] = {}
        self.keep_trying: set[str] = set()
        self.worker = worker_id()

    def register(self, kind: str, handler: Handler, *, keep_trying: bool = False) -> None:
        """`keep_trying`: after `max_attempts`, flag the case but do not give up (see the module doc)."""
        self.handlers[kind] = handler
        if keep_trying:
            self.keep_trying.add(kind)
        else:
            self.keep_trying.discard(kind)

    def enqueue(self, effect: Effect) -> bool:
        return enqueue(self.store, effect, self.clock())

    def pending(self) -> list[dict[str, Any]]:
        return self.store.find(COLLECTION, {"status": "pending"})

    def release_dead_leases(self) -> int:
        """On start: effects leased by a process of this host that is gone (killed, crashed) become
        claimable now rather than when their lease runs out, so a restart resumes the work at once.

        Only this host's workers are judged (bot.workers.gone)."""
        now = self.clock().isoformat()
        released = 0
        for doc in self.pending():
            owner = doc.get("lease_worker") or ""
            if not doc.get("lease_until") or doc["lease_until"] < now or not gone(owner):
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
        # the attempts are counted before running (one write for the batch): a crash inside a
        # handler still counts, and the next attempt knows an earlier one may have done the work
        with self.store.transaction():
            for effect in claimed:
                effect["attempts"] = effect.get("attempts", 0) + 1
                self._finish(effect["key"], lambda d, n=effect["attempts"]: {**d, "attempts": n,
                                                                              "started_at": now.isoformat()})
        for effect in claimed:
            if self.clock() - now > timedelta(seconds=self.lease_seconds / 2) and not self._renew(effect):
                log.warning("outbox effect %s (case %s): its lease ran out while the batch ran; another worker "
                            "has it", effect["kind"], effect.get("case_id"))
                continue
            self._run_one(effect)
        return len(claimed)

    def _renew(self, effect: dict[str, Any]) -> bool:
        """Extend the lease of a claimed effect still waiting its turn in a slow batch, unless another
        worker claimed it meanwhile (its lease had run out): then it is theirs to run, not ours too."""
        now = self.clock()
        renewed: dict[str, bool] = {}

        def renew(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if (doc is None or doc.get("status") != "pending" or doc.get("lease_worker") != self.worker
                    or doc.get("attempts") != effect["attempts"]):
                return doc
            renewed["ok"] = True
            return {**doc, "lease_until": (now + timedelta(seconds=self.lease_seconds)).isoformat()}

        self.store.update(COLLECTION, effect["key"], renew)
        return renewed.get("ok", False)

    def run_backlog(self, limit: int = 50, budget_seconds: float = 20.0) -> int:
        """The scheduled job: batches of `run_due` while full batches keep coming, for up to
        `budget_seconds` of wall time. One batch per tick capped an instance at `limit` effects per
        tick (25 a second) however many were due: a burst of a few thousand cases waited minutes for
        its tickets and acknowledgements."""
        started = time.monotonic()
        total = 0
        while True:
            ran = self.run_due(limit)
            total += ran
            if ran < limit or time.monotonic() - started >= budget_seconds:
                return total

    def _run_one(self, effect: dict[str, Any]) -> None:
        handler = self.handlers.get(effect["kind"])
        attempts = effect["attempts"]
        checkpoint("outbox.claimed")
        try:
            if handler is None:
                raise PermanentFailure(f"no handler for {effect['kind']} (integration not configured?)")
            result = handler(effect)
            checkpoint("outbox.handled")
        except RetryLater as exc:
            self._retry(effect, attempts if exc.counts else attempts - 1, exc.reason, exc.after_seconds)
        except PermanentFailure as exc:
            self._fail(effect, attempts, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in one handler must not stop the others
            log.exception("outbox effect %s (case %s) raised", effect["kind"], effect.get("case_id"))
            self._retry(effect, attempts, f"{type(exc).__name__}: {exc}", getattr(exc, "retry_after", None))
        else:
            done = self._finish(effect["key"], lambda d: {**d, "status": "done", "attempts": attempts,
                                                          "done_at": self.clock().isoformat(), "result": result,
                                                          "lease_until": None, "last_error": ""})
            if done and done.get("flagged"):
                self._notify(self.on_recovered, done)

    def _retry(self, effect: dict[str, Any], attempts: int, reason: str, after: float | None) -> None:
        if attempts >= self.max_attempts and effect["kind"] not in self.keep_trying:
            self._fail(effect, attempts, reason)
            return
        wait = min(BACKOFF_CAP, max(1.0, after)) if after is not None else backoff_seconds(attempts)
        due = (self.clock() + timedelta(seconds=wait)).isoformat()
        flag_now = attempts >= self.max_attempts and not effect.get("flagged") and attempts == effect["attempts"]
        log.warning("outbox effect %s (case %s) attempt %d will retry in %.0fs: %s",
                    effect["kind"], effect.get("case_id"), attempts, wait, reason)
        updated = self._finish(effect["key"], lambda d: {**d, "attempts": attempts, "due_at": due,
                                                         "lease_until": None, "last_error": reason,
                                                         "flagged": d.get("flagged", False) or flag_now})
        if flag_now and updated:
            self._notify(self.on_failure, updated)

    def _fail(self, effect: dict[str, Any], attempts: int, reason: str) -> None:
        log.error("outbox effect %s (case %s) failed for good: %s", effect["kind"], effect.get("case_id"), reason)
        failed = self._finish(effect["key"], lambda d: {**d, "status": "failed", "attempts": attempts,
                                                        "lease_until": None, "last_error": reason})
        if failed:
            self._notify(self.on_failure, failed)

    @staticmethod
    def _notify(callback: Callable[[dict[str, Any]], None] | None, effect: dict[str, Any]) -> None:
        """Flagging must never stop the runner (the case may be gone)."""
        if callback is None:
            return
        try:
            callback(effect)
        except Exception:  # noqa: BLE001
            log.exception("outbox: could not report effect %s (case %s)", effect["kind"], effect.get("case_id"))

    def retry_failed(self, key: str) -> None:
        """An agent asks to try a failed (or flagged, still retrying) effect again, now."""
        self._finish(key, lambda d: {**d, "status": "pending", "attempts": 0, "due_at": self.clock().isoformat(),
                                     "lease_until": None})

    def _finish(self, key: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any] | None:
        def apply(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            return change(doc) if doc is not None else None

        return self.store.update(COLLECTION, key, apply)
