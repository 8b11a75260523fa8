"""The "Sent mail" pages: what customers received, read from the .eml files the demo mailer writes.

Only when `<data_dir>/sent-mail/` exists (the demo, or a shop that keeps copies). The mail is shown
as text: headers and the plain-text part, escaped by the template; attachments by safe name only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask import abort, render_template
from markupsafe import Markup, escape

from bot.vault import safe_name
from bot.web.desk import desk, service

FOLDER = "sent-mail"
MAX_BYTES = 2 * 1024 * 1024  # a sent mail is a letter, not an export: more than this is cut
LIST_LIMIT = 300
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.eml")
_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass
class SentMail:
    name: str
    sender: str = ""
    to: str = ""
    subject: str = ""
    date: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""
    attachments: list[str] = field(default_factory=list)
    error: str = ""


def linked_text(text: str, base_url: str) -> Markup:
    """The mail's text, escaped, with links to this service (verify, portal) made clickable; any
    other URL stays text, so the page never links anywhere the service itself does not serve."""
    base = base_url.rstrip("/") + "/"
    parts: list[str] = []
    end = 0
    for match in _URL.finditer(text):
        url = match.group(0)
        parts.append(escape(text[end:match.start()]))
        parts.append(Markup('<a href="{0}" rel="noreferrer">{0}</a>').format(url) if url.startswith(base)
                     else escape(url))
        end = match.end()
    parts.append(escape(text[end:]))
    return Markup("").join(parts)


def sent_mail_dir() -> Path | None:
    path = service().data_dir / FOLDER
    return path if path.is_dir() else None


def _header(message: EmailMessage, name: str) -> str:
    try:
        return str(message.get(name, "") or "")
    except (ValueError, IndexError, TypeError):  # a malformed header must not break the page
        return "?"


def read_mail(path: Path, with_body: bool) -> SentMail:
    mail = SentMail(name=path.name)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES)
        message = BytesParser(policy=policy.default).parsebytes(raw, headersonly=not with_body)
    except OSError as exc:
        mail.error = type(exc).__name__
        return mail
    mail.sender, mail.to = _header(message, "From"), _header(message, "To")
    mail.subject, mail.date = _header(message, "Subject"), _header(message, "Date")
    if not with_body:
        return mail
    mail.headers = [(n, _header(message, n)) for n in ("From", "To", "Cc", "Reply-To", "Subject", "Date",
                                                          "Message-ID", "In-Reply-To", "Auto-Submitted")
                    if message.get(n) is not None]
    try:
        body = message.get_body(preferencelist=("plain",))
        mail.text = body.get_content() if body is not None else ""
        mail.attachments = [safe_name(part.get_filename() or "", default="attachment")
                            for part in message.iter_attachments()]
    except (LookupError, ValueError, AttributeError) as exc:
        mail.error = type(exc).__name__
    return mail


@desk.get("/desk/sent-mail")
def sent_mail_list():
    folder = sent_mail_dir()
    files = sorted(folder.glob("*.eml"), key=lambda p: (p.stat().st_mtime, p.name), reverse=True) if folder else []
    mails = [read_mail(p, with_body=False) for p in files[:LIST_LIMIT] if _NAME.fullmatch(p.name)]
    return render_template("desk/sent_mail.html", mails=mails, folder_exists=folder is not None)


@desk.get("/desk/sent-mail/<name>")
def sent_mail_view(name: str):
    folder = sent_mail_dir()
    if folder is None or not _NAME.fullmatch(name):
        abort(404)
    path = folder / name
    if not path.is_file() or path.resolve().parent != folder.resolve():
        abort(404)
    mail = read_mail(path, with_body=True)
    return render_template("desk/sent_mail_view.html", mail=mail,
                           body=linked_text(mail.text, service().config.service.base_url))
