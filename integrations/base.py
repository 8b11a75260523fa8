"""One interface per kind of integration: channel, helpdesk, notifier, mailer, data source.

Each outside system is one module under `integrations/` implementing one of these, plus a
`setup(service)` function that reads its config section and plugs it into the service.
Connection failures map to three outcomes (STYLE.md): AuthFailed (a human must fix credentials),
NotReady (retry with backoff), Misconfigured (stop and say why).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

from bot.models import Case, Message


class IntegrationError(Exception):
    """Base of the three outcomes of talking to an outside system."""


class AuthFailed(IntegrationError):
    """Credentials were refused: a human must fix them; retrying will not help."""


class NotReady(IntegrationError):
    """Down, timing out or rate limited: retry later (after `retry_after` seconds when known)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Misconfigured(IntegrationError):
    """The configuration cannot work (missing URL, unknown field): stop and say why."""


class WebhookRejected(Exception):
    """A webhook failed verification (signature, secret, timestamp, replay). Answer 401, parse nothing."""


# --- channels ----------------------------------------------------------------------------------
class Channel(ABC):
    """Where requests come in (mailbox, helpdesk webhooks, web form). Produces Messages."""

    name: str

    @abstractmethod
    def fetch(self) -> Iterable[Message]:
        """New messages since last time. Acknowledge each only after `ack` (after its case is stored)."""

    def ack(self, message: Message) -> None:
        """The message's case (or its non-request record) is committed: mark it done at the source."""


# --- helpdesks ---------------------------------------------------------------------------------
@dataclass
class TicketRef:
    system: str
    id: str
    url: str = ""


@dataclass
class NoteFile:
    """A file to attach to a ticket note, already decrypted from the vault (never a sender's path)."""

    filename: str  # safe name (bot.vault.safe_name)
    content_type: str
    data: bytes


@dataclass
class TicketComment:
    """A public comment on a ticket written by the customer side (never an agent's)."""

    id: str
    author_email: str  # as the helpdesk reports it: a claim (SECURITY.md rule 1)
    author_name: str
    body: str
    created_at: datetime


@dataclass
class TicketSnapshot:
    """A ticket as the helpdesk API reports it now (re-fetched: webhook payloads are only hints)."""

    system: str
    id: str
    status: str  # normalised: "open" | "pending" | "solved" | "closed"
    subject: str
    description: str
    requester_email: str
    requester_name: str
    created_at: datetime
    origin_case_id: str = ""  # set only when dsarbot created the ticket (API-only markers)
    origin_case_ref: str = ""
    comments: list[TicketComment] = field(default_factory=list)  # customer comments after the first
    url: str = ""  # the ticket in the agents' interface


CLOSED_STATUSES = frozenset({"solved", "closed"})


@dataclass
class HelpdeskEvent:
    """What a verified helpdesk webhook says, in dsarbot's words. Only a hint: the ticket is re-fetched."""

    kind: str  # "ticket_created" | "ticket_updated" | "ticket_merged"
    ticket_id: str
    message: Message | None = None  # unused by helpdesks that re-fetch (kept for other channels)
    status: str = ""
    merged_into: str = ""
    invocation_id: str = ""  # for deduplication of retried deliveries


class Helpdesk(ABC):
    """A ticketing system agents work in. Every case has exactly one ticket there.

    Idempotency: `open_ticket` may have succeeded on an earlier attempt whose answer was lost;
    callers then ask `find_ticket` first. Notes and replies likewise: `already_posted`.
    """

    name: str

    @abstractmethod
    def open_ticket(self, case: Case, idempotency_key: str) -> TicketRef: ...

    @abstractmethod
    def find_ticket(self, case: Case) -> TicketRef | None:
        """The ticket an earlier attempt created for `case`, if any."""

    @abstractmethod
    def update_fields(self, case: Case) -> None:
        """Mirror reference, rights, dates and state into the ticket's custom fields."""

    @abstractmethod
    def add_note(self, case: Case, text: str, attachments: list[NoteFile] | None = None,
                 idempotency_key: str = "") -> None:
        """Internal note (never visible to the requester)."""

    @abstractmethod
    def public_reply(self, case: Case, text: str, idempotency_key: str = "") -> None: ...

    @abstractmethod
    def already_posted(self, case: Case, idempotency_key: str, text: str = "") -> bool:
        """Whether a note or reply with this key is already on the case's ticket."""

    @abstractmethod
    def fetch_ticket(self, ticket_id: str, with_comments: bool = False) -> TicketSnapshot | None:
        """The ticket as the API reports it now; None when it no longer exists."""

    @abstractmethod
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise WebhookRejected unless the request provably comes from the helpdesk. Before parsing."""

    @abstractmethod
    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> HelpdeskEvent: ...

    def delivery_key(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Same value for every retry of one delivery (None: the helpdesk gives no such id)."""
        return None

    def replay_key(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Same value when the very same signed request is sent again (a replay)."""
        return None

    def check_credentials(self) -> str | None:
        """A cheap authenticated request at start; None when fine, else what is wrong."""
        return None


# --- notifier ----------------------------------------------------------------------------------
class Notifier(ABC):
    """Where agents are told things and can decide (Slack)."""

    name: str

    @abstractmethod
    def case_opened(self, case: Case) -> dict[str, str]:
        """Post about a new case; returns the thread handle to keep on the case."""

    @abstractmethod
    def case_update(self, case: Case, text: str) -> None: ...

    @abstractmethod
    def reminder(self, case: Case, kind: str, escalate: bool = False) -> None: ...

    @abstractmethod
    def request_approval(self, case: Case) -> None: ...

    @abstractmethod
    def digest(self, rows: list[dict[str, Any]]) -> None:
        """The daily list of open cases by urgency (references, states, dates: no personal data)."""


# --- mailer ------------------------------------------------------------------------------------
@dataclass
class OutgoingMail:
    to: str
    subject: str
    text: str
    html: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # (filename, content type, data)
    headers: dict[str, str] = field(default_factory=dict)
    message_id: str = ""  # set it from the outbox key so a retry sends the same Message-ID


class Mailer(ABC):
    @abstractmethod
    def send(self, mail: OutgoingMail) -> str:
        """Send; returns the Message-ID. Our mail is always marked Auto-Submitted (RFC 3834)."""


# --- data sources ------------------------------------------------------------------------------
@dataclass
class SubjectQuery:
    """Who to look for. Only verified identifiers: never a name or a phone on its own."""

    emails: list[str]
    identifiers: dict[str, list[str]] = field(default_factory=dict)  # e.g. {"customer_id": ["42"]}
    case_id: str = ""


@dataclass
class Record:
    """One record found about the subject, with where it came from (provenance)."""

    source: str  # configured source name, e.g. "shop_db"
    system: str  # product name shown to the requester, e.g. "PrestaShop", "Stripe"
    entity: str  # table or endpoint, e.g. "ps_customer", "customers"
    record_id: str
    fields: dict[str, Any]
    fetched_at: str
    category: str = ""  # filled from the register when the source does not know
    matched_on: list[str] = field(default_factory=list)  # e.g. ["email"], ["customer_id via ps_customer"]

    def to_doc(self) -> dict[str, Any]:
        return {"source": self.source, "system": self.system, "entity": self.entity, "record_id": self.record_id,
                "fields": self.fields, "fetched_at": self.fetched_at, "category": self.category,
                "matched_on": self.matched_on}


@dataclass(frozen=True)
class OnFileContact:
    """An e-mail address a source holds for the subject: where a one-time code may be sent (SECURITY.md rule 2)."""

    email: str
    source: str  # configured source name
    matched_on: str  # the identifier kind that led to it, e.g. "email", "order_reference"


@dataclass
class SourceResult:
    source: str
    records: list[Record]
    discovered: dict[str, list[str]] = field(default_factory=dict)  # identifiers learnt, for later steps
    error: str = ""  # empty when the source answered fully


class Source(ABC):
    """A connected system that can find (and for erasure, delete or anonymise) a subject's records."""

    name: str
    system: str

    @abstractmethod
    def find(self, query: SubjectQuery) -> SourceResult: ...

    def erase(self, query: SubjectQuery) -> SourceResult:
        raise NotImplementedError(f"{self.system} cannot erase yet")

    def check(self) -> str | None:
        """A cheap test request at start; None when fine, else what is wrong (auth, network, config)."""
        return None

    def accepts(self) -> list[str]:
        """Identifier kinds this source can search by; a playbook step waits for the sources producing them."""
        return ["email"]

    def publishes(self) -> list[str]:
        """Identifier kinds this source discovers for later steps (the keys of SourceResult.discovered)."""
        return []

    def entities(self) -> list[str]:
        """The tables or endpoints this source can return records from (the register must describe each)."""
        return []

    def contacts(self, identifiers: Mapping[str, list[str]]) -> list[OnFileContact]:
        """E-mail addresses on file for these identifiers (e.g. {"email": [...]}, {"order_reference": [...]}).

        Used before identity is verified, to find where a code may be sent; never shown to the requester.
        """
        return []
