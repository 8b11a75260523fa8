"""The words of DESIGN.md as types: rights, states, messages and cases.

Everything here is plain data. Behaviour lives elsewhere: transitions in `bot.cases`,
dates in `bot.clock`, persistence in `bot.store`.
"""
from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from enum import StrEnum
from typing import Any


class Right(StrEnum):
    """GDPR rights a data subject can exercise (Arts. 15-22, 7(3))."""

    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    PORTABILITY = "portability"
    OBJECTION = "objection"
    WITHDRAW_CONSENT = "withdraw_consent"


class State(StrEnum):
    """States of a case (DESIGN.md). Transitions live in `bot.cases`."""

    RECEIVED = "received"
    AWAITING_IDENTITY = "awaiting_identity"
    CLARIFICATION_REQUESTED = "clarification_requested"
    VERIFIED = "verified"
    GATHERING = "gathering"
    GATHERING_FAILED = "gathering_failed"
    DRAFTED = "drafted"
    APPROVED = "approved"
    DELIVERED = "delivered"
    CLOSED = "closed"
    REFUSED = "refused"
    REJECTED_IDENTITY = "rejected_identity"
    WITHDRAWN = "withdrawn"
    DISMISSED = "dismissed"


TERMINAL_STATES = frozenset({State.CLOSED})
#: States in which the request has been answered one way or another: the clock no longer runs.
ANSWERED_STATES = frozenset(
    {State.DELIVERED, State.CLOSED, State.REFUSED, State.REJECTED_IDENTITY, State.WITHDRAWN, State.DISMISSED}
)


class Channel(StrEnum):
    EMAIL = "email"
    ZENDESK = "zendesk"
    FRESHDESK = "freshdesk"
    FORM = "form"
    DESK = "desk"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def parse_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def parse_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


_REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: safe to read aloud and type


def new_case_ref(received: date) -> str:
    """A reference customers can quote: `DSR-YYMMDD-XXXXX` (random suffix, no shared counter)."""
    suffix = "".join(secrets.choice(_REF_ALPHABET) for _ in range(5))
    return f"DSR-{received:%y%m%d}-{suffix}"


CASE_REF_PATTERN = r"DSR-\d{6}-[2-9A-HJKMNP-TV-Z]{5}"


@dataclass
class Attachment:
    """An attachment kept outside the store (encrypted at rest); the store only keeps this reference."""

    filename: str
    content_type: str
    size: int
    sha256: str
    path: str  # relative to the data directory's attachment folder


@dataclass
class Message:
    """One incoming item (email, webhook payload, form post), normalised for every channel."""

    id: str
    channel: str
    sender: str  # address as written in the message: a claim, never proof (SECURITY.md rule 1)
    subject: str
    text: str
    received_at: datetime
    sender_name: str = ""
    reply_to: str = ""
    html: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    message_id: str = ""  # RFC 5322 Message-ID, when there is one
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    external_ids: dict[str, str] = field(default_factory=dict)  # e.g. {"zendesk_ticket": "123"}
    parse_error: str = ""  # set when the raw item could not be fully parsed: shown to an agent
    warnings: list[str] = field(default_factory=list)  # limits applied on purpose (attachment too big): shown too

    def to_doc(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["received_at"] = to_iso(self.received_at)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Message":
        data = dict(doc)
        data["received_at"] = parse_datetime(data["received_at"])
        data["attachments"] = [Attachment(**a) for a in data.get("attachments", [])]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Person:
    """The requester or the data subject. Only addresses on file count as verified channels."""

    email: str = ""
    name: str = ""
    phone: str = ""
    identifiers: dict[str, str] = field(default_factory=dict)  # e.g. {"order": "XKBKNABJK"}


@dataclass
class Flag:
    """Something an agent must look at (a source down, a failed side effect, a suspicious sender)."""

    code: str
    detail: str
    at: str
    resolved: bool = False


@dataclass
class Case:
    """One data subject request and everything dsarbot knows about its handling."""

    id: str
    ref: str
    state: State
    rights: list[str]
    language: str
    channel: str
    received_at: datetime
    due: date
    extended_due: date
    requester: Person = field(default_factory=Person)
    subject: Person = field(default_factory=Person)  # differs from requester under a mandate
    third_party: bool = False
    extension: dict[str, Any] | None = None  # {"reason", "at", "by"} once extended
    message_ids: list[str] = field(default_factory=list)
    ticket: dict[str, str] = field(default_factory=dict)  # {"system": "zendesk", "id": "123"}
    slack: dict[str, str] = field(default_factory=dict)  # {"channel": "C1", "ts": "1.2"}
    classification: dict[str, Any] = field(default_factory=dict)  # cues and confidence, for the agent
    verification: dict[str, Any] = field(default_factory=dict)
    gathering: dict[str, Any] = field(default_factory=dict)  # per-source status of the last playbook run
    draft: dict[str, Any] = field(default_factory=dict)  # {"hash", "files", "at"}
    approval: dict[str, Any] = field(default_factory=dict)  # {"by", "at", "draft_hash"}
    delivery: dict[str, Any] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    assignee: str = ""
    frozen: bool = False  # "this wasn't me": nothing leaves until an agent looks
    answered_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0

    @property
    def effective_due(self) -> date:
        return self.extended_due if self.extension else self.due

    @property
    def open_flags(self) -> list[Flag]:
        return [f for f in self.flags if not f.resolved]

    def to_doc(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["state"] = str(self.state)
        for key in ("received_at", "answered_at", "created_at", "updated_at", "due", "extended_due"):
            doc[key] = to_iso(getattr(self, key))
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Case":
        data = dict(doc)
        data["state"] = State(data["state"])
        for key in ("received_at", "answered_at", "created_at", "updated_at"):
            data[key] = parse_datetime(data.get(key))
        data["due"] = parse_date(data["due"])
        data["extended_due"] = parse_date(data["extended_due"])
        data["requester"] = Person(**data.get("requester", {}))
        data["subject"] = Person(**data.get("subject", {}))
        data["flags"] = [Flag(**f) for f in data.get("flags", [])]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
