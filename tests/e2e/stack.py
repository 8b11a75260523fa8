"""The end-to-end stack: every outside part on loopback, and the service built from its config and really running.

Parts: Dovecot (the privacy mailbox, IMAP IDLE), aiosmtpd (outgoing mail), the local Zendesk and
Slack API servers, the shop's PrestaShop database on MariaDB (the real schema), the newsletter tool
(the local Brevo API) and a JSON-lines event log. The service runs as `dsarbot serve` runs it:
waitress on a port of its own, the scheduler (outbox every 2 s, mailbox safety-net poll) and the
IDLE watcher. The test only acts from outside: it appends mail, drives a browser, posts what Slack
would post, and reads what the parts received.
"""
from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Callable, Iterator

import requests

from bot.config import load_config
from bot.models import Case, utcnow
from bot.runtime import start_background
from bot.service import Service, build_service
from tests.dbs import ins
from tests.fakes import brevo as fake_brevo
from tests.fakes import slack as fake_slack
from tests.fakes import zendesk as fake_zendesk
from tests.fakes.people import NAMESAKE, PHONE, SUBJECT
from tests.servers.dovecot import Account, free_port
from tests.servers.smtp import SmtpSink
from tests.servers.web import WebServer
from tests.slack_harness import button

REGISTER = Path(__file__).with_name("register.yaml")
PRIVACY = "confidentialite@shop.example"
APPROVER = "U0DPO"  # the only Slack user allowed to approve

#: The customer (known to the shop database, the newsletter tool and the event log), her namesake
#: (same name, same phone, same street: a different person) and an impostor on a lookalike address.
CUSTOMER = SUBJECT
IMPOSTOR = "carnille.martin@examp1e.com"
#: Values only the customer's records hold, and values only the namesake's hold.
CUSTOMER_MARKS = ("CAMORDER1", "Théière en fonte", "evt-cust-1", "Soldes de printemps", "colis abîmé")
NAMESAKE_MARKS = (NAMESAKE, "NAMORDER2", "Coffret homonyme", "evt-name-1", "evt-name-2", "homonyme", "1961-09-02")


def shop_rows() -> list[tuple[str, dict]]:
    """The shop's database: the customer with an order and a support thread, and her namesake with his."""
    d = "2026-10-02 10:00:00"
    rows = []
    for cid, email, birthday, ref, product, message in (
            (1, CUSTOMER, "1988-04-17", "CAMORDER1", "Théière en fonte", "Mon colis abîmé est arrivé hier."),
            (2, NAMESAKE, "1961-09-02", "NAMORDER2", "Coffret homonyme", "Message de l'homonyme.")):
        rows += [
            ins("ps_customer", id_customer=cid, id_gender=2, firstname="Camille", lastname="Martin", email=email,
                passwd="$2y$10$hashhashhashhashhash" + str(cid), birthday=birthday, newsletter=1,
                secure_key=f"{cid:032x}", date_add=d, date_upd=d),
            ins("ps_address", id_address=cid, id_country=8, id_customer=cid, alias="Maison", lastname="Martin",
                firstname="Camille", address1="12 rue des Lilas", postcode="69003", city="Lyon", phone=PHONE,
                date_add=d, date_upd=d),
            ins("ps_orders", id_order=10 + cid, reference=ref, id_carrier=1, id_lang=1, id_customer=cid,
                id_cart=100 + cid, id_currency=1, id_address_delivery=cid, id_address_invoice=cid, current_state=5,
                secure_key=f"order{cid}", payment="Carte bancaire", total_paid_tax_incl=49.9, date_add=d, date_upd=d),
            ins("ps_order_detail", id_order_detail=100 + cid, id_order=10 + cid, id_shop=1, product_id=7,
                product_name=product, product_quantity=1, total_price_tax_incl=49.9),
            ins("ps_customer_thread", id_customer_thread=40 + cid, id_lang=1, id_contact=1, id_customer=cid,
                email=email, token=f"thread{cid}", date_add=d, date_upd=d),
            ins("ps_customer_message", id_customer_message=cid, id_customer_thread=40 + cid, message=message,
                date_add=d, date_upd=d),
        ]
    return rows


def write_event_log(path: Path) -> Path:
    events = [
        {"event_id": "evt-cust-1", "ts": "2026-10-01T09:00:00Z", "type": "login", "email": CUSTOMER, "customer_id": 1,
         "url": "https://shop.example/mon-compte", "ip": "203.0.113.24"},
        {"event_id": "evt-cust-2", "ts": "2026-10-01T09:01:00Z", "type": "page_view", "customer_id": 1,
         "url": "https://shop.example/theieres", "ip": "203.0.113.24"},
        {"event_id": "evt-name-1", "ts": "2026-10-01T10:00:00Z", "type": "login", "email": NAMESAKE, "customer_id": 2,
         "url": "https://shop.example/mon-compte", "ip": "198.51.100.7"},
        {"event_id": "evt-name-2", "ts": "2026-10-01T10:05:00Z", "type": "page_view", "customer_id": 2,
         "url": "https://shop.example/coffrets", "ip": "198.51.100.7"},
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def request_mail(sender: str, subject: str, text: str, name: str = "Camille Martin") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = PRIVACY
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    msg.set_content(text)
    return msg.as_bytes()


ACCESS_REQUEST_FR = ("Bonjour,\n\nEn application de l'article 15 du RGPD, je souhaite obtenir une copie de toutes les "
                     "données personnelles que vous détenez à mon sujet.\n\nCordialement,\nCamille Martin\n")


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll `predicate` until truthy (never a fixed sleep); fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


def text_of(mail: EmailMessage) -> str:
    return mail.get_body(preferencelist=("plain",)).get_content()


def code_in(mail: EmailMessage) -> str:
    return re.findall(r"(?m): (\d{6,})\r?$", text_of(mail))[-1]


def link_in(mail: EmailMessage, kind: str) -> str:
    return re.search(rf"https?://\S+/{kind}/[A-Za-z0-9_-]+", text_of(mail)).group(0)


@dataclass
class Stack:
    service: Service
    web: WebServer
    account: Account
    smtp: SmtpSink
    zendesk: fake_zendesk.FakeZendesk
    slack: fake_slack.FakeSlack
    brevo: fake_brevo.FakeBrevo

    # --- from outside -------------------------------------------------------------------------------
    def send(self, raw: bytes) -> None:
        """The customer's mail server delivers a mail into the privacy mailbox."""
        self.account.append(raw)

    def case_from(self, address: str) -> Case:
        return wait_until(lambda: next((c for c in self.service.cases.all() if c.requester.email == address), None),
                          f"a case opened for the mail from {address}")

    def case(self, case_id: str) -> Case:
        return self.service.cases.get(case_id)

    def wait_state(self, case_id: str, *states: str, timeout: float = 30.0) -> Case:
        return wait_until(lambda: (c := self.case(case_id)).state in states and c, f"case in state {states}", timeout)

    def mails(self, to: str | None = None, subject: str = "") -> list[EmailMessage]:
        return [m for e, m in zip(self.smtp.envelopes, self.smtp.messages)
                if (to is None or e.rcpt_tos == [to]) and subject in str(m["Subject"])]

    def mail(self, to: str, subject: str, count: int = 1, timeout: float = 30.0) -> EmailMessage:
        """The `count`-th mail to `to` whose subject has `subject`, once it reached the SMTP sink."""
        return wait_until(lambda: len(found := self.mails(to, subject)) >= count and found[count - 1],
                          f"mail #{count} to {to} about {subject!r}", timeout)

    def ticket(self, case: Case) -> int:
        return wait_until(lambda: next((tid for tid, t in self.zendesk.tickets.items() if t["external_id"] == case.id),
                                       None), f"the Zendesk ticket of {case.ref}")

    def approval_message(self, case: Case) -> dict[str, Any]:
        stored = wait_until(lambda: self.service.store.get("kv", f"slack:approval:{case.id}"),
                            f"the Slack approval message of {case.ref}")
        return self.slack.message(stored["ts"])

    def click_approve(self, message: dict[str, Any], user: str = APPROVER) -> requests.Response:
        """What Slack posts when `user` clicks Approve: a signed block_actions payload."""
        body = fake_slack.block_actions(self.slack, user, "dsar_approve", button(message, "approve")["value"],
                                        message["ts"])
        return requests.post(self.web.url("/slack/interactions"), data=body, headers=fake_slack.signed_headers(body),
                             timeout=10)


def stack_config(data_dir: Path, base_url: str, account: Account, smtp_port: int, shop_url: str,
                 events: Path, zendesk: fake_zendesk.FakeZendesk, slack: fake_slack.FakeSlack,
                 brevo: fake_brevo.FakeBrevo):
    return load_config(None, environ={}, overrides={
        "service": {"data_dir": str(data_dir), "base_url": base_url, "shop_name": "La Boutique",
                    "privacy_address": PRIVACY},
        # IDLE brings the mail; the safety-net poll is set far beyond the test so it cannot be what did
        "mailbox": account.config_overrides(poll_seconds=600, use_idle=True),
        "smtp": {"enabled": True, "host": "127.0.0.1", "port": smtp_port, "starttls": False,
                 "from_address": PRIVACY, "from_name": "La Boutique - Données personnelles"},
        "helpdesk": {"kind": "zendesk"},
        "zendesk": {"base_url": zendesk.url, "email": fake_zendesk.EMAIL, "api_token": fake_zendesk.TOKEN,
                    "webhook_secret": fake_zendesk.SECRET, "field_ids": fake_zendesk.FIELD_IDS},
        "slack": {"enabled": True, "bot_token": fake_slack.TOKEN, "signing_secret": fake_slack.SIGNING_SECRET,
                  "channel": fake_slack.CHANNEL, "approvers": [APPROVER], "api_base_url": slack.base_url},
        "playbooks": {"register": str(REGISTER), "sources": [
            {"name": "shop", "type": "sql", "url": shop_url, "preset": "prestashop", "system": "PrestaShop"},
            {"name": "newsletter", "type": "brevo", "base_url": brevo.url, "api_key": fake_brevo.API_KEY},
            {"name": "events", "type": "event_log", "path": str(events), "entity": "events", "id_field": "event_id",
             "system": "Matomo", "match": {"email": "email", "customer_id": "customer_id"}},
        ]},
    })


@contextmanager
def running_stack(tmp_path: Path, account: Account, smtp: SmtpSink, shop_url: str) -> Iterator[Stack]:
    with fake_zendesk.FakeZendesk() as zendesk, fake_brevo.FakeBrevo() as brevo:
        slack = fake_slack.FakeSlack().start()
        slack.add_user(APPROVER)
        port = free_port()
        config = stack_config(tmp_path / "data", f"http://127.0.0.1:{port}", account, smtp.port, shop_url,
                              write_event_log(tmp_path / "events.jsonl"), zendesk, slack, brevo)
        service = build_service(config)
        web = WebServer(service, port).start()
        try:
            problems = start_background(service)
            assert problems == [], problems  # every part proved its credentials at start
            watcher = service.component("mailbox_watcher")
            wait_until(watcher.connected.is_set, "the IMAP IDLE watcher connected", 15)
            yield Stack(service, web, account, smtp, zendesk, slack, brevo)
        finally:
            service.component("mailbox_watcher").stop()
            if service.component("scheduler"):
                service.component("scheduler").shutdown(wait=True)
            assert service.component("slack").wait_idle(10), "slack listeners still running"
            web.stop()
            service.close()
            slack.stop()
        for fake in (zendesk, slack.api, brevo):
            fake.assert_clean()
