"""The acknowledgement: when a request opens a case, tell the requester its reference and due date.

One mail per case at most (the outbox key `<case id>:ack`), in the requester's language (English
when there is no template for it), marked `Auto-Submitted: auto-replied` and threaded on the
request. Its text depends on nothing but the case itself: no customer lookup, so it reads the same
whether or not we hold data on the sender (SECURITY.md rule 5).

Never acknowledged: auto-replies, bounces and other non-requests (intake opens no case for them,
and a case kept only because a message could not be read is not a request yet), replies attached
to an existing case (they open nothing), and our own addresses (the loop guard).
"""
from __future__ import annotations

from typing import Iterable

from bot import clock
from bot.cases import Change
from bot.classifier.core import own_addresses_of
from bot.config import jurisdiction_of
from bot.i18n import format_date
from bot.mailing import mail_effect
from bot.models import Channel
from bot.outbox import Effect
from bot.service import Service

ACKNOWLEDGED_CHANNELS = frozenset({Channel.EMAIL, Channel.FORM})


def mail_domain(address: str) -> str:
    return address.rpartition("@")[2] or "dsarbot.invalid"


def ack_planner(service: Service):
    config = service.config
    ours = {a.strip().lower() for a in own_addresses_of(config)}
    jurisdiction = jurisdiction_of(config)
    domain = mail_domain(config.smtp.from_address)

    def plan(change: Change) -> Iterable[Effect]:
        case = change.case
        if change.action != "open" or case.channel not in ACKNOWLEDGED_CHANNELS:
            return
        if case.classification.get("kind", "request") != "request":
            return
        to = case.requester.email
        if not to or "@" not in to or to in ours:
            return
        in_reply_to = ""
        if case.message_ids:
            first = service.store.get("messages", case.message_ids[0])
            bare = (first or {}).get("message_id", "").strip().strip("<>")
            in_reply_to = f"<{bare}>" if bare else ""
        received = clock.receipt_date(case.received_at, jurisdiction)
        yield mail_effect(case, key=f"{case.id}:ack", to=to, template="ack", context={
            "received_on": format_date(received, case.language),
            "due_on": format_date(case.due, case.language),
            "shop_name": config.service.shop_name,
        }, domain=domain, auto_submitted="auto-replied", in_reply_to=in_reply_to)

    return plan


def setup(service: Service) -> None:
    service.cases.add_planner(ack_planner(service))
