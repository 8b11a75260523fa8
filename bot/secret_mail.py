"""Mails that carry a secret (a one-time code, a link token, a password) go straight to the mailer.

Ordinary mails are `mail.send` outbox effects whose payload holds the rendered text (bot.mailing).
A code or a link kept in that payload would sit in the store in clear, which defeats storing
them hashed. So the outbox effect that wants such a mail renders and sends it in its own handler,
and only the fact that it was sent is kept. The recipient must be an address on file (or an
address whose control is being proven): callers pass it from the case's verification data, never
from a message.
"""
from __future__ import annotations

from typing import Any

from bot.addresses import normalize_email
from bot.mailing import message_id_for, render_mail
from bot.models import Case
from bot.outbox import PermanentFailure, RetryLater


def mail_domain(service: Any) -> str:
    return service.config.smtp.from_address.rpartition("@")[2] or "dsarbot.invalid"


def send_secret_mail(service: Any, case: Case, to: str, template: str, context: dict[str, Any], key: str,
                     attachments: list[tuple[str, str, bytes]] | None = None) -> str:
    """Render `template` in the case's language and send it now. Raises RetryLater/PermanentFailure
    the way outbox handlers do. Returns the Message-ID."""
    from integrations.base import AuthFailed, Misconfigured, NotReady, OutgoingMail

    address = normalize_email(to)
    if not address:
        raise PermanentFailure("the recipient on file is not a valid address: an agent must check the record")
    mailer = service.component("mailer")
    if mailer is None:
        raise PermanentFailure("no mailer configured: enable [smtp]")
    _, subject, text = render_mail(template, case.language, {"case": case, "shop_name": service.config.service.shop_name,
                                                             **context})
    mail = OutgoingMail(to=address, subject=subject, text=text, message_id=message_id_for(key, mail_domain(service)),
                        headers={"Auto-Submitted": "auto-generated"}, attachments=list(attachments or []))
    try:
        message_id = mailer.send(mail)
    except NotReady as exc:
        raise RetryLater(str(exc), exc.retry_after) from exc
    except (AuthFailed, Misconfigured) as exc:
        raise PermanentFailure(str(exc)) from exc
    intake = service.component("intake")
    if intake is not None and message_id:
        intake.link_outgoing(case.id, message_id)
    return message_id or mail.message_id
