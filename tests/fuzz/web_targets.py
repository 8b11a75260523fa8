"""Fuzz targets over HTTP: Slack's requests, helpdesk webhooks and the public form, through the service's
own Flask app.

Every request must get an answer below 500. A Slack request that is not validly signed (wrong
secret, stale, replayed, missing headers, signature of another body) is refused with 401 or 400
and changes nothing: not the store, not the audit trail, and no call goes out to Slack. A signed
one may only move a case when an approver clicked the case's current draft. A form post without
the session's CSRF token, or with invalid fields, stores nothing; an accepted one leaves exactly
one message, on a case. Listener and outbox exceptions count as crashes even when caught.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import random
import re
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bot.models import Person
from bot.service import Service
from bot.store import COLLECTIONS
from integrations.slack_blocks import Binding
from tests.fakes import freshdesk as fd
from tests.fakes import slack as fake_slack
from tests.fakes import zendesk as zd
from tests.fakes.slack import FakeSlack
from tests.fuzz.targets import RECEIVED, Broken, ServiceTarget
from tests.fuzz.webgen import WebInput
from tests.helpdesk_support import helpdesk_sections

APPROVER, AGENT, GUEST = "U0APPROVER", "U0AGENT", "U0GUEST"
#: Exceptions that say the code met a shape it did not expect, rather than refusing it on purpose.
PROGRAMMING_ERRORS = ("AttributeError", "TypeError", "KeyError", "IndexError", "NameError", "UnboundLocalError",
                      "RecursionError", "AssertionError")
DRAFT_HASH = "ab" * 32
_CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')


def snapshot(service: Service) -> tuple[str, int]:
    """Everything stored, and how long the audit trail is."""
    docs = {name: sorted(json.dumps(d, sort_keys=True) for d in service.store.find(name))
            for name in sorted(set(COLLECTIONS) | {"kv", "quarantine"})}
    audit = service.data_dir / "audit.jsonl"
    return json.dumps(docs), audit.stat().st_size if audit.exists() else 0


def fill(value: Any, known: dict[str, str]) -> Any:
    """Placeholders (tests/fuzz/webgen.py) replaced by real values, anywhere in a structure."""
    if isinstance(value, str):
        for name, real in known.items():
            value = value.replace(name, real)
        return value
    if isinstance(value, list):
        return [fill(v, known) for v in value]
    if isinstance(value, dict):
        return {fill(k, known): fill(v, known) for k, v in value.items()}
    return value


class SlackTarget(ServiceTarget):
    """Slack's three endpoints, on a service whose Slack is the local fake; one drafted case to click on."""

    name = "slack"

    def __init__(self, root: Path, fake: FakeSlack, recycle_every: int = 60) -> None:
        super().__init__(root, recycle_every, check_desk=False)
        self.fake = fake
        self.last_signed: tuple[str, bytes, dict[str, str]] | None = None
        for user in (APPROVER, AGENT):
            fake.add_user(user)
        fake.add_user(GUEST, is_restricted=True)

    def sections(self) -> dict[str, dict[str, Any]]:
        return {"slack": {"enabled": True, "bot_token": fake_slack.TOKEN, "signing_secret": fake_slack.SIGNING_SECRET,
                          "channel": fake_slack.CHANNEL, "approvers": [APPROVER], "api_base_url": self.fake.base_url}}

    def started(self, service: Service) -> None:
        super().started(service)
        self.client = self.app.test_client()
        cases = service.cases
        case = cases.open(received_at=RECEIVED, rights=["access"], language="fr", channel="desk",
                          requester=Person(email="jeanne.martin@example.fr", name="Jeanne Martin"))
        case = cases.transition(case.id, "verify", "agent:fuzz",
                                mutate=lambda c: c.verification.update(verified=True, method="email_code"))
        case = cases.transition(case.id, "start_gathering", "system")

        def keep(c: Any) -> None:
            c.draft = {"hash": DRAFT_HASH, "files": ["letter.pdf"], "at": RECEIVED.isoformat()}

        self.case = cases.transition(case.id, "gathered", "system", mutate=keep, detail={"draft_hash": DRAFT_HASH})
        self.run_outbox(service)
        self.last_signed = None

    def close(self) -> None:
        if self._service is not None:
            assert self._service.components["slack"].wait_idle(20), "slack listeners still running after 20 s"
        super().close()

    def known(self) -> dict[str, str]:
        case = self._service.cases.get(self.case.id)  # type: ignore[union-attr]
        return {"@@BINDING@@": Binding(case.id, DRAFT_HASH, case.version).encode(), "@@REF@@": case.ref,
                "@@CASE@@": case.id, "@@HASH@@": DRAFT_HASH, "@@TRIGGER@@": self.fake.trigger(),
                "@@RESPOND@@": f"{self.fake.api.url}/respond/{uuid.uuid4().hex[:8]}"}

    def feed(self, request: WebInput) -> str:
        self.tried += 1
        service = self.service()
        body = self._encode(request)
        headers = self._headers(request, body)
        before, calls_before = snapshot(service), len(self.fake.api.requests)
        states_before = {c.id: c.state for c in service.cases.all()}
        response = self.client.post(request.path, data=body, headers=headers)
        assert service.components["slack"].wait_idle(20), "slack listeners still running after 20 s"
        crashes = self.crashes_logged()
        if crashes:
            raise Broken("a Slack listener raised: " + "; ".join(crashes))
        status = response.status_code
        if status >= 500:
            raise Broken(f"{request.path} answered {status}")
        signed = request.signing == "valid"
        if not signed:
            # a replay is signed: it is refused where the original was (401 once seen, 400 or 404 before bolt)
            if status not in ((400, 401, 404) if request.signing == "replay" else (400, 401)):
                raise Broken(f"a request signed {request.signing!r} was answered {status}, not refused")
            if snapshot(service) != before:
                raise Broken(f"a request signed {request.signing!r} changed the store or the audit trail")
            if len(self.fake.api.requests) != calls_before:
                raise Broken(f"a request signed {request.signing!r} made dsarbot call Slack")
        else:
            self.last_signed = (request.path, body, headers)
            moved = self._check_moves(request, states_before, service)
        self.run_outbox(service)
        outcome = f"{status} {'signed' if signed else 'refused (' + request.signing + ')'}"
        if signed and moved:
            outcome += " (case moved: " + ",".join(moved) + ")"
        self.outcomes[outcome] += 1
        return outcome

    def _check_moves(self, request: WebInput, states_before: dict[str, Any], service: Service) -> list[str]:
        moved = [c for c in service.cases.all() if states_before.get(c.id) not in (None, c.state)]
        if not moved:
            return []
        user = (request.body.get("user") or {}) if isinstance(request.body, dict) else {}
        if not isinstance(user, dict) or user.get("id") != APPROVER:
            raise Broken(f"a case moved on a request from {user!r}, who is not an approver")
        for case in moved:
            if case.state == "approved" and case.approval.get("draft_hash") != DRAFT_HASH:
                raise Broken("approved without the draft hash that was shown")
        return sorted(str(c.state) for c in moved)

    def _encode(self, request: WebInput) -> bytes:
        if request.signing == "replay" and self.last_signed is not None:
            return self.last_signed[1]
        body = fill(request.body, self.known())
        if request.encoding == "payload":
            return urlencode({"payload": json.dumps(body)}).encode()
        if request.encoding == "form":
            return urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}).encode()
        if request.encoding == "json":
            return json.dumps(body).encode()
        return body

    def _headers(self, request: WebInput, body: bytes) -> dict[str, str]:
        if request.signing == "replay" and self.last_signed is not None:
            return dict(self.last_signed[2])
        now = int(time.time())
        timestamp = {"stale": now - 600, "future": now + 600}.get(request.signing, now)
        secret = "not-the-secret" if request.signing == "wrong_secret" else fake_slack.SIGNING_SECRET
        signed = b"something else" if request.signing == "other_body" else body
        digest = hmac.new(secret.encode(), b"v0:%d:" % timestamp + signed, hashlib.sha256).hexdigest()
        headers = {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}",
                   "Content-Type": request.content_type or "application/x-www-form-urlencoded"}
        if request.signing == "no_signature":
            del headers["X-Slack-Signature"]
        elif request.signing == "no_timestamp":
            del headers["X-Slack-Request-Timestamp"]
        elif request.signing == "garbage_signature":
            headers["X-Slack-Signature"] = "v0=" + "0" * 64
        elif request.signing == "v1_scheme":
            headers["X-Slack-Signature"] = f"v1={digest}"
        elif request.signing == "replay":  # nothing signed before in this service: refuse a made-up one
            headers["X-Slack-Signature"] = "v0=" + hashlib.sha256(body).hexdigest()
        return headers


class FormTarget(ServiceTarget):
    """`POST /request` with random fields, uploads and CSRF tokens (valid, missing, wrong, another session's)."""

    name = "form"

    def __init__(self, root: Path, recycle_every: int = 60) -> None:
        super().__init__(root, recycle_every, check_desk=True)
        self.accepted: set[tuple[str, str]] = set()

    def started(self, service: Service) -> None:
        super().started(service)
        self.client = self.app.test_client()
        self.token = self._token(self.client)
        self.other_token = self._token(self.app.test_client())
        self.accepted.clear()

    @staticmethod
    def _token(client: Any) -> str:
        match = _CSRF.search(client.get("/request").data)
        assert match, "the request form has no CSRF field"
        return match.group(1).decode()

    def feed(self, request: WebInput) -> str:
        self.tried += 1
        service = self.service()
        fields = {k: list(v) for k, v in request.body.items()}
        token = {"valid": self.token, "other_session": self.other_token, "wrong": "x" * 43}.get(request.signing)
        if token:
            fields["csrf_token"] = [token]
        data: dict[str, Any] = dict(fields)
        for name, (content, filename) in request.files.items():
            data[name] = (io.BytesIO(content), filename)
        before = snapshot(service)
        counts = {n: service.store.count(n) for n in ("messages", "cases")}
        self.messages_before = {m["id"] for m in service.store.find("messages")}
        response = self.client.post("/request", data=data, environ_base={"REMOTE_ADDR": request.extra["remote_addr"]},
                                    content_type="multipart/form-data" if request.files else None)
        status = response.status_code
        outcome = self._check(service, request, status, before, counts, fields)
        self.run_outbox(service)
        self.outcomes[outcome] += 1
        return outcome

    def _check(self, service: Service, request: WebInput, status: int, before: tuple[str, int],
               counts: dict[str, int], fields: dict[str, list[str]]) -> str:
        if status >= 500 or status not in (303, 400, 429):
            raise Broken(f"the form answered {status}")
        if request.signing != "valid" and status != 400:
            raise Broken(f"a post with CSRF {request.signing!r} was answered {status}, not refused")
        if status == 400:
            if snapshot(service) != before:
                raise Broken("a refused form post changed the store or the audit trail")
            return "400 refused" + (" (csrf)" if request.signing != "valid" else " (invalid fields)")
        grew = {n: service.store.count(n) - counts[n] for n in counts}
        if status == 429:
            if any(grew.values()):
                raise Broken(f"a throttled form post stored {grew}")
            return "429 throttled"
        same = (fields.get("submission", [""])[0][:64], fields.get("text", [""])[0].strip()[:10_000])
        if grew == {"messages": 0, "cases": 0}:
            if same not in self.accepted:
                raise Broken("an accepted form post left no record")
            return "303 duplicate"
        self.accepted.add(same)
        if grew["messages"] != 1 or grew["cases"] not in (0, 1):
            raise Broken(f"an accepted form post stored {grew}")
        (new,) = {m["id"] for m in service.store.find("messages")} - self.messages_before
        case = next((c for c in service.cases.all() if new in c.message_ids), None)
        if case is None:
            raise Broken("an accepted form post's message is on no case")
        self.desk_page(f"/desk/cases/{case.ref}")
        return "303 case opened" if grew["cases"] else "303 attached"


class HelpdeskTarget(ServiceTarget):
    """`POST /webhooks/zendesk|freshdesk` against the fake helpdesk's API, then the drain that turns the
    kept deliveries into cases. A delivery that names a customer's new ticket must leave that ticket's
    message on record (a case, an attached message, an ignored record) or a dead letter with its reason."""

    def __init__(self, root: Path, kind: str, fake: Any, recycle_every: int = 60) -> None:
        super().__init__(root, recycle_every, check_desk=True)
        self.name = self.kind = kind
        self.fake = fake
        self.tickets: list[int] = []
        self.last_signed: tuple[bytes, dict[str, str]] | None = None
        self._random = random.Random(0)

    def sections(self) -> dict[str, dict[str, Any]]:
        return helpdesk_sections(self.kind, self.fake.url)

    def started(self, service: Service) -> None:
        super().started(service)
        self.client = self.app.test_client()
        self.tickets.clear()
        self.last_signed = None

    def _customer_ticket(self, ticket: dict[str, Any]) -> int:
        tid = self.fake.customer_ticket(ticket["email"], ticket["name"], ticket["subject"], ticket["body"])
        self.tickets.append(tid)
        return tid

    def _old_ticket(self, ticket: dict[str, Any]) -> str:
        if not self.tickets:
            return "424242"
        tid = self._random.choice(self.tickets)
        if ticket["comment"] is not None:  # the customer wrote again before this event
            (self.fake.customer_comment if self.kind == "zendesk" else self.fake.customer_reply)(tid, ticket["comment"])
        return str(tid)

    def feed(self, request: WebInput) -> str:
        self.tried += 1
        service = self.service()
        self.now += timedelta(seconds=1)
        text = json.dumps(request.body)
        new = str(self._customer_ticket(request.extra["ticket"])) if "@@NEW@@" in text else ""
        old = self._old_ticket(request.extra["ticket"]) if "@@OLD@@" in text else ""
        body = json.dumps(fill(request.body, {"@@NEW@@": new, "@@OLD@@": old})).encode()
        headers = self._headers(request, body)
        inbox, drain = service.components["helpdesk_inbox"], service.components["helpdesk_drain"]
        before, backlog = snapshot(service), inbox.backlog()
        status = self.client.post(request.path, data=body, headers=headers).status_code
        if status >= 500:
            raise Broken(f"{request.path} answered {status}")
        if request.signing != "valid":
            if status != 401 or snapshot(service) != before or inbox.backlog() != backlog:
                raise Broken(f"a webhook signed {request.signing!r} was answered {status} or kept")
            self.outcomes[f"401 refused ({request.signing})"] += 1
            return "refused"
        if status != 200:
            raise Broken(f"a validly signed webhook was answered {status}")
        self.last_signed = (body, headers)
        counts = {n: service.store.count(n) for n in ("cases", "messages", "ignored")}
        self.now += timedelta(seconds=2)  # past the drain's quiet time: acknowledgements come first
        drain.run()
        if inbox.backlog():
            raise Broken(f"{inbox.backlog()} delivery(ies) left undrained (paused until {drain.paused_until})")
        crashes = self.crashes_logged()
        if crashes:
            raise Broken("the drain raised: " + "; ".join(crashes))
        self.run_outbox(service)
        outcome = self._outcome(service, counts, new if request.extra["names_ticket"] else "")
        self.outcomes[outcome] += 1
        return outcome

    def _outcome(self, service: Service, counts: dict[str, int], ticket: str) -> str:
        grew = {n: service.store.count(n) - counts[n] for n in counts}
        dead = [d for d in service.store.find("ignored") if d.get("kind") == "unprocessable_webhook"]
        bugs = [d["why"] for d in dead if d["why"].startswith(PROGRAMMING_ERRORS)]
        if bugs:  # kept aside, but for a reason nobody chose: a crash in the parsing or the applying
            raise Broken(f"a webhook was kept aside because the code raised: {bugs[0]}")
        if ticket:
            message_id = f"<{self.kind}.ticket.{ticket}@helpdesk.dsarbot>"
            kept = any(m.get("message_id") == message_id for m in service.store.find("messages"))
            if not kept and not (grew["ignored"] and dead):
                raise Broken(f"ticket {ticket}, named by a valid event, left no record")
            case = next((c for c in service.cases.all() if c.ticket.get("id") == ticket), None)
            if case is not None:
                self.desk_page(f"/desk/cases/{case.ref}")
        if grew["cases"]:
            return "200 kept, case opened"
        if grew["messages"]:
            return "200 kept, message on record"
        if grew["ignored"]:
            return "200 kept, dead letter" if dead else "200 kept, ignored"
        return "200 kept, no change (not a new ticket event)"

    def _headers(self, request: WebInput, body: bytes) -> dict[str, str]:
        if request.signing == "replay" and self.last_signed is not None and self.last_signed[0] == body:
            return dict(self.last_signed[1])
        if self.kind == "freshdesk":
            secret = {"valid": fd.SECRET, "wrong_secret": "not-the-secret", "empty_secret": "",
                      "secret_with_space": fd.SECRET + " "}.get(request.signing)
            return {"Content-Type": "application/json", **({"X-Dsarbot-Webhook-Secret": secret} if secret is not None
                                                            else {})}
        stamp = (self.now + {"stale": timedelta(hours=-1), "future": timedelta(hours=1)}.get(request.signing,
                                                                                            timedelta()))
        timestamp = {"bad_timestamp": "yesterday", "naive_timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S")}.get(
            request.signing, stamp.strftime("%Y-%m-%dT%H:%M:%SZ"))
        secret = "not-the-secret" if request.signing == "wrong_secret" else zd.SECRET
        headers = zd.FakeZendesk.signed(b"other" if request.signing == "other_body" else body, timestamp,
                                        request.extra.get("invocation", ""), secret)
        if request.signing in ("no_signature", "replay"):  # a replay of nothing signed yet: unsigned
            del headers["x-zendesk-webhook-signature"]
        elif request.signing == "no_timestamp":
            del headers["x-zendesk-webhook-signature-timestamp"]
        elif request.signing == "garbage_signature":
            headers["x-zendesk-webhook-signature"] = "A" * 44
        return headers
