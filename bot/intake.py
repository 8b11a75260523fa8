"""Intake: every channel hands its Messages here; each becomes a case, a reply on a case, or a
recorded non-request. Never lost, never doubled.

Replay safety: the message id and the case id are derived from the message's dedupe key
(Message-ID, else a content hash). A crash anywhere replays to the same ids, and `CaseBook.open`
with an existing id returns the existing case, so a channel may deliver the same mail twice (IMAP
after a crash, a retried webhook) and still get exactly one case. A replay repeats the content too:
a Message-ID that comes back with other content (a broken mailer reusing IDs, a forged reply) is a
new message, threaded onto the case of the first one when there is one, never dropped.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from bot.cases import CaseBook, CaseNotFound
from bot.faults import checkpoint
from bot.models import CASE_REF_PATTERN, Case, Message, Person

log = logging.getLogger(__name__)


@dataclass
class Classification:
    """What the classifier decided, and why (the cues are shown to the agent)."""

    kind: str  # "request" | "auto_reply" | "bounce" | "other"
    rights: list[str] = field(default_factory=list)
    language: str = "en"
    confidence: float = 0.0
    cues: list[str] = field(default_factory=list)

    def to_doc(self) -> dict[str, Any]:
        return {"kind": self.kind, "rights": self.rights, "language": self.language,
                "confidence": round(self.confidence, 3), "cues": self.cues}


class Classifier(Protocol):
    def __call__(self, message: Message) -> Classification: ...


@dataclass
class Parties:
    """Who asks and about whom, when a channel has it as structured fields (the web form).

    Still claims: they only say where to look and whom to ask; verification decides what is true."""

    requester: Person
    subject: Person
    third_party: bool = False


@dataclass
class IntakeResult:
    outcome: str  # "case_opened" | "attached" | "ignored" | "duplicate"
    case_id: str = ""
    case_ref: str = ""
    kind: str = ""
    message_id: str = ""


def _bare_id(message_id: str) -> str:
    return message_id.strip().strip("<>").strip().lower()


def content_digest(message: Message) -> str:
    """A hash of what makes the content (not the arrival): what a replay of the same item repeats."""
    return hashlib.sha256("\x00".join([message.channel, message.sender.lower(), message.subject, message.text,
                                       *sorted(f"{k}={v}" for k, v in message.external_ids.items())])
                          .encode("utf-8", "surrogatepass")).hexdigest()


def dedupe_key(message: Message) -> str:
    """Message-ID when there is one (`<>` is none), else the content digest."""
    bare = _bare_id(message.message_id)
    return "msgid:" + bare if bare else "hash:" + content_digest(message)


def _derived_id(prefix: str, key: str) -> str:
    return hashlib.sha256(f"{prefix}:{key}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


_REF_RE = re.compile(CASE_REF_PATTERN)


class Intake:
    """Turns Messages into cases. Channels call `receive`, then ack at their source."""

    def __init__(self, cases: CaseBook, classifier: Classifier) -> None:
        self.cases = cases
        self.store = cases.store
        self.classifier = classifier
        self.after_receive: list[Callable[[Message, IntakeResult], None]] = []

    def receive(self, message: Message, *, ticket: dict[str, str] | None = None,
                classification: Classification | None = None, parties: Parties | None = None) -> IntakeResult:
        """`classification` and `parties`, when given, come from a channel's structured fields (the form's
        ticked rights and language, who acts for whom) and replace guessing from the text."""
        # One transaction holding the message's dedupe key: two instances handed the same item at
        # once (a webhook retried to the other instance) take turns, and the second finds it done.
        with self.store.transaction():
            self.store.get_for_update("refs", f"dedupe:{dedupe_key(message)}")
            result = self._receive(message, ticket, classification, parties)
        for hook in self.after_receive:
            hook(message, result)
        return result

    def _receive(self, message: Message, ticket: dict[str, str] | None, classification: Classification | None,
                 parties: Parties | None) -> IntakeResult:
        key = dedupe_key(message)
        digest = content_digest(message)
        marker = self.store.get("refs", f"dedupe:{key}")
        reused_id = bool(marker) and marker.get("digest", digest) != digest  # markers before digests: a replay
        if reused_id:
            key = f"{key}#{digest[:32]}"
            marker = self.store.get("refs", f"dedupe:{key}")
        message.id = _derived_id("message", key)
        if marker and marker.get("status") == "done":
            return IntakeResult("duplicate", marker.get("case_id", ""), marker.get("case_ref", ""),
                                marker.get("kind", ""), message.id)
        with self.store.transaction():
            self.store.insert_new("refs", f"dedupe:{key}", {"status": "received", "message_id": message.id,
                                                             "digest": digest})
            self.store.put("messages", message.id, message.to_doc())
        checkpoint("intake.stored")
        result = self._route(message, key, ticket, classification, parties, reused_id)
        self.store.put("refs", f"dedupe:{key}", {"status": "done", "message_id": message.id, "digest": digest,
                                                  "case_id": result.case_id, "case_ref": result.case_ref,
                                                  "kind": result.kind})
        return result

    # --- routing ---------------------------------------------------------------------------------
    def _route(self, message: Message, key: str, ticket: dict[str, str] | None,
               classification: Classification | None = None, parties: Parties | None = None,
               reused_id: bool = False) -> IntakeResult:
        classification = classification or self.classifier(message)
        if classification.kind in ("auto_reply", "bounce"):
            return self._ignore(message, classification, "never answered (RFC 3834 / delivery report)")
        existing = self._thread_of(message, ticket, reused_id)
        if existing is not None:
            return self._attach(existing, message, classification)
        if classification.kind != "request" and not message.parse_error:
            return self._ignore(message, classification, "not a data subject request")
        return self._open(message, key, classification, ticket, parties)

    def _thread_of(self, message: Message, ticket: dict[str, str] | None, reused_id: bool = False) -> Case | None:
        """A reply to a case: by ticket, by In-Reply-To/References, or by the reference in the subject.
        A message reusing the Message-ID of an earlier one goes with that one's case, if it has one."""
        if ticket:
            link = self.store.get("refs", f"ticket:{ticket['system']}:{ticket['id']}")
            if link:
                return self.cases.get(link["case_id"])
        for ref in [message.message_id if reused_id else "", message.in_reply_to, *message.references]:
            ref = _bare_id(ref)
            link = self.store.get("refs", f"msgid:{ref}") if ref else None
            if link:
                return self.cases.get(link["case_id"])
        match = _REF_RE.search(message.subject or "")
        if match:
            try:
                return self.cases.by_ref(match.group(0))
            except CaseNotFound:
                return None
        return None

    def _open(self, message: Message, key: str, classification: Classification,
              ticket: dict[str, str] | None, parties: Parties | None = None) -> IntakeResult:
        case_id = _derived_id("case", key)
        requester = parties.requester if parties else Person(email=message.sender.strip().lower(),
                                                             name=message.sender_name)
        rights = classification.rights or ["access"]
        case = self.cases.open(received_at=message.received_at, rights=rights, language=classification.language,
                               channel=message.channel, requester=requester, message_ids=[message.id],
                               classification=classification.to_doc(), ticket=ticket, case_id=case_id,
                               subject=parties.subject if parties else None,
                               third_party=parties.third_party if parties else False)
        self._link_message(case, message)
        if ticket:
            self.store.put("refs", f"ticket:{ticket['system']}:{ticket['id']}", {"case_id": case.id})
        if message.parse_error and not any(f.code == "unparseable" for f in case.flags):
            case = self.cases.flag(case.id, "unparseable",
                                   f"the message could not be fully read: {message.parse_error[:200]}")
        if classification.kind != "request":
            case = self.cases.flag(case.id, "unsure_request",
                                   "kept because it could not be read; dismiss it if it is not a request")
        return IntakeResult("case_opened", case.id, case.ref, classification.kind, message.id)

    def _attach(self, case: Case, message: Message, classification: Classification) -> IntakeResult:
        self._link_message(case, message)
        sender_differs = message.sender.strip().lower() not in (case.requester.email, case.subject.email)

        def mutate(c: Case) -> None:
            if message.id not in c.message_ids:
                c.message_ids.append(message.id)

        self.cases.record(case.id, "message_attached", "requester" if not sender_differs else "unknown_sender",
                          mutate, {"message_id": message.id, "channel": message.channel})
        self.cases.flag(case.id, "new_message", "the requester wrote again: read the new message")
        if sender_differs:
            self.cases.flag(case.id, "sender_differs",
                            "a message on this case came from an address that is not the requester's")
        return IntakeResult("attached", case.id, case.ref, classification.kind, message.id)

    def _link_message(self, case: Case, message: Message) -> None:
        bare = _bare_id(message.message_id)
        if bare and not self.store.get("refs", f"msgid:{bare}"):  # the first case to use an ID keeps it
            self.store.put("refs", f"msgid:{bare}", {"case_id": case.id})

    def _ignore(self, message: Message, classification: Classification, why: str) -> IntakeResult:
        self.store.put("ignored", message.id, {"message_id": message.id, "channel": message.channel,
                                                "received_at": message.received_at.isoformat(),
                                                "classification": classification.to_doc(), "why": why})
        log.info("message %s not a request (%s)", message.id[:12], classification.kind)
        return IntakeResult("ignored", kind=classification.kind, message_id=message.id)

    def link_outgoing(self, case_id: str, message_id: str) -> None:
        """Remember a Message-ID we sent on a case, so that replies to it thread to the case."""
        bare = _bare_id(message_id)
        if bare:
            self.store.put("refs", f"msgid:{bare}", {"case_id": case_id})
