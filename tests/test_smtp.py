"""Mail out: message building, SMTP errors mapped to retry / give up, the .eml fallback, threading."""
from __future__ import annotations

import email
import email.policy
from datetime import datetime, timezone

import pytest

from bot.config import SmtpConfig
from bot.mailing import MAIL_EFFECT
from bot.models import Person
from bot.outbox import Effect, PermanentFailure, RetryLater
from bot.vault import vault_of
from integrations.base import OutgoingMail
from integrations.smtp import FileMailer, HeaderInjection, SmtpMailer, build_message
from tests.mailbox_support import RECEIVED, FakeClock, make_service
from tests.servers.dovecot import free_port
from tests.servers.smtp import smtp_sink  # noqa: F401 (fixture)

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=timezone.utc)


def mail(**changes) -> OutgoingMail:
    base = dict(to="camille@example.fr", subject="[DSR-250303-ABCDE] Accusé", text="Bonjour",
                message_id="<dsarbot.abc@shop.example>", in_reply_to="<req@example.fr>",
                headers={"Auto-Submitted": "auto-replied", "X-Dsarbot-Ref": "DSR-250303-ABCDE"})
    base.update(changes)
    return OutgoingMail(**base)


def test_built_message_is_auto_submitted_threaded_and_carries_the_ref():
    msg = build_message(mail(), from_address="confidentialite@shop.example", from_name="La Boutique", now=NOW)
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Dsarbot-Ref"] == "DSR-250303-ABCDE"
    assert msg["Message-ID"] == "<dsarbot.abc@shop.example>"
    assert msg["In-Reply-To"] == "<req@example.fr>" and msg["References"] == "<req@example.fr>"
    assert "confidentialite@shop.example" in msg["From"]
    default = build_message(mail(headers={}), from_address="a@shop.example", from_name="x", now=NOW)
    assert default["Auto-Submitted"] == "auto-generated"


@pytest.mark.parametrize("field,value", [("subject", "hi\r\nBcc: victim@example.com"), ("to", "a@b.c\nBcc: x@y.z"),
                                         ("in_reply_to", "<a@b>\r\nX: y"), ("message_id", "<a@b>\nX: y")])
def test_line_breaks_in_header_values_are_refused(field, value):
    with pytest.raises(HeaderInjection):
        build_message(mail(**{field: value}), from_address="a@shop.example", from_name="x", now=NOW)


def test_smtp_mailer_delivers_and_maps_refusals(smtp_sink):
    mailer = SmtpMailer(SmtpConfig(enabled=True, host="127.0.0.1", port=smtp_sink.port), lambda: NOW)
    assert mailer.check() is None
    assert mailer.send(mail()) == "<dsarbot.abc@shop.example>"
    (received,) = smtp_sink.wait_for(1)
    assert received["Subject"] == "[DSR-250303-ABCDE] Accusé" and received.get_content().strip() == "Bonjour"

    smtp_sink.refuse_rcpt = {"gone@example.fr"}
    with pytest.raises(PermanentFailure):
        mailer.send(mail(to="gone@example.fr"))
    smtp_sink.temp_fail = True
    with pytest.raises(RetryLater):
        mailer.send(mail())


def test_smtp_mailer_retries_when_nobody_listens():
    mailer = SmtpMailer(SmtpConfig(enabled=True, host="127.0.0.1", port=free_port(), timeout_seconds=2), lambda: NOW)
    with pytest.raises(RetryLater):
        mailer.send(mail())
    assert "cannot use" in mailer.check()


def test_file_mailer_writes_one_eml_per_message_id(tmp_path):
    mailer = FileMailer(tmp_path / "sent-mail", SmtpConfig(), lambda: NOW)
    mailer.send(mail())
    mailer.send(mail())  # a retry: same Message-ID, same file
    (path,) = mailer.sent()
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["Auto-Submitted"] == "auto-replied" and parsed["To"] == "camille@example.fr"


def test_without_smtp_the_service_writes_eml_files_and_links_the_message_id(tmp_path):
    service = make_service(tmp_path / "data", now=FakeClock())
    try:
        assert isinstance(service.component("mailer"), FileMailer)
        case = service.cases.open(received_at=RECEIVED, rights=["access"], language="en", channel="desk",
                                  requester=Person(email="sam@example.co.uk"))
        service.outbox.enqueue(Effect(MAIL_EFFECT, key="k1", case_id=case.id, payload={
            "to": "sam@example.co.uk", "subject": f"[{case.ref}] hello", "text": "Hello", "message_id": "<m1@shop.example>",
            "in_reply_to": "", "auto_submitted": "auto-generated", "case_ref": case.ref, "attachments": []}))
        service.outbox.run_due()
        (path,) = service.component("mailer").sent()
        assert b"X-Dsarbot-Ref: " + case.ref.encode() in path.read_bytes()
        assert service.store.get("refs", "msgid:m1@shop.example") == {"case_id": case.id}
    finally:
        service.close()


def test_mail_effect_with_a_vault_attachment_and_a_bad_header_fails_for_good(tmp_path, smtp_sink):
    service = make_service(tmp_path / "data", smtp_port=smtp_sink.port, now=FakeClock())
    try:
        case = service.cases.open(received_at=RECEIVED, rights=["access"], language="en", channel="desk",
                                  requester=Person(email="sam@example.co.uk"))
        vault_of(service).write("exports/x/answer.pdf", b"%PDF-1.4 fake")
        payload = {"to": "sam@example.co.uk", "subject": "Your answer", "text": "Attached.",
                   "message_id": "<m2@shop.example>", "auto_submitted": "auto-generated", "case_ref": case.ref,
                   "attachments": [{"vault_path": "exports/x/answer.pdf", "filename": "answer.pdf",
                                    "content_type": "application/pdf"}]}
        service.outbox.enqueue(Effect(MAIL_EFFECT, key="k2", case_id=case.id, payload=payload))
        service.outbox.enqueue(Effect(MAIL_EFFECT, key="k3", case_id=case.id,
                                      payload={**payload, "subject": "x\r\nBcc: a@b.c", "message_id": "<m3@s>"}))
        service.outbox.run_due()
        (sent,) = smtp_sink.wait_for(1)
        (part,) = list(sent.iter_attachments())
        assert part.get_filename() == "answer.pdf" and part.get_content() == b"%PDF-1.4 fake"
        assert service.store.get("outbox", "k3")["status"] == "failed"
        assert any(f.code == "effect_failed:mail.send" for f in service.cases.get(case.id).flags)
    finally:
        service.close()


def test_a_refusal_quoting_the_recipient_is_reported_without_the_address():
    """The reason ends up in the logs and on the case's flag: the server's words stay, the address goes."""
    import smtplib

    from integrations.smtp import smtp_outcome

    outcome = smtp_outcome(smtplib.SMTPDataError(554, b"5.7.1 <camille.martin@example.fr>: message refused as spam"))
    assert isinstance(outcome, PermanentFailure)
    assert str(outcome) == "SMTP 554: '5.7.1 <<address>>: message refused as spam'"
