"""Mail out: SMTP (smtplib), or .eml files in the data directory when no SMTP server is configured.

Both build the same message (`build_message`): our mail is always `Auto-Submitted` (RFC 3834) so
that well-behaved responders never answer it, carries `X-Dsarbot-Ref` with the case reference and
the Message-ID chosen by the outbox (stable across retries), and threads with In-Reply-To and
References. Header values with CR or LF are refused (header injection, SECURITY.md rule 6).

The outbox handler for "mail.send" sends and then links the Message-ID to the case, so that the
requester's reply threads back to it. SMTP failures map to the outbox's two outcomes: the far side
said "not now" (connection, timeout, 4xx) -> RetryLater; it said "never" (5xx) -> PermanentFailure.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import smtplib
import socket
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any, Callable

from bot.config import SmtpConfig
from bot.faults import checkpoint
from bot.mailing import MAIL_EFFECT
from bot.outbox import PermanentFailure, RetryLater
from bot.service import Service
from bot.vault import vault_of
from integrations.base import Mailer, OutgoingMail

log = logging.getLogger(__name__)

SENT_MAIL_DIR = "sent-mail"
_ADDRESS_RE = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")
AUTO_SUBMITTED_VALUES = ("auto-generated", "auto-replied")


class HeaderInjection(ValueError):
    """A header value carries CR or LF: refused, whatever its origin."""


def _header(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjection(f"header {name} contains a line break")
    return value


def build_message(mail: OutgoingMail, *, from_address: str, from_name: str, now: datetime) -> EmailMessage:
    """The RFC 5322 message for `mail`. Raises HeaderInjection on CR/LF in any header value."""
    if not mail.message_id:
        raise ValueError("outgoing mail needs a Message-ID (derive it from the outbox key)")
    headers = dict(mail.headers)
    auto = headers.pop("Auto-Submitted", "auto-generated")
    if auto not in AUTO_SUBMITTED_VALUES:
        raise ValueError(f"Auto-Submitted must be one of {AUTO_SUBMITTED_VALUES}, not {auto!r}")
    msg = EmailMessage()
    msg["From"] = formataddr((_header("From", from_name), _header("From", from_address)))
    msg["To"] = _header("To", mail.to)
    msg["Subject"] = _header("Subject", mail.subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = _header("Message-ID", mail.message_id)
    msg["Auto-Submitted"] = auto
    # RFC 3834 5.1 also lets us ask responders to stay quiet; Microsoft honours this one
    msg["X-Auto-Response-Suppress"] = "All"
    references = [r for r in mail.references if r]
    if mail.in_reply_to:
        msg["In-Reply-To"] = _header("In-Reply-To", mail.in_reply_to)
        if mail.in_reply_to not in references:
            references.append(mail.in_reply_to)
    if references:
        msg["References"] = _header("References", " ".join(references))
    for name, value in headers.items():
        msg[_header("header name", name)] = _header(name, value)
    msg.set_content(mail.text)
    if mail.html:
        msg.add_alternative(mail.html, subtype="html")
    for filename, content_type, data in mail.attachments:
        maintype, _, subtype = (content_type or "application/octet-stream").partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream",
                           filename=_header("attachment name", filename))
    return msg


class SmtpMailer(Mailer):
    """Sends through the configured SMTP server (implicit TLS, STARTTLS or plain; auth when configured)."""

    def __init__(self, config: SmtpConfig, now: Callable[[], datetime]) -> None:
        self.config = config
        self.now = now

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        context = ssl.create_default_context()
        if cfg.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_seconds, context=context)
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
        try:
            smtp.ehlo()
            if cfg.starttls:
                smtp.starttls(context=context)
                smtp.ehlo()
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, mail: OutgoingMail) -> str:
        msg = build_message(mail, from_address=self.config.from_address, from_name=self.config.from_name,
                            now=self.now())
        try:
            with self._connect() as smtp:
                smtp.send_message(msg, from_addr=self.config.from_address, to_addrs=[mail.to])
                checkpoint("outbox.mail_sent")
        except Exception as exc:  # noqa: BLE001 - every failure is mapped to retry or give up
            raise smtp_outcome(exc) from exc
        return mail.message_id

    def check(self) -> str | None:
        """Startup check: connect, greet, STARTTLS and log in, without sending anything."""
        try:
            with self._connect() as smtp:
                smtp.noop()
        except Exception as exc:  # noqa: BLE001
            return f"[smtp] cannot use {self.config.host}:{self.config.port}: {smtp_outcome(exc)}"
        return None


def smtp_outcome(exc: BaseException) -> Exception:
    """Map an smtplib/socket error to RetryLater (not now) or PermanentFailure (never)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(500 <= code < 600 for code in codes):
            return PermanentFailure(f"recipient refused ({', '.join(map(str, codes))})")
        return RetryLater(f"recipient deferred ({', '.join(map(str, codes))})")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        # credentials can be fixed without touching the mail: keep it queued, slowly
        return RetryLater(f"SMTP authentication refused ({exc.smtp_code}): check [smtp] username/password", 300)
    if isinstance(exc, smtplib.SMTPResponseException):
        if 400 <= exc.smtp_code < 500:
            return RetryLater(f"SMTP {exc.smtp_code}")
        # the server's words help (spam, size, policy) but often quote the recipient: that goes (logs, flags)
        said = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return PermanentFailure(f"SMTP {exc.smtp_code}: {_ADDRESS_RE.sub('<address>', said)[:200]!r}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return RetryLater(f"SMTP server certificate not trusted: {exc.verify_message}", 300)
    if isinstance(exc, (smtplib.SMTPException, OSError, socket.timeout)):
        return RetryLater(f"SMTP unreachable: {type(exc).__name__}")
    return RetryLater(f"{type(exc).__name__}")


class FileMailer(Mailer):
    """Writes each mail as an .eml file under `<data_dir>/sent-mail/` (the demo, and no SMTP yet).

    The file name comes from the Message-ID, so a retried send rewrites the same file.
    """

    def __init__(self, directory: Path, config: SmtpConfig, now: Callable[[], datetime]) -> None:
        self.directory = directory
        self.config = config
        self.now = now

    def send(self, mail: OutgoingMail) -> str:
        msg = build_message(mail, from_address=self.config.from_address, from_name=self.config.from_name,
                            now=self.now())
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = hashlib.sha256(mail.message_id.encode()).hexdigest()[:24] + ".eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(msg.as_bytes())
        os.replace(tmp, self.directory / name)
        return mail.message_id

    def sent(self) -> list[Path]:
        """The files written so far, oldest first."""
        if not self.directory.exists():
            return []
        return sorted(self.directory.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)


def outgoing_from_payload(payload: dict[str, Any], read_file: Callable[[str], bytes]) -> OutgoingMail:
    """The "mail.send" payload of `bot.mailing.mail_effect` as an OutgoingMail."""
    attachments = [(a["filename"], a.get("content_type") or "application/octet-stream", read_file(a["vault_path"]))
                   for a in payload.get("attachments", [])]
    headers = {"Auto-Submitted": payload.get("auto_submitted") or "auto-generated"}
    if payload.get("case_ref"):
        headers["X-Dsarbot-Ref"] = payload["case_ref"]
    return OutgoingMail(to=payload["to"], subject=payload["subject"], text=payload["text"],
                        html=payload.get("html", ""), in_reply_to=payload.get("in_reply_to", ""),
                        references=list(payload.get("references", [])), attachments=attachments,
                        headers=headers, message_id=payload["message_id"])


def mail_handler(service: Service, mailer: Mailer) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def handle(effect: dict[str, Any]) -> dict[str, Any]:
        try:
            mail = outgoing_from_payload(effect["payload"], vault_of(service).read)
            message_id = mailer.send(mail)
        except (HeaderInjection, ValueError, KeyError) as exc:
            raise PermanentFailure(f"mail cannot be built: {exc}") from exc
        intake = service.component("intake")
        if effect.get("case_id") and intake is not None:
            intake.link_outgoing(effect["case_id"], message_id)
        log.info("mail %s sent for case %s", effect["payload"].get("template", ""),
                 effect["payload"].get("case_ref", ""))
        return {"message_id": message_id}

    return handle


def setup(service: Service) -> None:
    """SMTP when [smtp] is enabled; otherwise .eml files, so the demo and the built-in desk always work."""
    cfg = service.config.smtp
    if cfg.enabled:
        mailer: Mailer = SmtpMailer(cfg, service.now)
        service.startup_checks.append(mailer.check)
    else:
        mailer = FileMailer(service.data_dir / SENT_MAIL_DIR, cfg, service.now)
    service.components["mailer"] = mailer
    # an SMTP server down for hours must not lose a mail: keep trying, the case flagged meanwhile
    service.outbox.register(MAIL_EFFECT, mail_handler(service, mailer), keep_trying=True)
