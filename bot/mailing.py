"""Outgoing mail as outbox effects: rendered from templates, sent at least once, threaded.

Templates live in `bot/templates/mail/<language>/<name>.txt`; the first line is `Subject: ...`.
A template missing in the requester's language falls back to English. The effect's key becomes
the Message-ID, so a retried send carries the same Message-ID (the receiving side and our own
threading can recognise it) and replies thread back to the case.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from bot.models import Case
from bot.outbox import Effect

TEMPLATES = Path(__file__).parent / "templates" / "mail"
MAIL_EFFECT = "mail.send"

_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=False, undefined=StrictUndefined,
                   keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def render_mail(template: str, language: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """(language used, subject, text). Plain text: values are not HTML-escaped, headers are checked
    for CR/LF by the mailer."""
    for lang in (language, "en"):
        try:
            body = _env.get_template(f"{lang}/{template}.txt").render(**context)
        except TemplateNotFound:
            continue
        first, _, rest = body.partition("\n")
        if not first.startswith("Subject:"):
            raise ValueError(f"mail template {lang}/{template}.txt must start with 'Subject:'")
        return lang, first[len("Subject:"):].strip(), rest.lstrip("\n")
    raise TemplateNotFound(f"{template} (no {language} or en version)")


def message_id_for(key: str, domain: str) -> str:
    return f"<dsarbot.{hashlib.sha256(key.encode()).hexdigest()[:24]}@{domain}>"


def mail_effect(case: Case, key: str, to: str, template: str, context: dict[str, Any], *,
                domain: str, auto_submitted: str = "auto-generated", in_reply_to: str = "",
                attachments: list[dict[str, str]] | None = None) -> Effect:
    """An effect that sends one templated mail about `case` to `to` (an address on file!)."""
    language, subject, text = render_mail(template, case.language, {"case": case, **context})
    return Effect(kind=MAIL_EFFECT, key=key, case_id=case.id, payload={
        "to": to, "subject": subject, "text": text, "language": language, "template": template,
        "message_id": message_id_for(key, domain), "in_reply_to": in_reply_to,
        "auto_submitted": auto_submitted, "case_ref": case.ref,
        "attachments": attachments or [],  # [{"vault_path", "filename", "content_type"}]
    })
