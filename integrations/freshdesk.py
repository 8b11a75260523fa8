"""Freshdesk as the helpdesk: tickets with the dsar custom fields, private notes, replies, webhooks.

Documented shapes this module relies on (developers.freshdesk.com/api, API v2):
- Auth: Basic with the API key as user name and `X` as password; 429 with Retry-After.
- Tickets: `POST /api/v2/tickets` (`email`, `subject`, `description` in HTML, `status` 2=open,
  `priority`, `tags`, `custom_fields` keyed by the field's API name, `cf_...`);
  `PUT /api/v2/tickets/{id}` (`tags` replaces the list, so we merge with what is there);
  `GET /api/v2/tickets/{id}?include=requester`; statuses 2 open, 3 pending, 4 resolved, 5 closed.
- `GET /api/v2/tickets?email=&updated_since=` lists a requester's tickets straight from the
  database; `GET /api/v2/search/tickets?query="..."` filters on fields (custom fields by name
  without `cf_`), but its index lags a few minutes: we ask the list first, the search second.
- Notes: `POST /api/v2/tickets/{id}/notes` with `private: true`; with files, as multipart/form-data
  with `attachments[]` parts (github.com/freshdesk/fresh-samples/wiki). Replies:
  `POST /api/v2/tickets/{id}/reply`. Conversations: `GET /api/v2/tickets/{id}/conversations`
  (`incoming` true for the customer side, `private` for notes).
- Webhooks come from automation rules and are NOT signed (support.freshdesk.com, "Using webhooks in
  automation rules"): the rule must send our shared secret in a header, and we trust nothing in the
  body but the ticket id: the ticket is re-fetched through the API.
"""
from __future__ import annotations

import hmac
import html
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

from bot import clock
from bot.config import FreshdeskConfig
from bot.models import Case, parse_datetime
from integrations.base import (Helpdesk, HelpdeskEvent, NoteFile, TicketComment, TicketRef, TicketSnapshot,
                               WebhookRejected)
from integrations.helpdesk_fields import (FIELD_KEYS, case_fields, case_tags, managed_tags, posted_marker,
                                          ticket_body, ticket_subject)
from integrations.http_api import ApiClient, header

OWN_TAG = "dsarbot"  # end users cannot set tags: marks the tickets dsarbot opened itself
_STATUS = {2: "open", 3: "pending", 4: "solved", 5: "closed"}


def as_html(text: str) -> str:
    """Plain text (which may quote the requester) made safe for an HTML note body."""
    return html.escape(text).replace("\n", "<br>")


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class FreshdeskHelpdesk(Helpdesk):
    name = "freshdesk"

    def __init__(self, config: FreshdeskConfig, jurisdiction: clock.Jurisdiction,
                 now: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.jurisdiction = jurisdiction
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.api = ApiClient("freshdesk", config.base_url, (config.api_key, "X"), timeout=config.timeout_seconds,
                             now=self.now)

    # --- tickets ---------------------------------------------------------------------------------
    def _custom_fields(self, case: Case) -> dict[str, Any]:
        values = case_fields(case, self.jurisdiction)
        return {self.config.field_names[key]: values[key] for key in FIELD_KEYS if key in self.config.field_names}

    def _ref(self, ticket_id: Any) -> TicketRef:
        return TicketRef(self.name, str(ticket_id), f"{self.api.base_url}/a/tickets/{ticket_id}")

    def open_ticket(self, case: Case, idempotency_key: str) -> TicketRef:
        ticket: dict[str, Any] = {
            "subject": ticket_subject(case), "description": as_html(ticket_body(case, self.jurisdiction)),
            "status": 2, "priority": 2, "tags": [*case_tags(case), OWN_TAG], "custom_fields": self._custom_fields(case),
        }
        if case.requester.email:
            ticket["email"] = case.requester.email
            if case.requester.name:
                ticket["name"] = case.requester.name
        return self._ref(self.api.json("POST", "/api/v2/tickets", json=ticket)["id"])

    def find_ticket(self, case: Case) -> TicketRef | None:
        ref_field = self.config.field_names.get("case_ref", "")
        candidates: list[dict[str, Any]] = []
        if case.requester.email:
            since = (case.created_at or case.received_at) - timedelta(days=1)
            candidates = self.api.json("GET", "/api/v2/tickets", params={
                "email": case.requester.email, "updated_since": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "per_page": 100})
        mine = [t for t in candidates if (t.get("custom_fields") or {}).get(ref_field) == case.ref]
        if not mine and ref_field:
            query = f"\"{ref_field.removeprefix('cf_')}:'{case.ref}'\""
            results = self.api.json("GET", "/api/v2/search/tickets", params={"query": query}).get("results", [])
            mine = [t for t in results if (t.get("custom_fields") or {}).get(ref_field) == case.ref]
        ids = sorted(int(t["id"]) for t in mine)
        return self._ref(ids[0]) if ids else None

    def update_fields(self, case: Case) -> None:
        path = f"/api/v2/tickets/{case.ticket['id']}"
        current = self.api.json("GET", path).get("tags") or []
        wanted = case_tags(case)
        stale = managed_tags(case) - set(wanted)
        tags = [t for t in current if t not in stale] + [t for t in wanted if t not in current]
        self.api.json("PUT", path, json={"custom_fields": self._custom_fields(case), "tags": tags})

    def add_note(self, case: Case, text: str, attachments: list[NoteFile] | None = None,
                 idempotency_key: str = "") -> None:
        body = as_html(text) + (f"<p>{posted_marker(idempotency_key)}</p>" if idempotency_key else "")
        path = f"/api/v2/tickets/{case.ticket['id']}/notes"
        if attachments:
            files = [("attachments[]", (f.filename, f.data, f.content_type)) for f in attachments]
            self.api.json("POST", path, data={"body": body, "private": "true"}, files=files)
        else:
            self.api.json("POST", path, json={"body": body, "private": True})

    def public_reply(self, case: Case, text: str, idempotency_key: str = "") -> None:
        self.api.json("POST", f"/api/v2/tickets/{case.ticket['id']}/reply", json={"body": as_html(text)})

    def already_posted(self, case: Case, idempotency_key: str, text: str = "") -> bool:
        marker = posted_marker(idempotency_key)
        wanted = _squash(text)[:200]
        for item in self._conversations(case.ticket["id"]):
            body = item.get("body_text") or ""
            if marker in body:
                return True
            if wanted and not item.get("incoming") and not item.get("private") and wanted in _squash(body):
                return True  # a public reply carries no marker: the customer would see it
        return False

    def _conversations(self, ticket_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in range(1, 51):
            batch = self.api.json("GET", f"/api/v2/tickets/{int(ticket_id)}/conversations",
                                  params={"page": page, "per_page": 100}) or []
            found.extend(batch)
            if len(batch) < 100:
                break
        return found

    def fetch_ticket(self, ticket_id: str, with_comments: bool = False) -> TicketSnapshot | None:
        response = self.api.request("GET", f"/api/v2/tickets/{int(ticket_id)}", params={"include": "requester"},
                                    ok=(200, 404))
        if response.status_code == 404:
            return None
        ticket = response.json()
        if ticket.get("deleted"):
            return None
        requester = ticket.get("requester") or {}
        tags = ticket.get("tags") or []
        own_ref = (ticket.get("custom_fields") or {}).get(self.config.field_names.get("case_ref", ""))
        snapshot = TicketSnapshot(
            system=self.name, id=str(ticket["id"]), status=_STATUS.get(ticket.get("status"), "pending"),
            subject=ticket.get("subject") or "", description=ticket.get("description_text") or "",
            requester_email=(requester.get("email") or "").strip().lower(), requester_name=requester.get("name") or "",
            created_at=parse_datetime(ticket["created_at"]),
            origin_case_ref=str(own_ref or "") if OWN_TAG in tags else "", url=self._ref(ticket["id"]).url)
        if with_comments:
            snapshot.comments = [self._comment(item, ticket, snapshot) for item in self._conversations(snapshot.id)
                                 if item.get("incoming") and not item.get("private")]
        return snapshot

    @staticmethod
    def _comment(item: dict[str, Any], ticket: dict[str, Any], snapshot: TicketSnapshot) -> TicketComment:
        by_requester = item.get("user_id") == ticket.get("requester_id")
        email = (item.get("from_email") or (snapshot.requester_email if by_requester else "")).strip().lower()
        return TicketComment(id=str(item["id"]), author_email=email,
                             author_name=snapshot.requester_name if by_requester else "",
                             body=item.get("body_text") or "", created_at=parse_datetime(item["created_at"]))

    # --- webhooks ----------------------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.config.webhook_secret
        if not secret:
            raise WebhookRejected("no [freshdesk] webhook_secret configured: every webhook is refused")
        given = header(headers, self.config.webhook_header.lower())
        if not given or not hmac.compare_digest(given.encode(), secret.encode()):
            raise WebhookRejected("missing or wrong shared secret")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> HelpdeskEvent:
        payload = json.loads(body)
        if isinstance(payload, dict) and isinstance(payload.get("freshdesk_webhook"), dict):
            payload = payload["freshdesk_webhook"]
        ticket_id = str(payload.get("ticket_id", "")).strip() if isinstance(payload, dict) else ""
        if not ticket_id.isdigit():
            return HelpdeskEvent("ignored", ticket_id)
        # everything else in the body is the rule's own template: a hint at most, never trusted
        return HelpdeskEvent("ticket_updated", ticket_id)

    # --- start-up ----------------------------------------------------------------------------------
    def check_credentials(self) -> str | None:
        names = {f.get("name") for f in self.api.json("GET", "/api/v2/ticket_fields") or []}
        missing = [f"{key} ({name})" for key, name in self.config.field_names.items() if name not in names]
        if missing:
            return f"[freshdesk] no ticket field for {', '.join(missing)}: create them or fix field_names"
        if not self.config.webhook_secret:
            return "[freshdesk] webhook_secret is empty: every webhook will be refused (set DSARBOT_FRESHDESK__WEBHOOK_SECRET)"
        return None
