"""What a helpdesk ticket event does to dsarbot: new requests, customer comments, agents' changes.

Always from the ticket as the API reports it (`TicketSnapshot`), never from the webhook body:
- a ticket not linked to a case is classified like an email through Intake (channel = the helpdesk,
  sender = the requester's address as the helpdesk reports it, received_at = the ticket's
  created_at) and, when it is a request, becomes a case linked to THAT ticket; tickets dsarbot
  opened itself are recognised by API-only markers and left alone;
- customers' public comments go through Intake too (it threads them to the case by ticket);
- an agent solving/closing the ticket while the request is open, or reopening it, flags the case;
  a merge links the case to the surviving ticket and flags it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.cases import CaseNotFound
from bot.models import ANSWERED_STATES, Case, Message
from bot.service import Service
from integrations.base import CLOSED_STATUSES, HelpdeskEvent, TicketComment, TicketRef, TicketSnapshot
from integrations.helpdesk_sync import link_ticket

log = logging.getLogger(__name__)


@dataclass
class PreparedEvent:
    """An event with everything fetched from the API (done outside any store transaction)."""

    event: HelpdeskEvent
    system: str
    snapshot: TicketSnapshot | None
    merge_target: TicketSnapshot | None = None


def _message_id(system: str, ticket_id: str, comment_id: str = "") -> str:
    # stable across webhook retries and restarts: Intake deduplicates on it
    suffix = f".comment.{comment_id}" if comment_id else ""
    return f"<{system}.ticket.{ticket_id}{suffix}@helpdesk.dsarbot>"


def ticket_message(snapshot: TicketSnapshot) -> Message:
    return Message(id="", channel=snapshot.system, sender=snapshot.requester_email,
                   sender_name=snapshot.requester_name, subject=snapshot.subject, text=snapshot.description,
                   received_at=snapshot.created_at, message_id=_message_id(snapshot.system, snapshot.id),
                   external_ids={f"{snapshot.system}_ticket": snapshot.id})


def comment_message(snapshot: TicketSnapshot, comment: TicketComment) -> Message:
    return Message(id="", channel=snapshot.system, sender=comment.author_email, sender_name=comment.author_name,
                   subject=snapshot.subject, text=comment.body, received_at=comment.created_at,
                   message_id=_message_id(snapshot.system, snapshot.id, comment.id),
                   in_reply_to=_message_id(snapshot.system, snapshot.id),
                   external_ids={f"{snapshot.system}_ticket": snapshot.id, f"{snapshot.system}_comment": comment.id})


class EventApplier:
    """Applies prepared events to the cases. Idempotent: a replayed event changes nothing more."""

    def __init__(self, service: Service, intake) -> None:
        self.service = service
        self.intake = intake
        self.cases = service.cases
        self.store = service.store

    def linked_case(self, system: str, ticket_id: str) -> Case | None:
        link = self.store.get("refs", f"ticket:{system}:{ticket_id}")
        return self.cases.get(link["case_id"]) if link else None

    def origin_case(self, snapshot: TicketSnapshot) -> Case | None:
        """The case dsarbot opened this ticket for (API-only markers), if any."""
        try:
            if snapshot.origin_case_id:
                return self.cases.get(snapshot.origin_case_id)
            if snapshot.origin_case_ref:
                return self.cases.by_ref(snapshot.origin_case_ref)
        except CaseNotFound:
            pass
        return None

    def apply(self, prepared: PreparedEvent) -> str:
        event, snapshot = prepared.event, prepared.snapshot
        case = self.linked_case(prepared.system, event.ticket_id)
        if snapshot is None:
            if case is not None and case.state not in ANSWERED_STATES:
                self.cases.flag(case.id, "ticket_deleted", f"helpdesk ticket {event.ticket_id} no longer exists")
            return "ticket_gone"
        ref = {"system": snapshot.system, "id": snapshot.id, **({"url": snapshot.url} if snapshot.url else {})}
        if case is None:
            origin = self.origin_case(snapshot)
            if origin is not None:
                if origin.ticket.get("id"):
                    return "own_ticket"  # (a stray duplicate would be the agents' to close)
                # our own ticket, whose id the opening effect has not stored yet: link it now
                case = link_ticket(self.service, origin.id, TicketRef(snapshot.system, snapshot.id, snapshot.url),
                                   "found")
                self._status_changed(snapshot)
            else:
                outcome = self.intake.receive(ticket_message(snapshot), ticket=ref).outcome
                self._comments(snapshot, ref)
                if self.linked_case(snapshot.system, snapshot.id) is not None:
                    self._status_changed(snapshot)  # remembers the first status
                return outcome
        self._comments(snapshot, ref)
        if event.kind == "ticket_merged" and prepared.merge_target is not None:
            return self._merged(case, snapshot, prepared.merge_target)
        return self._status(case, snapshot)

    def _comments(self, snapshot: TicketSnapshot, ref: dict[str, str]) -> None:
        for comment in snapshot.comments:
            self.intake.receive(comment_message(snapshot, comment), ticket=ref)

    def _status_changed(self, snapshot: TicketSnapshot) -> tuple[str | None, str]:
        key = f"ticket_status:{snapshot.system}:{snapshot.id}"
        before = (self.store.get("kv", key) or {}).get("status")
        if before != snapshot.status:
            self.store.put("kv", key, {"status": snapshot.status})
        return before, snapshot.status

    def _status(self, case: Case, snapshot: TicketSnapshot) -> str:
        if case.ticket.get("id") != snapshot.id:
            self._status_changed(snapshot)
            return "old_ticket"  # a merged-away ticket: its status no longer speaks for the case
        before, now = self._status_changed(snapshot)
        if before is None or (before in CLOSED_STATUSES) == (now in CLOSED_STATUSES):
            return "updated"
        if now in CLOSED_STATUSES and case.state not in ANSWERED_STATES:
            self.cases.flag(case.id, "ticket_closed",
                            f"an agent set ticket {snapshot.id} to {now} while the request is still open")
            return "flagged_closed"
        if now not in CLOSED_STATUSES:
            self.cases.flag(case.id, "ticket_reopened", f"ticket {snapshot.id} was reopened")
            return "flagged_reopened"
        return "updated"

    def _merged(self, case: Case, source: TicketSnapshot, target: TicketSnapshot) -> str:
        self._status_changed(source)
        if case.ticket.get("id") != source.id or target.id == source.id:
            return "updated"
        other = self.linked_case(target.system, target.id)
        if other is not None and other.id != case.id:
            self.cases.flag(case.id, "ticket_merged",
                            f"ticket {source.id} was merged into ticket {target.id}, which belongs to case "
                            f"{other.ref}: link them by hand")
            return "flagged_merged_conflict"
        link_ticket(self.service, case.id, TicketRef(target.system, target.id, target.url), "merged")
        self._status_changed(target)
        self.cases.flag(case.id, "ticket_merged", f"ticket {source.id} was merged into ticket {target.id}")
        log.info("case %s follows its ticket's merge into %s", case.ref, target.id)
        return "relinked"
