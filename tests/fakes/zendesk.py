"""Fake Zendesk Support API and webhook sender, with the documented shapes (developer.zendesk.com).

- Tickets (api-reference/ticketing/tickets/tickets): `{"ticket": {...}}` in and out; list by
  `external_id` -> `{"tickets": [...], "count", "next_page", "previous_page"}`; `include=users`
  sideloads `users`; updates take `additional_tags` / `remove_tags`, `comment` and `metadata`
  (kept on the audit); `Idempotency-Key` on creation answers the first result again with
  `x-idempotency-lookup: hit` (api-reference/ticketing/introduction/#idempotency).
- Uploads: `POST /api/v2/uploads.json?filename=` -> 201 `{"upload": {"token", "attachment", "attachments"}}`.
- Audits / comments: cursor pagination `page[size]`, `meta.has_more`, `meta.after_cursor`.
- Auth: Basic `{email}/token:{api_token}`; 401 `{"error": "Couldn't authenticate you"}`.
- Webhooks: signed like Zendesk (documentation/webhooks/verifying): base64 HMAC-SHA256 of
  timestamp + body, event payloads as in api-reference/webhooks/event-types/ticket-events.
"""
from __future__ import annotations

import base64
import itertools
import json
from datetime import datetime, timezone
from typing import Any

from integrations.zendesk import sign
from tests.fakes.http_fake import FakeApi, Reply, Seen

EMAIL = "dpo@shop.example"
TOKEN = "zd-test-token-0123456789"
SECRET = "zd-webhook-signing-secret"
FIELD_IDS = {"case_ref": 9001, "right": 9002, "received": 9003, "due": 9004, "extended_due": 9005, "state": 9006}
AGENT_ID = 100


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeZendesk(FakeApi):
    def __init__(self) -> None:
        expected = "Basic " + base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()
        super().__init__("Zendesk", lambda seen: seen.headers.get("authorization") == expected,
                         Reply(401, {"error": "Couldn't authenticate you"}))
        self.ids = itertools.count(1000)
        self.users: dict[int, dict[str, Any]] = {AGENT_ID: {"id": AGENT_ID, "name": "DPO", "email": EMAIL,
                                                            "role": "admin"}}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.audits: dict[int, list[dict[str, Any]]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, tuple[str, Reply]] = {}
        self.invocations = itertools.count(8350205582)
        self.route("GET", "/api/v2/users/me.json", lambda seen: {"user": self.users[AGENT_ID]})
        self.route("GET", "/api/v2/ticket_fields.json", lambda seen: {"ticket_fields": [
            {"id": fid, "type": "text", "title": key, "active": True} for key, fid in FIELD_IDS.items()]})
        self.route("POST", "/api/v2/tickets.json", self._create)
        self.route("GET", "/api/v2/tickets.json", self._list)
        self.route("GET", "/api/v2/tickets/{tid}.json", self._show)
        self.route("PUT", "/api/v2/tickets/{tid}.json", self._update)
        self.route("POST", "/api/v2/uploads.json", self._upload)
        self.route("GET", "/api/v2/tickets/{tid}/audits.json", lambda seen, tid: self._page(seen, "audits",
                                                                                             self.audits.get(int(tid))))
        self.route("GET", "/api/v2/tickets/{tid}/comments.json", self._comments)

    # --- the API ---------------------------------------------------------------------------------
    def _user_for(self, requester: dict[str, Any] | None) -> int:
        if not requester:
            return AGENT_ID
        for user in self.users.values():
            if user["email"] == requester["email"].lower():
                return user["id"]
        uid = next(self.ids)
        self.users[uid] = {"id": uid, "name": requester.get("name") or requester["email"],
                           "email": requester["email"].lower(), "role": "end-user"}
        return uid

    def _create(self, seen: Seen) -> Reply:
        key = seen.headers.get("idempotency-key")
        if key and key in self.idempotency:
            body, reply = self.idempotency[key]
            if body != seen.body.decode():
                return Reply(400, {"error": "IdempotentRequestError",
                                   "description": "Request parameters do not match the original request"})
            return Reply(reply.status, reply.body, {"x-idempotency-lookup": "hit"})
        data = seen.json()["ticket"]
        unknown = [f["id"] for f in data.get("custom_fields", []) if f["id"] not in FIELD_IDS.values()]
        if unknown or not data.get("comment", {}).get("body"):
            return Reply(422, {"error": "RecordInvalid", "description": "Record validation errors"})
        tid = self._new_ticket(self._user_for(data.get("requester")), data.get("subject", ""), data["comment"],
                               author=AGENT_ID, external_id=data.get("external_id"), tags=data.get("tags", []),
                               custom_fields=data.get("custom_fields", []), via="api")
        reply = Reply(201, {"ticket": self.ticket_json(tid), "audit": self.audits[tid][-1]})
        if key:
            self.idempotency[key] = (seen.body.decode(), reply)
        return Reply(reply.status, reply.body, {"x-idempotency-lookup": "miss"} if key else {})

    def _new_ticket(self, requester_id: int, subject: str, comment: dict[str, Any], *, author: int,
                    external_id: str | None = None, tags: list[str] | None = None,
                    custom_fields: list[dict[str, Any]] | None = None, via: str = "email") -> int:
        tid = next(self.ids)
        now = _now()
        values = {f["id"]: f["value"] for f in custom_fields or []}
        self.tickets[tid] = {"id": tid, "url": f"https://shop.zendesk.com/api/v2/tickets/{tid}.json",
                             "external_id": external_id, "subject": subject, "raw_subject": subject,
                             "description": comment["body"], "status": "new", "type": None, "priority": None,
                             "requester_id": requester_id, "submitter_id": author, "assignee_id": None,
                             "tags": list(dict.fromkeys(tags or [])), "via": {"channel": via},
                             "custom_fields": [{"id": fid, "value": values.get(fid)} for fid in FIELD_IDS.values()],
                             "created_at": now, "updated_at": now}
        self.comments[tid] = []
        self.audits[tid] = []
        self._add_comment(tid, comment, author)
        return tid

    def _add_comment(self, tid: int, comment: dict[str, Any], author: int, metadata: dict[str, Any] | None = None) -> None:
        attachments = [self.uploads.pop(token)["attachment"] for token in comment.get("uploads", [])
                       if token in self.uploads]
        cid = next(self.ids)
        self.comments[tid].append({"id": cid, "type": "Comment", "author_id": author, "body": comment["body"],
                                   "html_body": f"<p>{comment['body']}</p>", "plain_body": comment["body"],
                                   "public": comment.get("public", True), "attachments": attachments,
                                   "created_at": _now()})
        self.audits[tid].append({"id": next(self.ids), "ticket_id": tid, "author_id": author, "created_at": _now(),
                                 "metadata": {"system": {}, "custom": (metadata or {}).get("custom", {})},
                                 "events": [{"id": cid, "type": "Comment", "public": comment.get("public", True)}]})

    def ticket_json(self, tid: int) -> dict[str, Any]:
        return dict(self.tickets[tid])

    def _list(self, seen: Seen) -> dict[str, Any]:
        wanted = seen.arg("external_id")
        tickets = [self.ticket_json(t) for t, ticket in self.tickets.items() if ticket["external_id"] == wanted]
        return {"tickets": tickets, "count": len(tickets), "next_page": None, "previous_page": None}

    def _show(self, seen: Seen, tid: str) -> Reply:
        ticket = self.tickets.get(int(tid))
        if ticket is None:
            return Reply(404, {"error": "RecordNotFound", "description": "Not found"})
        body: dict[str, Any] = {"ticket": self.ticket_json(int(tid))}
        if "users" in seen.arg("include").split(","):
            body["users"] = [self.users[u] for u in {ticket["requester_id"], ticket["submitter_id"]}]
        return Reply(200, body)

    def _update(self, seen: Seen, tid: str) -> Reply:
        ticket = self.tickets.get(int(tid))
        if ticket is None:
            return Reply(404, {"error": "RecordNotFound", "description": "Not found"})
        data = seen.json()["ticket"]
        if "tags" in data:
            return Reply(400, {"error": "the fake refuses `tags` on update: it would erase the agents' tags"})
        for item in data.get("custom_fields", []):
            if item["id"] not in FIELD_IDS.values():
                return Reply(422, {"error": "RecordInvalid", "description": "Record validation errors"})
            for current in ticket["custom_fields"]:
                if current["id"] == item["id"]:
                    current["value"] = item["value"]
        ticket["tags"] = [t for t in ticket["tags"] if t not in data.get("remove_tags", [])]
        ticket["tags"] += [t for t in data.get("additional_tags", []) if t not in ticket["tags"]]
        if "status" in data:
            ticket["status"] = data["status"]
        if "comment" in data:
            self._add_comment(int(tid), data["comment"], AGENT_ID, data.get("metadata"))
        ticket["updated_at"] = _now()
        return Reply(200, {"ticket": self.ticket_json(int(tid)), "audit": (self.audits[int(tid)] or [None])[-1]})

    def _upload(self, seen: Seen) -> Reply:
        if seen.headers.get("content-type") != "application/binary" or not seen.arg("filename"):
            return Reply(400, {"error": "filename and a binary body are required"})
        token = f"tok{next(self.ids)}"
        attachment = {"id": next(self.ids), "file_name": seen.arg("filename"), "size": len(seen.body),
                      "content_type": "application/binary", "content_url": f"https://shop.zendesk.com/a/{token}"}
        self.uploads[token] = {"attachment": attachment, "data": seen.body}
        return Reply(201, {"upload": {"token": token, "expires_at": _now(), "attachment": attachment,
                                      "attachments": [attachment]}})

    def _page(self, seen: Seen, key: str, items: list[dict[str, Any]] | None, extra: dict[str, Any] | None = None) -> Reply:
        if items is None:
            return Reply(404, {"error": "RecordNotFound", "description": "Not found"})
        size = int(seen.arg("page[size]", "100"))
        start = int(seen.arg("page[after]", "0") or 0)
        chunk = items[start:start + size]
        more = start + size < len(items)
        return Reply(200, {key: chunk, **(extra or {}),
                           "meta": {"has_more": more, "after_cursor": str(start + size) if more else None,
                                    "before_cursor": str(start)}, "links": {}})

    def _comments(self, seen: Seen, tid: str) -> Reply:
        comments = self.comments.get(int(tid))
        users = [self.users[u] for u in {c["author_id"] for c in comments or []}]
        return self._page(seen, "comments", comments, {"users": users} if "users" in seen.arg("include") else {})

    # --- what customers and agents do in Zendesk -----------------------------------------------------
    def customer_ticket(self, email: str, name: str, subject: str, body: str) -> int:
        uid = self._user_for({"email": email, "name": name})
        with self.handling:
            return self._new_ticket(uid, subject, {"body": body, "public": True}, author=uid)

    def customer_comment(self, tid: int, body: str, email: str | None = None) -> None:
        uid = self._user_for({"email": email}) if email else self.tickets[tid]["requester_id"]
        with self.handling:
            self._add_comment(tid, {"body": body, "public": True}, uid)

    def agent_status(self, tid: int, status: str) -> None:
        self.tickets[tid]["status"] = status

    def merge(self, source: int, target: int) -> None:
        """What an agent's merge does: the source is closed, a private note on each side."""
        self.tickets[source]["status"] = "closed"
        self._add_comment(source, {"body": f"Request #{source} was closed and merged into request #{target}.",
                                   "public": False}, AGENT_ID)

    def notes(self, tid: int) -> list[dict[str, Any]]:
        """dsarbot's comments on a ticket (the first one, the ticket's description, excluded)."""
        return [c for c in self.comments[tid][1:] if c["author_id"] == AGENT_ID]

    def field(self, tid: int, key: str) -> Any:
        return next(f["value"] for f in self.tickets[tid]["custom_fields"] if f["id"] == FIELD_IDS[key])

    # --- webhooks ------------------------------------------------------------------------------------
    def webhook(self, kind: str, tid: int, *, event: dict[str, Any] | None = None, secret: str = SECRET,
                timestamp: str | None = None, invocation: str | None = None) -> tuple[dict[str, str], bytes]:
        """A signed event delivery as Zendesk sends it: (headers, body)."""
        ticket = self.tickets.get(tid, {"id": tid, "status": "closed", "requester_id": 0})
        payload = {"type": f"zen:event-type:ticket.{kind}", "account_id": 88888888, "id": f"evt-{next(self.ids)}",
                   "time": _now(), "zendesk_event_version": "2022-11-06", "subject": f"zen:ticket:{tid}",
                   "detail": {"id": str(tid), "status": str(ticket["status"]).upper(),
                              "requester_id": str(ticket["requester_id"]), "created_at": ticket.get("created_at"),
                              "external_id": ticket.get("external_id"), "via": {"channel": "email"}},
                   "event": event or {}}
        body = json.dumps(payload).encode()
        return self.signed(body, timestamp or _now(), invocation or str(next(self.invocations)), secret), body

    @staticmethod
    def signed(body: bytes, timestamp: str, invocation: str, secret: str = SECRET) -> dict[str, str]:
        """The headers Zendesk sends with `body` (a retry re-signs the same body with a new timestamp)."""
        return {"Content-Type": "application/json", "x-zendesk-account-id": "88888888",
                "x-zendesk-webhook-id": "01F1KRFQ6BG29CNWFR60NK5FNY", "x-zendesk-webhook-invocation-id": invocation,
                "x-zendesk-webhook-signature": sign(secret, timestamp, body),
                "x-zendesk-webhook-signature-timestamp": timestamp}
