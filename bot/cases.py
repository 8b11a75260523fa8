"""Cases and their lifecycle: the one place that knows which action is allowed in which state.

Every change goes through `CaseBook.transition` (state changes) or `CaseBook.record` (other audited
changes: extension, flags, links to tickets). Each one, in one store transaction, checks the
action, writes the case with a new version and queues the outbox effects that the registered
planners ask for; once that is committed it appends the audit event. The audit event is first
parked in the store (`audit_pending`) so that a crash between the two cannot lose it
(`flush_pending_audit`). On PostgreSQL the case is held (`Store.get_for_update`) from the read to
the commit, so two instances changing one case take turns instead of losing an update.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable, Iterable

from bot import clock
from bot.audit import AuditLog
from bot.faults import checkpoint
from bot.models import ANSWERED_STATES, Case, Flag, Person, State, new_case_ref
from bot.outbox import Effect, enqueue
from bot.store import Store
from bot.workers import gone, worker_id

log = logging.getLogger(__name__)

OPEN_STATES = frozenset(State) - ANSWERED_STATES
S = State

#: action -> (states it is allowed from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[State], State]] = {
    "request_identity": (frozenset({S.RECEIVED, S.CLARIFICATION_REQUESTED}), S.AWAITING_IDENTITY),
    "verify": (frozenset({S.RECEIVED, S.AWAITING_IDENTITY}), S.VERIFIED),
    "reject_identity": (frozenset({S.RECEIVED, S.AWAITING_IDENTITY}), S.REJECTED_IDENTITY),
    "request_clarification": (frozenset({S.RECEIVED, S.AWAITING_IDENTITY, S.VERIFIED, S.GATHERING_FAILED,
                                         S.DRAFTED}), S.CLARIFICATION_REQUESTED),
    "clarified": (frozenset({S.CLARIFICATION_REQUESTED}), S.RECEIVED),
    "start_gathering": (frozenset({S.VERIFIED, S.GATHERING_FAILED, S.DRAFTED}), S.GATHERING),
    "gathered": (frozenset({S.GATHERING}), S.DRAFTED),
    "gathering_failed": (frozenset({S.GATHERING}), S.GATHERING_FAILED),
    "approve": (frozenset({S.DRAFTED}), S.APPROVED),
    "revoke_approval": (frozenset({S.APPROVED}), S.DRAFTED),
    "deliver": (frozenset({S.APPROVED}), S.DELIVERED),
    "refuse": (frozenset(OPEN_STATES), S.REFUSED),
    "withdraw": (frozenset(OPEN_STATES), S.WITHDRAWN),
    "dismiss": (frozenset({S.RECEIVED, S.AWAITING_IDENTITY, S.CLARIFICATION_REQUESTED}), S.DISMISSED),
    "reopen": (frozenset({S.DISMISSED, S.WITHDRAWN, S.REJECTED_IDENTITY}), S.RECEIVED),
    "close": (frozenset({S.DELIVERED, S.REFUSED, S.REJECTED_IDENTITY, S.WITHDRAWN, S.DISMISSED}), S.CLOSED),
}


class IllegalTransition(Exception):
    """An action that the case's state does not allow. Names the case, the state and the action."""

    def __init__(self, case_ref: str, state: str, action: str, why: str = "") -> None:
        self.case_ref, self.state, self.action = case_ref, state, action
        allowed = sorted(a for a, (sources, _) in TRANSITIONS.items() if state in sources)
        message = f"case {case_ref}: cannot {action!r} in state {state!r}"
        message += f" ({why})" if why else f" (allowed: {', '.join(allowed) or 'nothing'})"
        super().__init__(message)


class CaseNotFound(LookupError):
    pass


def allowed_actions(state: State) -> list[str]:
    return sorted(action for action, (sources, _) in TRANSITIONS.items() if state in sources)


@dataclass(frozen=True)
class Change:
    """What a planner sees: the case after the change, and what happened."""

    case: Case
    action: str
    before: State
    after: State
    actor: str
    detail: dict[str, Any]


Planner = Callable[[Change], Iterable[Effect]]
Mutation = Callable[[Case], None]


class CaseBook:
    """Opens, reads and changes cases. Time comes from the injected `now`."""

    def __init__(self, store: Store, audit: AuditLog, now: Callable[[], datetime],
                 jurisdiction: clock.Jurisdiction) -> None:
        self.store = store
        self.audit = audit
        self.now = now
        self.jurisdiction = jurisdiction
        self.planners: list[Planner] = []
        self._local = threading.local()  # audit events waiting for their transaction to commit

    def add_planner(self, planner: Planner) -> None:
        """Integrations register what effects they want on which changes (ticket sync, Slack, mail)."""
        self.planners.append(planner)

    # --- reading ---------------------------------------------------------------------------------
    def get(self, case_id: str) -> Case:
        doc = self.store.get("cases", case_id)
        if doc is None:
            raise CaseNotFound(case_id)
        return Case.from_doc(doc)

    def by_ref(self, ref: str) -> Case:
        link = self.store.get("refs", f"case:{ref.upper()}")
        if link is None:
            raise CaseNotFound(ref)
        return self.get(link["case_id"])

    def all(self, where: dict[str, Any] | None = None) -> list[Case]:
        cases = [Case.from_doc(d) for d in self.store.find("cases", where)]
        return sorted(cases, key=lambda c: (c.effective_due, c.ref))

    # --- opening ---------------------------------------------------------------------------------
    def open(self, *, received_at: datetime, rights: list[str], language: str, channel: str,
             requester: Person, subject: Person | None = None, third_party: bool = False,
             message_ids: list[str] | None = None, classification: dict[str, Any] | None = None,
             ticket: dict[str, str] | None = None, actor: str = "system", case_id: str | None = None) -> Case:
        """Open a case. `received_at` is when the request reached us (server time), not a header."""
        received = clock.receipt_date(received_at, self.jurisdiction)
        dates = clock.deadlines(received, self.jurisdiction)
        now = self.now()
        case = Case(
            id=case_id or uuid.uuid4().hex, ref=new_case_ref(received), state=State.RECEIVED,
            rights=list(rights), language=language, channel=channel, received_at=received_at,
            due=dates.due, extended_due=dates.extended_due, requester=requester,
            subject=subject or Person(email=requester.email, name=requester.name), third_party=third_party,
            message_ids=list(message_ids or []), classification=classification or {},
            ticket=dict(ticket or {}), created_at=now, updated_at=now, version=1,
        )
        change = Change(case, "open", State.RECEIVED, State.RECEIVED, actor, {"channel": channel, "rights": rights})
        with self.store.transaction():
            # insert_new, not get-then-put: another instance may open the same replayed request now
            if not self.store.insert_new("cases", case.id, case.to_doc()):
                if case_id:
                    return self.get(case_id)  # a replayed intake: the case already exists
                raise RuntimeError(f"case id {case.id} already taken")  # pragma: no cover - uuid4
            # refs are random (no shared counter): at hundreds a day two will meet; never hand one over
            while not self.store.insert_new("refs", f"case:{case.ref}", {"case_id": case.id}):
                case.ref = new_case_ref(received)
                self.store.put("cases", case.id, case.to_doc())
            pending = self._park_audit(change)
            self._queue_effects(change)
        checkpoint("store.case_committed")
        self._write_audit(pending)
        log.info("case %s opened (channel=%s, rights=%s)", case.ref, channel, ",".join(rights))
        return case

    # --- changing --------------------------------------------------------------------------------
    def transition(self, case_id: str, action: str, actor: str, *, mutate: Mutation | None = None,
                   detail: dict[str, Any] | None = None, expected_version: int | None = None) -> Case:
        """Change the state by `action`; raises IllegalTransition when the state does not allow it."""
        if action not in TRANSITIONS:
            raise ValueError(f"unknown action {action!r}")
        sources, target = TRANSITIONS[action]

        def check(case: Case) -> State:
            if case.state not in sources:
                raise IllegalTransition(case.ref, case.state, action)
            if action in ("approve", "deliver") and case.frozen:
                raise IllegalTransition(case.ref, case.state, action,
                                        "the case is frozen after a 'this wasn't me' report")
            if action == "approve":
                shown = (detail or {}).get("draft_hash")
                if not shown or shown != case.draft.get("hash"):
                    raise IllegalTransition(case.ref, case.state, action,
                                            "the draft changed since it was shown: review the new draft")
                if any(f.code == "changes_requested" for f in case.open_flags):
                    raise IllegalTransition(case.ref, case.state, action, "changes were requested on this draft")
            if action == "deliver" and case.approval.get("draft_hash") != case.draft.get("hash"):
                raise IllegalTransition(case.ref, case.state, action, "what would be sent is not what was approved")
            if action in ("approve", "deliver") and not case.verification.get("verified"):
                raise IllegalTransition(case.ref, case.state, action, "the requester's identity is not verified")
            if action == "clarified" and case.verification.get("verified"):
                return State.VERIFIED
            return target

        return self._change(case_id, action, actor, check, mutate, detail or {}, expected_version)

    def record(self, case_id: str, action: str, actor: str, mutate: Mutation,
               detail: dict[str, Any] | None = None, expected_version: int | None = None) -> Case:
        """An audited change that keeps the state (extension, flag, assignment, ticket link)."""
        return self._change(case_id, action, actor, lambda case: case.state, mutate, detail or {}, expected_version)

    def _change(self, case_id: str, action: str, actor: str, check: Callable[[Case], State],
                mutate: Mutation | None, detail: dict[str, Any], expected_version: int | None) -> Case:
        with self.store.transaction():
            doc = self.store.get_for_update("cases", case_id)  # held until commit: no lost update
            if doc is None:
                raise CaseNotFound(case_id)
            case = Case.from_doc(doc)
            if expected_version is not None and case.version != expected_version:
                raise IllegalTransition(case.ref, case.state, action,
                                        f"the case changed meanwhile (version {case.version}, "
                                        f"expected {expected_version}); reload and try again")
            before = case.state
            after = check(case)
            if mutate:
                mutate(case)
            if action == "approve":
                case.approval = {"by": actor, "at": self.now().isoformat(), "draft_hash": case.draft["hash"]}
            elif action == "revoke_approval":
                case.approval = {}
            case.state = after
            now = self.now()
            case.updated_at = now
            case.version += 1
            if after in ANSWERED_STATES and case.answered_at is None:
                case.answered_at = now
            if action != "record" and before != after:
                case.decisions.append({"action": action, "by": actor, "at": now.isoformat(),
                                       **{k: v for k, v in detail.items() if k in ("reason",)}})
            self.store.put("cases", case.id, case.to_doc())
            change = Change(case, action, before, after, actor, detail)
            pending = self._park_audit(change)
            self._queue_effects(change)
        checkpoint("store.case_committed")
        self._write_audit(pending)
        log.info("case %s: %s (%s -> %s) by %s", case.ref, action, before, after, _actor_kind(actor))
        return case

    # --- non-state actions everyone needs ---------------------------------------------------------
    def extend(self, case_id: str, actor: str, reason: str, expected_version: int | None = None) -> Case:
        """Use the two further months of Art. 12(3): only with reasons, only within the first month."""
        if not reason.strip():
            raise ValueError("an extension needs reasons: they are sent to the requester (Art. 12(3))")
        today = clock.receipt_date(self.now(), self.jurisdiction)

        def mutate(case: Case) -> None:
            received = clock.receipt_date(case.received_at, self.jurisdiction)
            if case.extension:
                raise IllegalTransition(case.ref, case.state, "extend", "already extended")
            if case.state in ANSWERED_STATES:
                raise IllegalTransition(case.ref, case.state, "extend", "the request is already answered")
            last = clock.last_extension_notice_day(received)
            if today > last:
                raise IllegalTransition(case.ref, case.state, "extend",
                                        f"an extension must be notified by {last.isoformat()}")
            case.extension = {"reason": reason, "at": self.now().isoformat(), "by": actor}
            case.decisions.append({"action": "extend", "by": actor, "at": self.now().isoformat(), "reason": reason})

        return self.record(case_id, "extend", actor, mutate, {"reason": reason}, expected_version)

    def flag(self, case_id: str, code: str, detail: str, actor: str = "system") -> Case:
        """Tell agents something needs them. `detail` must not carry personal data (it is audited)."""

        def mutate(case: Case) -> None:
            if not any(f.code == code and not f.resolved for f in case.flags):
                case.flags.append(Flag(code=code, detail=detail, at=self.now().isoformat()))

        return self.record(case_id, "flag", actor, mutate, {"code": code})

    def request_changes(self, case_id: str, actor: str, reason: str, draft_hash: str = "",
                        expected_version: int | None = None) -> Case:
        """An approver sends the draft back with reasons: kept on the case, flagged, approval blocked.

        `draft_hash`, when given, is the draft the approver saw: refused if the draft changed since.
        """
        if not reason.strip():
            raise ValueError("a request for changes needs reasons: the person redrafting reads them")
        at = self.now().isoformat()

        def mutate(case: Case) -> None:
            if case.state != State.DRAFTED:
                raise IllegalTransition(case.ref, case.state, "request_changes",
                                        "there is no draft waiting for approval")
            if draft_hash and draft_hash != case.draft.get("hash"):
                raise IllegalTransition(case.ref, case.state, "request_changes",
                                        "the draft changed since it was shown: review the new draft")
            case.decisions.append({"action": "request_changes", "by": actor, "at": at, "reason": reason,
                                   "draft_hash": case.draft.get("hash", "")})
            if not any(f.code == "changes_requested" and not f.resolved for f in case.flags):
                case.flags.append(Flag(code="changes_requested", detail=reason[:500], at=at))

        return self.record(case_id, "request_changes", actor, mutate,
                           {"reason": reason, "draft_hash": draft_hash}, expected_version)

    def resolve_flag(self, case_id: str, code: str, actor: str, expected_version: int | None = None) -> Case:
        def mutate(case: Case) -> None:
            for f in case.flags:
                if f.code == code:
                    f.resolved = True

        return self.record(case_id, "resolve_flag", actor, mutate, {"code": code}, expected_version)

    # --- effects and audit ------------------------------------------------------------------------
    def _queue_effects(self, change: Change) -> None:
        now = self.now()
        for planner in self.planners:
            for effect in planner(change):
                enqueue(self.store, effect, now)

    def _park_audit(self, change: Change) -> dict[str, Any]:
        pending = {
            "id": uuid.uuid4().hex, "actor": change.actor, "action": change.action,
            "at": self.now().isoformat(), "case_id": change.case.id, "case_ref": change.case.ref,
            "before": str(change.before), "after": str(change.after), "detail": _ids_only(change.detail),
            "writer": worker_id(),  # a restart writes what a dead writer left parked (flush_orphaned_audit)
        }
        self.store.put("audit_pending", pending["id"], pending)
        return pending

    def _write_audit(self, pending: dict[str, Any]) -> None:
        """After the change is committed, also when the caller wraps it in a bigger transaction (a
        batch of webhooks): an event must never describe a change that was rolled back. The events
        of one transaction are appended together (one audit lock and sync for a whole batch)."""
        self._queued_audit().append(pending)
        self.store.after_commit(self._flush_queued_audit)

    def _queued_audit(self) -> list[dict[str, Any]]:
        queue = getattr(self._local, "audit", None)
        if queue is None:
            queue = self._local.audit = []
        return queue

    def _flush_queued_audit(self) -> None:
        queue = self._queued_audit()
        batch, queue[:] = list(queue), []
        # a transaction that rolled back never ran its callback, but left its events queued: their
        # parked copies went with it, so only events still parked are real
        self._append_audit([p for p in batch if self.store.get("audit_pending", p["id"]) is not None])

    def _append_audit(self, parked: list[dict[str, Any]]) -> None:
        if not parked:
            return
        self.audit.append_many([{"actor": p["actor"], "action": p["action"], "at": datetime.fromisoformat(p["at"]),
                                 "case_id": p["case_id"], "case_ref": p["case_ref"], "before": p["before"],
                                 "after": p["after"], "detail": {**p["detail"], "event_id": p["id"]}}
                                for p in parked])
        checkpoint("store.audit_appended")
        with self.store.transaction():
            for p in parked:
                self.store.delete("audit_pending", p["id"])

    def flush_orphaned_audit(self) -> int:
        """On start: write at once the events parked by processes of this host that are gone (killed
        before writing them), before anything newer happens to their cases; others wait for the
        periodic `flush_pending_audit` (their writer may be alive, on another host)."""
        with self.store.exclusive("job:audit.flush"):  # the periodic flush's lock: never both at once
            orphans = [p for p in self.store.find("audit_pending") if gone(p.get("writer", ""))]
            return self._flush(sorted(orphans, key=lambda p: p["at"]))

    def flush_pending_audit(self, older_than: timedelta | None = None) -> int:
        """Write audit events parked by a process that crashed before writing them. `older_than`:
        only those parked that long ago, since a younger one may be in the hands of its writer (in
        this instance or another) right now. Run by one instance at a time (a `single` job)."""
        parked = sorted(self.store.find("audit_pending"), key=lambda p: p["at"])
        if older_than is not None:
            horizon = self.now() - older_than
            parked = [p for p in parked if datetime.fromisoformat(p["at"]) < horizon]
        return self._flush(parked)

    def _flush(self, parked: list[dict[str, Any]]) -> int:
        if not parked:
            return 0
        written = {e.get("detail", {}).get("event_id") for e in self.audit.events()}
        for pending in parked:
            if pending["id"] in written:
                self.store.delete("audit_pending", pending["id"])
        self._append_audit([p for p in parked if p["id"] not in written])
        return len(parked)

    def log_event(self, action: str, actor: str, case: Case | None = None, detail: dict[str, Any] | None = None) -> None:
        """An audit event that changes no case (a download, a login, a rejected webhook)."""
        self.audit.append(actor=actor, action=action, at=self.now(), case_id=case.id if case else "",
                          case_ref=case.ref if case else "", before=str(case.state) if case else "",
                          after=str(case.state) if case else "", detail=_ids_only(detail or {}))


_SAFE_DETAIL_KEYS = {"channel", "rights", "code", "source", "draft_hash", "ticket", "effect",
                     "system", "count", "files", "outcome", "method", "language", "event_id", "message_id",
                     "attempt", "result", "kind"}


def _ids_only(detail: dict[str, Any]) -> dict[str, Any]:
    """Keep only keys known to carry no personal data: the audit outlives the data it describes.

    Free text (an agent's reasons) stays on the case; the audit keeps its hash, which proves it later.
    """
    kept = {k: v for k, v in detail.items() if k in _SAFE_DETAIL_KEYS}
    if detail.get("reason"):
        kept["reason_sha256"] = hashlib.sha256(str(detail["reason"]).encode()).hexdigest()
    return kept


def _actor_kind(actor: str) -> str:
    return actor.split(":", 1)[0]


def today(now: datetime, jurisdiction: clock.Jurisdiction) -> date:
    return clock.receipt_date(now, jurisdiction)
