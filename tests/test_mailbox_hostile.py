"""Malformed, huge and hostile mail never crashes the channel and is never lost."""
from __future__ import annotations

import base64
import hashlib
import os

import pytest
from imapclient import SEEN

from bot.vault import vault_of
from tests.mailbox_support import make_service
from tests.servers.dovecot import dovecot, imap_account  # noqa: F401 (fixtures)


def nested(depth: int) -> bytes:
    parts = [b"From: deep@example.org\r\nSubject: nested\r\nMessage-ID: <deep@example.org>\r\nMIME-Version: 1.0\r\n"]
    for level in range(depth):
        parts.append(f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'.encode())
    parts.append(b"Content-Type: text/plain\r\n\r\nbottom\r\n")
    for level in reversed(range(depth)):
        parts.append(f"--b{level}--\r\n".encode())
    return b"".join(parts)


def with_attachment(size: int, name: str = "passport.pdf") -> bytes:
    data = base64.encodebytes(os.urandom(size))
    return (b"From: big@example.org\r\nSubject: my ID, big\r\nMessage-ID: <big@example.org>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n'
            b"Please find my ID attached.\r\n--x\r\nContent-Type: application/pdf\r\n"
            b'Content-Disposition: attachment; filename="../../etc/' + name.encode() + b'"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + data + b"--x--\r\n")


HOSTILE = {
    "no_headers_at_all": b"\r\njust a body, no header at all\r\n",
    "unknown_charset": (b"From: a@example.org\r\nSubject: charset\r\nMessage-ID: <cs@example.org>\r\n"
                        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n\xff\xfe\xfd donn\xe9es\r\n"),
    "broken_base64": (b"From: b@example.org\r\nSubject: b64\r\nMessage-ID: <b64@example.org>\r\n"
                      b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not*base64===\r\n"),
    "broken_qp_and_encoded_words": (b"From: =?utf-8?b?////?= <c@example.org>\r\nSubject: =?x-bad?q?=ZZ?=\r\n"
                                    b"Message-ID: <qp@example.org>\r\nContent-Transfer-Encoding: quoted-printable"
                                    b"\r\n\r\n=ZZ=\r\n=4\r\n"),
    "eight_bit_headers": ("From: Jérôme Dûpont <jerome@example.fr>\r\nSubject: Données personnelles, "
                          "accès\r\nMessage-ID: <8bit@example.fr>\r\n\r\nJe veux mes données.\r\n").encode("utf-8")
                         + b"X-Latin1: caf\xe9\r\n",
    "nul_bytes_and_long_header": (b"From: d@example.org\r\nSubject: nul\r\nMessage-ID: <nul@example.org>\r\nX-Long: "
                                  + b"a" * 200_000 + b"\r\n\r\nbody\x00with\x00nul\r\n"),
    "nested_60_levels": nested(60),
    "many_attachments": (b"From: e@example.org\r\nSubject: many\r\nMessage-ID: <many@example.org>\r\nMIME-Version: 1.0"
                         b'\r\nContent-Type: multipart/mixed; boundary="m"\r\n\r\n'
                         + b"".join(b'--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; '
                                    b'filename="f%d.txt"\r\n\r\nx\r\n' % i for i in range(60)) + b"--m--\r\n"),
    "missing_end_boundary": (b"From: f@example.org\r\nSubject: cut\r\nMessage-ID: <cut@example.org>\r\nMIME-Version: "
                             b'1.0\r\nContent-Type: multipart/mixed; boundary="never"\r\n\r\n--never\r\n'
                             b"Content-Type: text/plain\r\n\r\ntruncated"),
}


@pytest.fixture
def service(tmp_path, imap_account):
    svc = make_service(tmp_path / "data", imap_account)
    yield svc
    svc.close()


def all_seen(account) -> bool:
    with account.client() as client:
        client.select_folder("INBOX", readonly=True)
        return all(SEEN in d[b"FLAGS"] for d in client.fetch(client.search("ALL"), ["FLAGS"]).values())


def test_hostile_messages_are_all_kept_and_the_channel_survives(service, imap_account):
    for raw in HOSTILE.values():
        imap_account.append(raw)

    result = service.component("mailbox").poll()

    assert result.failed == 0 and result.quarantined == 0, service.store.get("kv", service.component("mailbox").state.key)
    assert result.delivered == len(HOSTILE)
    assert set(result.outcomes) <= {"case_opened", "ignored"}
    assert service.store.count("messages") == len(HOSTILE)  # every one of them is on record
    assert all_seen(imap_account)
    (many,) = [m for m in service.store.find("messages") if m["message_id"].strip("<>") == "many@example.org"]
    kept = [a for a in many["attachments"] if a["path"]]
    assert 0 < len(kept) <= service.config.mailbox.max_attachments


def test_a_30_mb_attachment_is_listed_not_kept_and_the_mail_is_processed(service, imap_account):
    imap_account.append(with_attachment(30 * 1024 * 1024))

    result = service.component("mailbox").poll()

    assert result.delivered == 1 and result.failed == 0
    (message,) = service.store.find("messages")
    assert not [a for a in message["attachments"] if a["content_type"] == "application/pdf"]  # not kept...
    assert any("passport.pdf" in w for w in message["warnings"])  # ...but an agent is told it existed
    assert all_seen(imap_account)


def test_an_attachment_over_the_configured_limit_is_listed_not_kept(tmp_path, imap_account):
    svc = make_service(tmp_path / "data", imap_account, max_attachment_bytes=1024 * 1024)
    try:
        imap_account.append(with_attachment(2 * 1024 * 1024))
        assert svc.component("mailbox").poll().delivered == 1
        (message,) = svc.store.find("messages")
        (attachment,) = [a for a in message["attachments"] if a["content_type"] == "application/pdf"]
        assert attachment["size"] == 2 * 1024 * 1024 and attachment["path"] == ""
        assert any("not kept" in w for w in message["warnings"])
    finally:
        svc.close()


def test_a_small_attachment_is_encrypted_in_the_vault_under_a_safe_name(service, imap_account):
    imap_account.append(with_attachment(2000, name="id card.pdf"))
    service.component("mailbox").poll()
    (message,) = service.store.find("messages")
    (attachment,) = [a for a in message["attachments"] if a["content_type"] == "application/pdf"]
    assert ".." not in attachment["path"] and "/etc/" not in attachment["path"]
    vault = vault_of(service)
    data = vault.read(attachment["path"])
    assert hashlib.sha256(data).hexdigest() == attachment["sha256"] and len(data) == 2000
    assert (vault.root / attachment["path"]).read_bytes() != data  # encrypted at rest


def test_a_message_over_the_size_limit_is_read_by_its_headers_and_flagged(tmp_path, imap_account):
    svc = make_service(tmp_path / "data", imap_account, max_message_bytes=1024 * 1024)
    try:
        imap_account.append(with_attachment(2 * 1024 * 1024))
        result = svc.component("mailbox").poll()
        assert result.delivered == 1
        (message,) = svc.store.find("messages")
        assert "max_message_bytes" in message["parse_error"]
        (case,) = svc.cases.all()  # kept for an agent, whatever the classifier made of the headers
        assert any(f.code == "unparseable" for f in case.flags)
        assert all_seen(imap_account)
    finally:
        svc.close()
