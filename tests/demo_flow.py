"""The demo's whole flow, driven the way its people drive it: reusable by any test that needs it.

`DemoFlow` is the demo service (bot/demo.py: its config, its seeded shop and cases) with the
mailbox, and optionally Slack, plugged in. Its steps:
1. `request_arrives(raw)`: a customer's mail is appended to the IMAP mailbox and the mailbox
   channel's own pass takes it in (the real intake); the outbox sends the acknowledgement and,
   once the addresses on file are looked up, the verification code;
2. `verify(case)`: the requester opens the link of the code mail and types the code (web pages);
   the outbox then gathers from the demo shop's sources and drafts the answer (PDF, exports);
3. `approve(case)`: the agent logs in to the desk, opens the case and clicks Approve (the form's own
   fields: version, draft hash);
4. `download(case)`: the outbox sends the delivery mail; the requester opens the portal link, asks
   for a code, types it and downloads the archive.
The web steps go through a `Web`: `FlaskWeb` (the app's test client) or `HttpWeb` (real HTTP to the
service served by waitress, as `dsarbot serve` does). Mail out is the demo's: .eml files in
`data_dir/sent-mail/`, read back here like a mailbox. Nothing in this module logs.
"""
from __future__ import annotations

import email
import email.policy
import html
import http.client
import imaplib
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from bot.demo import DEMO_AGENT, demo_config, seed
from bot.models import Case, State
from bot.service import Service, build_service
from bot.web.app import create_app

AGENT_PASSWORD = "demo-agent-password-for-tests"
PRIVACY_ADDRESS = "confidentialite@shop.example"


class Clock:
    """The service's clock: starts now (the mailbox's INTERNALDATE is real time), moves when told."""

    def __init__(self) -> None:
        self.at = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


# --- the web, as a browser sees it ----------------------------------------------------------------
@dataclass
class Page:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def form(self, action_end: str) -> tuple[str, dict[str, str]]:
        """(action, hidden fields) of the page's form whose action ends with `action_end`."""
        for match in re.finditer(r"<form\b[^>]*\baction=\"([^\"]+)\"[^>]*>(.*?)</form>", self.text, re.S):
            action = html.unescape(match.group(1))
            if action.split("?")[0].endswith(action_end):
                fields = {html.unescape(n): html.unescape(v) for n, v in re.findall(
                    r"<input[^>]*\btype=\"hidden\"[^>]*\bname=\"([^\"]+)\"[^>]*\bvalue=\"([^\"]*)\"", match.group(2))}
                return action, fields
        raise AssertionError(f"no form posting to …{action_end} on the page (status {self.status})")


class Web(Protocol):
    def get(self, path: str) -> Page: ...

    def post(self, path: str, data: dict[str, str]) -> Page: ...

    def post_raw(self, path: str, body: bytes, headers: dict[str, str]) -> Page: ...


class FlaskWeb:
    """The app's test client: no network."""

    def __init__(self, service: Service) -> None:
        self.client = create_app(service).test_client()

    def get(self, path: str) -> Page:
        response = self.client.get(path)
        return Page(response.status_code, response.data, dict(response.headers))

    def post(self, path: str, data: dict[str, str]) -> Page:
        response = self.client.post(path, data=data)
        return Page(response.status_code, response.data, dict(response.headers))

    def post_raw(self, path: str, body: bytes, headers: dict[str, str]) -> Page:
        response = self.client.post(path, data=body, headers=headers)
        return Page(response.status_code, response.data, dict(response.headers))


class HttpWeb:
    """A cookie-keeping browser over real HTTP (http.client: it logs nothing itself)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cookies: dict[str, str] = {}

    def _send(self, method: str, path: str, body: bytes | None = None, extra: dict[str, str] | None = None) -> Page:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers.update(extra or {})
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            page = Page(response.status, response.read(), dict(response.getheaders()))
            for value in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            return page
        finally:
            connection.close()

    def get(self, path: str) -> Page:
        return self._send("GET", path)

    def post(self, path: str, data: dict[str, str]) -> Page:
        return self._send("POST", path, urlencode(data).encode())

    def post_raw(self, path: str, body: bytes, headers: dict[str, str]) -> Page:
        return self._send("POST", path, body, headers)


class Served:
    """The service's app behind waitress on a free port, the way `dsarbot serve` runs it."""

    def __init__(self, service: Service) -> None:
        from waitress import create_server

        self.server = create_server(create_app(service), host="127.0.0.1", port=0, threads=4, ident="dsarbot")
        self.base_url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.task_dispatcher.shutdown()  # let the last request's thread finish before the sockets go
        self.server.close()
        self.thread.join(10)


# --- the flow -----------------------------------------------------------------------------------------
def request_mail(sender: str, name: str, subject: str, text: str,
                 attachments: list[tuple[str, str, bytes]] = ()) -> bytes:
    """A customer's mail to the privacy address; `attachments`: (file name, content type, bytes)."""
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = PRIVACY_ADDRESS
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    msg.set_content(text)
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


@dataclass
class DemoFlow:
    """The demo service and the people around it. Build with `DemoFlow.start(...)`; `close()` after."""

    service: Service
    clock: Clock
    imap: Any  # tests.servers.dovecot.Account
    requester: Web
    agent: Web
    served: Served | None = None
    events: list[str] = field(default_factory=list)  # what happened, for a failing test's message

    @classmethod
    def start(cls, data_dir: Path, imap: Any, *, http: bool = False, seeded: bool = True,
              **sections: dict[str, Any]) -> "DemoFlow":
        """`imap`: the Dovecot account the mailbox reads; `http`: serve with waitress and browse over HTTP;
        `sections`: more config (e.g. `slack={...}`)."""
        clock = Clock()
        config = demo_config(data_dir, "127.0.0.1", 8080, agent_password=AGENT_PASSWORD,
                             mailbox=imap.config_overrides(use_idle=False), **sections)
        service = build_service(config, now=clock)
        if seeded:
            seed(service)
        served = Served(service) if http else None
        make = (lambda: HttpWeb(served.base_url)) if served else (lambda: FlaskWeb(service))
        return cls(service, clock, imap, make(), make(), served)

    def close(self) -> None:
        if self.served:
            self.served.close()
        self.service.close()

    # --- plumbing ------------------------------------------------------------------------------
    def run_outbox(self, rounds: int = 30) -> None:
        for _ in range(rounds):
            if not self.service.outbox.run_due():
                return
        raise AssertionError("the outbox keeps finding due work")

    def sent_mail(self) -> list[EmailMessage]:
        folder = self.service.data_dir / "sent-mail"
        files = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns) if folder.exists() else []
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]

    def last_mail(self, to: str, subject_has: str = "") -> EmailMessage:
        found = [m for m in self.sent_mail() if m["To"] == to and subject_has in str(m["Subject"])]
        assert found, f"no mail to {to} about {subject_has!r}; sent: {[str(m['Subject']) for m in self.sent_mail()]}"
        return found[-1]

    @staticmethod
    def body(mail: EmailMessage) -> str:
        return mail.get_body(("plain",)).get_content()

    @staticmethod
    def code_in(mail: EmailMessage) -> str:
        return re.findall(r"(?m): (\d{6,})\s*$", DemoFlow.body(mail))[-1]

    @staticmethod
    def path_in(mail: EmailMessage, kind: str) -> str:
        url = re.search(rf"https?://\S+?/{kind}/[A-Za-z0-9_-]+", DemoFlow.body(mail)).group(0)
        return urlsplit(url).path

    # --- 1. the request arrives ------------------------------------------------------------------
    def request_arrives(self, raw: bytes) -> Case:
        """Append to the mailbox (stdlib imaplib: it logs nothing), then the mailbox's own pass."""
        connection = imaplib.IMAP4(self.imap.host, self.imap.port)
        try:
            connection.login(self.imap.username, self.imap.password)
            connection.append("INBOX", None, None, raw)
        finally:
            connection.logout()
        before = {c.id for c in self.service.cases.all()}
        result = self.service.components["mailbox"].poll()
        assert dict(result.outcomes) == {"case_opened": 1}, result
        (case,) = [c for c in self.service.cases.all() if c.id not in before]
        self.run_outbox()  # acknowledgement, addresses on file, verification code
        self.events.append(f"request {case.ref} arrived")
        return self.service.cases.get(case.id)

    # --- 2. the requester proves who they are ----------------------------------------------------
    def verify(self, case: Case) -> Case:
        mail = self.last_mail(case.requester.email, case.ref)
        path = self.path_in(mail, "verify")
        page = self.requester.get(path)
        assert page.status == 200, page.status
        action, fields = page.form(path)
        answer = self.requester.post(action, {**fields, "code": self.code_in(mail)})
        assert answer.status == 303, answer.status
        self.run_outbox()  # gathering and drafting
        case = self.service.cases.get(case.id)
        assert case.state == State.DRAFTED, (case.state, [f.detail for f in case.open_flags])
        self.events.append(f"{case.ref} verified and drafted")
        return case

    # --- 3. the agent approves on the desk -------------------------------------------------------
    def log_in(self) -> None:
        action, fields = self.agent.get("/desk/login").form("/desk/login")
        page = self.agent.post(action, {**fields, "login": DEMO_AGENT, "password": AGENT_PASSWORD})
        assert page.status == 303, page.status

    def approve(self, case: Case) -> Case:
        self.log_in()
        page = self.agent.get(f"/desk/cases/{case.ref}")
        assert page.status == 200, page.status
        action, fields = page.form("/actions/approve")
        assert self.agent.post(action, fields).status == 303
        case = self.service.cases.get(case.id)
        assert case.state == State.APPROVED, case.state
        self.run_outbox()  # the delivery mail
        self.events.append(f"{case.ref} approved")
        return self.service.cases.get(case.id)

    # --- 4. the requester downloads the answer ---------------------------------------------------
    def download(self, case: Case) -> bytes:
        path = self.path_in(self.last_mail(case.requester.email, case.ref), "portal")
        action, fields = self.requester.get(path).form("/code")
        asked = self.requester.post(action, fields)  # the page that asks for the code just sent
        assert asked.status == 200, asked.status
        self.run_outbox()
        code = self.code_in(self.last_mail(case.requester.email, case.ref))
        action, fields = asked.form("/unlock")
        assert self.requester.post(action, {**fields, "code": code}).status == 303
        action, fields = self.requester.get(path).form("/download")
        answer = self.requester.post(action, fields)
        assert answer.status == 200 and answer.headers.get("Content-Disposition", "").startswith("attachment"), \
            (answer.status, answer.headers)
        self.events.append(f"{case.ref} downloaded ({len(answer.body)} bytes)")
        return answer.body

    # --- Slack, when the flow was started with a [slack] section ----------------------------------
    def slack_command(self, fake: Any, user: str, text: str) -> dict[str, Any]:
        """`/dsar <text>` typed by `user` in the fake Slack (tests/fakes/slack.py): its private answer."""
        from tests.fakes.slack import signed_headers, slash_command

        body = slash_command(fake, user, text)
        before = len(fake.responses)
        page = self.agent.post_raw("/slack/commands", body.encode(), signed_headers(body))
        assert page.status == 200, page.status
        assert self.service.components["slack"].wait_idle(20), "slack listeners still running after 20 s"
        assert len(fake.responses) == before + 1, "no answer through response_url"
        return fake.responses[-1]

    def whole_request(self, raw: bytes) -> tuple[Case, bytes]:
        """Steps 1 to 4 for one request mail: the delivered case and the downloaded archive."""
        case = self.approve(self.verify(self.request_arrives(raw)))
        archive = self.download(case)
        return self.service.cases.get(case.id), archive
