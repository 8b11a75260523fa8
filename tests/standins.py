"""TEMPORARY: minimal stand-ins for `bot.mailparse` and `bot.classifier` while their branch is not merged.

Installed only when the real modules cannot be imported; remove this file once they are on main.
"""
from __future__ import annotations

import email
import email.policy
import sys
import types
from dataclasses import dataclass, field
from datetime import datetime, timezone

try:
    import bot.classifier  # noqa: F401
    import bot.mailparse  # noqa: F401
except ImportError:
    from bot.intake import Classification
    from bot.models import Message

    @dataclass
    class ParsedMail:
        message: Message
        attachments: list[tuple[str, str, bytes]] = field(default_factory=list)

    def parse_email(raw: bytes, *, channel: str = "email", received_at: datetime | None = None) -> ParsedMail:
        received_at = received_at or datetime.now(timezone.utc)
        try:
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            body = msg.get_body(("plain",))
            text = body.get_content() if body is not None else ""
            attachments = [(p.get_filename() or "", p.get_content_type(), p.get_payload(decode=True) or b"")
                           for p in msg.iter_attachments()]
            sender = msg.get("From")
            address = sender.addresses[0].addr_spec if sender is not None and sender.addresses else ""
            refs = str(msg.get("References", "")).split()
            message = Message(id="", channel=channel, sender=address, subject=str(msg.get("Subject", "")),
                              text=text, received_at=received_at, message_id=str(msg.get("Message-ID", "")).strip(),
                              in_reply_to=str(msg.get("In-Reply-To", "")).strip(), references=refs,
                              headers={k.lower(): str(v) for k, v in msg.items()})
            return ParsedMail(message, attachments)
        except Exception as exc:  # noqa: BLE001
            return ParsedMail(Message(id="", channel=channel, sender="", subject="", text="", received_at=received_at,
                                      parse_error=f"{type(exc).__name__}"))

    def make_classifier(own_addresses):
        own = {a.lower() for a in own_addresses}

        def classify(message: Message) -> Classification:
            h = message.headers
            if h.get("auto-submitted", "no").lower() != "no" or message.sender.lower() in own:
                return Classification("auto_reply")
            if "multipart/report" in h.get("content-type", "") or "mailer-daemon" in message.sender.lower():
                return Classification("bounce")
            text = f"{message.subject} {message.text}".lower()
            if any(w in text for w in ("données", "rgpd", "personal data", "gdpr")):
                lang = "fr" if any(w in text for w in ("données", "rgpd")) else "en"
                return Classification("request", ["access"], lang, 0.9)
            return Classification("other")

        return classify

    mailparse = types.ModuleType("bot.mailparse")
    mailparse.ParsedMail, mailparse.parse_email = ParsedMail, parse_email
    classifier = types.ModuleType("bot.classifier")
    classifier.make_classifier = make_classifier
    sys.modules["bot.mailparse"], sys.modules["bot.classifier"] = mailparse, classifier
