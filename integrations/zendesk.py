"""Zendesk Support as the helpdesk: tickets with the dsar fields, internal notes, replies, signed webhooks.

Documented shapes this module relies on (developer.zendesk.com):
- Tickets API (api-reference/ticketing/tickets/tickets): `POST /api/v2/tickets.json` with
  `{"ticket": {subject, comment, requester, external_id, tags, custom_fields: [{id, value}]}}`;
  `GET /api/v2/tickets.json?external_id=` lists tickets by external id (not unique, so we take the
  oldest); `PUT /api/v2/tickets/{id}.json` with `additional_tags` / `remove_tags` (never `tags`,
  which would erase the agents' own); `include=users` sideloads the requester. Ticket creation also
  takes an `Idempotency-Key` header (api-reference/ticketing/introduction/#idempotency).
- Comments are added through a ticket update: `comment: {body, public: false, uploads: [tokens]}`
  (rest_api/docs/core/ticket_comments); files go first through the Uploads API,
  `POST /api/v2/uploads.json?filename=` with the raw bytes (documentation/ticketing/managing-tickets/
  adding-ticket-attachments-with-the-api). An update may carry `metadata: {custom: {...}}`, kept on
  its audit (`GET /api/v2/tickets/{id}/audits.json`): that is where a retry looks for our marker.
- Auth: Basic `{email}/token:{api_token}`. Rate limit: 429 with Retry-After.
- Webhooks (documentation/webhooks/verifying, .../anatomy-of-a-webhook-request): headers
  `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(secret, timestamp + raw body)),
  `X-Zendesk-Webhook-Signature-Timestamp` (ISO 8601, e.g. 2021-03-25T05:09:27Z) and
  `x-zendesk-webhook-invocation-id` (the same on every retry of one invocation). Event payloads
  (api-reference/webhooks/event-types/ticket-events): `{"type": "zen:event-type:ticket.created",
  "subject": "zen:ticket:35436", "detail": {"id": "35436", ...}, "event": {...}}`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping

from bot import clock
from bot.config import ZendeskConfig
from bot.models import Case, parse_datetime
from integrations.base import (Helpdesk, HelpdeskEvent, Misconfigured, NoteFile, TicketComment, TicketRef,
                               TicketSnapshot, WebhookRejected)
from integrations.helpdesk_fields import (FIELD_KEYS, case_fields, case_tags, managed_tags, posted_marker,
                                          ticket_body, ticket_subject)
from integrations.http_api import ApiClient, header

SIGNATURE = "x-zendesk-webhook-signature"
TIMESTAMP = "x-zendesk-webhook-signature-timestamp"
INVOCATION = "x-zendesk-webhook-invocation-id"
_STATUS = {"new": "open", "open": "open", "pending": "pending", "hold": "pending", "solved": "solved",
           "closed": "closed"}
_EVENT_PREFIX = "zen:event-type:ticket."


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()).decode()


class ZendeskHelpdesk(Helpdesk):
    name = "zendesk"

    def __init__(self, config: ZendeskConfig, jurisdiction: clock.Jurisdiction,
                 now: Callable[[], datetime] | None = None) -> None:
        if not config.email:
            raise Misconfigured("[zendesk] email is required: the API token's agent (auth is email/token)")
        self.config = config
        self.jurisdiction = jurisdiction
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.api = ApiClient("zendesk", config.base_url, (f"{config.email}/token", config.api_token),
                             timeout=config.timeout_seconds, now=self.now)

    # --- tickets ---------------------------------------------------------------------------------
    def _custom_fields(self, case: Case) -> list[dict[str, Any]]:
        values = case_fields(case, self.jurisdiction)
        return [{"id": self.config.field_ids[key], "value": values[key]} for key in FIELD_KEYS
                if key in self.config.field_ids]

    def _ref(self, ticket_id: Any) -> TicketRef:
        return TicketRef(self.name, str(ticket_id), f"{self.api.base_url}/agent/tickets/{ticket_id}")

    def open_ticket(self, case: Case, idempotency_key: str) -> TicketRef:
        ticket: dict[str, Any] = {
            "subject": ticket_subject(case),
            # private first comment: the requester's "request received" trigger stays silent
            "comment": {"body": ticket_body(case, self.jurisdiction), "public": False},
            "external_id": case.id, "tags": case_tags(case), "custom_fields": self._custom_fields(case),
        }
        if case.requester.email:
            ticket["requester"] = {"email": case.requester.email, "name": case.requester.name or case.requester.email}
        data = self.api.json("POST", "/api/v2/tickets.json", json={"ticket": ticket},
                             headers={"Idempotency-Key": idempotency_key[:255]})
        return self._ref(data["ticket"]["id"])

    def find_ticket(self, case: Case) -> TicketRef | None:
        data = self.api.json("GET", "/api/v2/tickets.json", params={"external_id": case.id})
        ids = sorted(int(t["id"]) for t in data.get("tickets", []) if str(t.get("external_id")) == case.id)
        return self._ref(ids[0]) if ids else None

    def update_fields(self, case: Case) -> None:
        tags = case_tags(case)
        ticket = {"custom_fields": self._custom_fields(case), "additional_tags": tags,
                  "remove_tags": sorted(managed_tags(case) - set(tags))}
        self.api.json("PUT", f"/api/v2/tickets/{case.ticket['id']}.json", json={"ticket": ticket})

    def add_note(self, case: Case, text: str, attachments: list[NoteFile] | None = None,
                 idempotency_key: str = "") -> None:
        tokens = [self._upload(f) for f in attachments or []]
        self._comment(case, {"body": text, "public": False, **({"uploads": tokens} if tokens else {})},
                      idempotency_key)

    def public_reply(self, case: Case, text: str, idempotency_key: str = "") -> None:
        self._comment(case, {"body": text, "public": True}, idempotency_key)

    def _upload(self, file: NoteFile) -> str:
        data = self.api.json("POST", "/api/v2/uploads.json", params={"filename": file.filename}, data=file.data,
                             headers={"Content-Type": "application/binary"})
        return data["upload"]["token"]

    def _comment(self, case: Case, comment: dict[str, Any], idempotency_key: str) -> None:
        ticket: dict[str, Any] = {"comment": comment}
        if idempotency_key:
            ticket["metadata"] = {"custom": {"dsarbot_ref": posted_marker(idempotency_key)}}
        self.api.json("PUT", f"/api/v2/tickets/{case.ticket['id']}.json", json={"ticket": ticket})

    def already_posted(self, case: Case, idempotency_key: str, text: str = "") -> bool:
        marker = posted_marker(idempotency_key)
        for audit in self._pages(f"/api/v2/tickets/{case.ticket['id']}/audits.json", "audits"):
            if ((audit.get("metadata") or {}).get("custom") or {}).get("dsarbot_ref") == marker:
                return True
        return False

    def _pages(self, path: str, key: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Cursor pagination (`page[size]`, `meta.has_more`, `meta.after_cursor`), sideloads merged in."""
        query = {**(params or {}), "page[size]": 100}
        for _ in range(50):  # a DSAR ticket has a handful of audits; this bounds a runaway loop
            data = self.api.json("GET", path, params=query)
            users = {u["id"]: u for u in data.get("users", [])}
            for item in data.get(key, []):
                yield {**item, "_users": users}
            meta = data.get("meta") or {}
            if not meta.get("has_more"):
                return
            query["page[after]"] = meta["after_cursor"]

    def fetch_ticket(self, ticket_id: str, with_comments: bool = False) -> TicketSnapshot | None:
        response = self.api.request("GET", f"/api/v2/tickets/{int(ticket_id)}.json", params={"include": "users"},
                                    ok=(200, 404))
        if response.status_code == 404:
            return None
        data = response.json()
        ticket = data["ticket"]
        users = {u["id"]: u for u in data.get("users", [])}
        requester = users.get(ticket.get("requester_id"), {})
        snapshot = TicketSnapshot(
            system=self.name, id=str(ticket["id"]), status=_STATUS.get(ticket.get("status", ""), "open"),
            subject=ticket.get("subject") or "", description=ticket.get("description") or "",
            requester_email=(requester.get("email") or "").strip().lower(), requester_name=requester.get("name") or "",
            created_at=parse_datetime(ticket["created_at"]), origin_case_id=str(ticket.get("external_id") or ""),
            url=self._ref(ticket["id"]).url)
        if with_comments:
            snapshot.comments = self._customer_comments(snapshot.id)
        return snapshot

    def _customer_comments(self, ticket_id: str) -> list[TicketComment]:
        comments = list(self._pages(f"/api/v2/tickets/{ticket_id}/comments.json", "comments", {"include": "users"}))
        found = []
        for comment in comments[1:]:  # the first comment is the ticket's description
            author = comment["_users"].get(comment.get("author_id"), {})
            if comment.get("public") and author.get("role") == "end-user":
                found.append(TicketComment(id=str(comment["id"]), author_email=(author.get("email") or "").lower(),
                                           author_name=author.get("name") or "", body=comment.get("body") or "",
                                           created_at=parse_datetime(comment["created_at"])))
        return found

    # --- webhooks ----------------------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.config.webhook_secret
        if not secret:
            raise WebhookRejected("no [zendesk] webhook_secret configured: every webhook is refused")
        signature, timestamp = header(headers, SIGNATURE), header(headers, TIMESTAMP)
        if not signature or not timestamp:
            raise WebhookRejected("signature or timestamp header missing")
        if not hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode()):
            raise WebhookRejected("bad signature")
        try:
            signed_at = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError:
            raise WebhookRejected("unreadable signature timestamp") from None
        if signed_at.tzinfo is None:
            raise WebhookRejected("signature timestamp without time zone")
        if abs((self.now() - signed_at).total_seconds()) > self.config.webhook_max_skew_seconds:
            raise WebhookRejected("stale signature timestamp")

    def delivery_key(self, headers: Mapping[str, str], body: bytes) -> str | None:
        # the invocation id is not signed: pair it with the body so a forged id cannot shadow a real delivery
        invocation = header(headers, INVOCATION)
        return f"zendesk:{invocation}:{hashlib.sha256(body).hexdigest()[:32]}" if invocation else None

    def replay_key(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return "zendesk-sig:" + hashlib.sha256(header(headers, SIGNATURE).encode()).hexdigest()[:32]

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> HelpdeskEvent:
        """Raises ValueError for a body that is not an event object (the drain keeps it aside, with why)."""
        payload = json.loads(body)
        detail, event = (payload.get("detail") or {}, payload.get("event") or {}) if isinstance(payload, dict) \
            else (None, None)
        if not isinstance(detail, dict) or not isinstance(event, dict):
            raise ValueError("not a Zendesk event: the body, its 'detail' and its 'event' must be JSON objects")
        kind = str(payload.get("type", ""))
        ticket_id = str(detail.get("id") or str(payload.get("subject", "")).rpartition(":")[2])
        invocation = header(headers, INVOCATION)
        if not kind.startswith(_EVENT_PREFIX) or not ticket_id.isdigit():
            return HelpdeskEvent("ignored", ticket_id, invocation_id=invocation)
        if kind == _EVENT_PREFIX + "created":
            return HelpdeskEvent("ticket_created", ticket_id, invocation_id=invocation)
        if kind == _EVENT_PREFIX + "merged":
            # the surviving ticket is named in the signed event object (`target_ticket_id`)
            target = str(event.get("target_ticket_id") or "")
            return HelpdeskEvent("ticket_merged", ticket_id, merged_into=target if target.isdigit() else "",
                                 invocation_id=invocation)
        return HelpdeskEvent("ticket_updated", ticket_id, status=str(detail.get("status", "")).lower(),
                             invocation_id=invocation)

    # --- start-up ----------------------------------------------------------------------------------
    def check_credentials(self) -> str | None:
        missing = [key for key in FIELD_KEYS if key not in self.config.field_ids]
        if missing:
            return f"[zendesk] field_ids lacks {', '.join(missing)}: add the ids of those ticket fields"
        me = self.api.json("GET", "/api/v2/users/me.json").get("user") or {}
        if not me.get("id"):
            return "[zendesk] the API token is not accepted (Zendesk answered as an anonymous user)"
        known = {f.get("id") for f in self.api.json("GET", "/api/v2/ticket_fields.json").get("ticket_fields", [])}
        unknown = [key for key, fid in self.config.field_ids.items() if fid not in known]
        if unknown:
            return f"[zendesk] field_ids {', '.join(unknown)} name no ticket field of this account"
        if not self.config.webhook_secret:
            return "[zendesk] webhook_secret is empty: every webhook will be refused (set DSARBOT_ZENDESK__WEBHOOK_SECRET)"
        return None
