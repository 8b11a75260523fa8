"""Fake Freshdesk API v2 and webhook sender, with the documented shapes (developers.freshdesk.com/api).

- Auth: Basic with the API key and `X`; 401 `{"code": "invalid_credentials", "message": ...}`.
- Tickets: create (JSON) -> 201 ticket object with `custom_fields` keyed `cf_...` (an unknown one is
  400 "Validation failed", `invalid_field`); `GET /api/v2/tickets/{id}?include=requester`; update
  with `tags` replacing the list; `GET /api/v2/tickets?email=&updated_since=` from the database.
- Filter: `GET /api/v2/search/tickets?query="name:'value'"` -> `{"results", "total"}`; like the real
  one its index lags: tickets created since the last `index()` are not found yet.
- Notes `POST /api/v2/tickets/{id}/notes` (JSON, or multipart with `attachments[]`), replies
  `POST /api/v2/tickets/{id}/reply`, conversations `GET /api/v2/tickets/{id}/conversations`.
- Webhooks: automation rules POST the rule's own JSON (here `{"freshdesk_webhook": {...}}` with
  placeholders filled) and a custom header carrying our shared secret; nothing is signed.
"""
from __future__ import annotations

import base64
import html
import itertools
import json
import re
from datetime import datetime, timezone
from typing import Any

from tests.fakes.http_fake import FakeApi, Reply, Seen

API_KEY = "fd-test-key-abcdef"
SECRET = "fd-shared-webhook-secret"
CUSTOM_FIELDS = ("cf_dsar_case_ref", "cf_dsar_right", "cf_dsar_received", "cf_dsar_due", "cf_dsar_extended_due",
                 "cf_dsar_state")
STATUS = {"open": 2, "pending": 3, "resolved": 4, "closed": 5}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(body_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", body_html.replace("<br>", "\n"))).strip()


class FakeFreshdesk(FakeApi):
    def __init__(self) -> None:
        expected = "Basic " + base64.b64encode(f"{API_KEY}:X".encode()).decode()
        super().__init__("Freshdesk", lambda seen: seen.headers.get("authorization") == expected,
                         Reply(401, {"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}))
        self.ids = itertools.count(500)
        self.contacts: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.conversations: dict[int, list[dict[str, Any]]] = {}
        self.indexed: set[int] = set()
        self.agent_id = 77
        self.route("GET", "/api/v2/ticket_fields", lambda seen: [
            {"id": i, "name": name, "label": name, "type": "custom_text", "default": name in ("subject", "status")}
            for i, name in enumerate(("requester", "subject", "status", "priority", "description", *CUSTOM_FIELDS))])
        self.route("POST", "/api/v2/tickets", self._create)
        self.route("GET", "/api/v2/tickets", self._list)
        self.route("GET", "/api/v2/tickets/{tid}", self._show)
        self.route("PUT", "/api/v2/tickets/{tid}", self._update)
        self.route("POST", "/api/v2/tickets/{tid}/notes", self._note)
        self.route("POST", "/api/v2/tickets/{tid}/reply", self._reply)
        self.route("GET", "/api/v2/tickets/{tid}/conversations", self._conversations)
        self.route("GET", "/api/v2/search/tickets", self._search)

    # --- the API ---------------------------------------------------------------------------------
    def _contact(self, email: str, name: str = "") -> int:
        for contact in self.contacts.values():
            if contact["email"] == email.lower():
                return contact["id"]
        cid = next(self.ids)
        self.contacts[cid] = {"id": cid, "name": name or email, "email": email.lower(), "mobile": None, "phone": None}
        return cid

    def _new(self, requester: int, subject: str, description: str, tags: list[str] | None = None,
             custom_fields: dict[str, Any] | None = None, source: int = 1) -> int:
        tid = next(self.ids)
        now = _now()
        self.tickets[tid] = {"id": tid, "subject": subject, "description": description,
                             "description_text": _text(description), "status": 2, "priority": 1, "source": source,
                             "requester_id": requester, "responder_id": None, "tags": list(tags or []),
                             "custom_fields": {name: (custom_fields or {}).get(name) for name in CUSTOM_FIELDS},
                             "created_at": now, "updated_at": now, "deleted": False, "spam": False}
        self.conversations[tid] = []
        return tid

    def _create(self, seen: Seen) -> Reply:
        data = seen.json()
        unknown = [k for k in data.get("custom_fields", {}) if k not in CUSTOM_FIELDS]
        if unknown or not data.get("email") or not data.get("subject"):
            return Reply(400, {"description": "Validation failed", "errors": [
                {"field": f, "message": "Unexpected/invalid field in request", "code": "invalid_field"}
                for f in unknown or ["email"]]})
        tid = self._new(self._contact(data["email"], data.get("name", "")), data["subject"], data.get("description", ""),
                        data.get("tags"), data.get("custom_fields"), source=2)
        return Reply(201, self.tickets[tid])

    def _list(self, seen: Seen) -> list[dict[str, Any]]:
        email = seen.arg("email").lower()
        since = seen.arg("updated_since")
        return [t for t in self.tickets.values() if self.contacts[t["requester_id"]]["email"] == email
                and (not since or t["updated_at"] >= since)]

    def _show(self, seen: Seen, tid: str) -> Reply:
        ticket = self.tickets.get(int(tid))
        if ticket is None:
            return Reply(404, None)
        body = dict(ticket)
        if seen.arg("include") == "requester":
            body["requester"] = self.contacts[ticket["requester_id"]]
        return Reply(200, body)

    def _update(self, seen: Seen, tid: str) -> Reply:
        ticket = self.tickets.get(int(tid))
        if ticket is None:
            return Reply(404, None)
        data = seen.json()
        unknown = [k for k in data.get("custom_fields", {}) if k not in CUSTOM_FIELDS]
        if unknown:
            return Reply(400, {"description": "Validation failed", "errors": [
                {"field": f, "message": "Unexpected/invalid field in request", "code": "invalid_field"} for f in unknown]})
        ticket["custom_fields"].update(data.get("custom_fields", {}))
        if "tags" in data:
            ticket["tags"] = list(data["tags"])
        ticket["updated_at"] = _now()
        return Reply(200, ticket)

    def _conversation(self, tid: int, body: str, *, incoming: bool, private: bool, user_id: int,
                      from_email: str | None = None, attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        item = {"id": next(self.ids), "body": body, "body_text": _text(body), "incoming": incoming,
                "private": private, "user_id": user_id, "from_email": from_email, "ticket_id": tid,
                "source": 2 if private else 0, "attachments": attachments or [], "created_at": _now(),
                "updated_at": _now()}
        self.conversations[tid].append(item)
        return item

    def _note(self, seen: Seen, tid: str) -> Reply:
        if int(tid) not in self.tickets:
            return Reply(404, None)
        if seen.headers.get("content-type", "").startswith("multipart/form-data"):
            fields, files = seen.multipart()
            if any(name != "attachments[]" for name, *_ in files):
                return Reply(400, {"description": "Validation failed", "errors": [{"field": "attachments"}]})
            body, private = fields["body"][0], fields.get("private", ["true"])[0] == "true"
            attachments = [{"id": next(self.ids), "name": filename, "content_type": ctype, "size": len(data)}
                           for _, filename, ctype, data in files]
        else:
            data = seen.json()
            body, private, attachments = data["body"], data.get("private", True), []
        return Reply(201, self._conversation(int(tid), body, incoming=False, private=private, user_id=self.agent_id,
                                             attachments=attachments))

    def _reply(self, seen: Seen, tid: str) -> Reply:
        if int(tid) not in self.tickets:
            return Reply(404, None)
        return Reply(201, self._conversation(int(tid), seen.json()["body"], incoming=False, private=False,
                                             user_id=self.agent_id))

    def _conversations(self, seen: Seen, tid: str) -> Reply:
        items = self.conversations.get(int(tid))
        if items is None:
            return Reply(404, None)
        page, per_page = int(seen.arg("page", "1")), int(seen.arg("per_page", "30"))
        return Reply(200, items[(page - 1) * per_page:page * per_page])

    def _search(self, seen: Seen) -> Reply:
        query = seen.arg("query")
        match = re.fullmatch(r"\"(\w+):'([^']*)'\"", query)
        if not match:
            return Reply(400, {"description": "Validation failed", "errors": [{"field": "query", "code": "invalid_value"}]})
        name, value = match.groups()  # custom fields are named without their cf_ prefix here
        results = [t for tid, t in self.tickets.items() if tid in self.indexed
                   and t["custom_fields"].get(f"cf_{name}") == value]
        return Reply(200, {"results": results, "total": len(results)})

    def index(self) -> None:
        """The search index catches up (it lags a few minutes behind in the real Freshdesk)."""
        self.indexed = set(self.tickets)

    # --- what customers and agents do in Freshdesk ---------------------------------------------------
    def customer_ticket(self, email: str, name: str, subject: str, text: str) -> int:
        with self.handling:
            return self._new(self._contact(email, name), subject, f"<div>{html.escape(text)}</div>")

    def customer_reply(self, tid: int, text: str, email: str | None = None) -> None:
        with self.handling:
            ticket = self.tickets[tid]
            user = self._contact(email) if email else ticket["requester_id"]
            self._conversation(tid, f"<div>{html.escape(text)}</div>", incoming=True, private=False, user_id=user,
                               from_email=self.contacts[user]["email"])

    def agent_status(self, tid: int, status: str) -> None:
        self.tickets[tid]["status"] = STATUS[status]

    def notes(self, tid: int) -> list[dict[str, Any]]:
        return [c for c in self.conversations[tid] if not c["incoming"]]

    # --- webhooks ------------------------------------------------------------------------------------
    def webhook(self, tid: int, *, secret: str | None = SECRET, lies: dict[str, Any] | None = None,
                header: str = "X-Dsarbot-Webhook-Secret") -> tuple[dict[str, str], bytes]:
        payload = {"freshdesk_webhook": {"ticket_id": str(tid), "triggered_event": "{ticket_action:created}",
                                         **(lies or {})}}
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[header] = secret
        return headers, json.dumps(payload).encode()
