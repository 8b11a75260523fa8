"""The Maildir channel: files in new/ become cases through the real parser and intake, then move to cur/."""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from bot.service import build_service
from tests.mailbox_support import RECEIVED, FakeClock, request_mail
from tests.shared import shared_dir

CORPUS = shared_dir() / "corpus"


def make_maildir(root: Path) -> Path:
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def deliver(root: Path, name: str, raw: bytes, at=RECEIVED) -> Path:
    """What a delivery agent does: write into tmp/, rename into new/, file time = delivery time."""
    tmp = root / "tmp" / name
    tmp.write_bytes(raw)
    os.utime(tmp, (at.timestamp(), at.timestamp()))
    target = root / "new" / name
    os.replace(tmp, target)
    return target


@pytest.fixture
def maildir(tmp_path):
    return make_maildir(tmp_path / "Maildir")


@pytest.fixture
def service(tmp_path, maildir):
    config = load_config(None, environ={}, overrides={
        "service": {"data_dir": str(tmp_path / "data")},
        "maildir": {"enabled": True, "path": str(maildir), "max_failures": 3}})
    svc = build_service(config, now=FakeClock())
    yield svc
    svc.close()


def test_a_request_becomes_a_case_clocked_from_the_delivery_and_moves_to_cur(service, maildir):
    deliver(maildir, "1700000000.M1P1.host", request_mail())
    channel = service.component("maildir")

    assert dict(channel.poll()) == {"case_opened": 1}

    (case,) = service.cases.all()
    assert case.received_at == RECEIVED  # the file's delivery time, not the Date header three days earlier
    assert case.due == date(2025, 4, 3) and case.language == "fr"
    assert case.requester.email == "camille.martin@example.fr"
    assert list((maildir / "new").iterdir()) == []
    assert [p.name for p in (maildir / "cur").iterdir()] == ["1700000000.M1P1.host:2,S"]
    assert dict(channel.poll()) == {}  # handled once


def test_auto_replies_are_ignored_and_replays_make_no_second_case(service, maildir):
    raw = request_mail(message_id="<same@example.fr>")
    deliver(maildir, "a", raw)
    deliver(maildir, "b", (CORPUS / "auto_reply_set_of_emails_rfc3834_01_eml.eml").read_bytes())
    channel = service.component("maildir")
    assert dict(channel.poll()) == {"case_opened": 1, "ignored": 1}

    deliver(maildir, "c", raw)  # the same mail delivered again (a crash before the move, a resend)
    assert dict(channel.poll()) == {"duplicate": 1}
    assert len(service.cases.all()) == 1
    assert sorted(p.name for p in (maildir / "cur").iterdir()) == ["a:2,S", "b:2,S", "c:2,S"]


def test_a_file_failing_intake_is_retried_then_quarantined_flagged_never_dropped(service, maildir):
    channel = service.component("maildir")
    intake = service.component("intake")
    real_receive = intake.receive

    def failing_receive(message, **kw):
        if "POISON" in message.subject:
            raise RuntimeError("simulated intake failure")
        return real_receive(message, **kw)

    intake.receive = failing_receive
    deliver(maildir, "poison:2,", request_mail(subject="POISON données"))
    deliver(maildir, "good", request_mail(subject="Suppression de mes données"))

    assert dict(channel.poll()) == {"failed": 1, "case_opened": 1}
    assert dict(channel.poll()) == {"failed": 1}
    assert dict(channel.poll()) == {"quarantined": 1}

    (quarantined,) = service.store.find("quarantine")
    assert "simulated intake failure" in quarantined["reason"] and quarantined["failures"] == 3
    assert b"POISON" in service.component("vault").read(quarantined["vault_path"])
    assert sorted(p.name for p in (maildir / "cur").iterdir()) == ["good:2,S", "poison:2,F"]  # kept, unread
    assert dict(channel.poll()) == {}


def test_a_folder_that_is_not_a_maildir_is_named_at_start_and_nothing_is_read(tmp_path):
    config = load_config(None, environ={}, overrides={
        "service": {"data_dir": str(tmp_path / "data")},
        "maildir": {"enabled": True, "path": str(tmp_path / "nowhere")}})
    service = build_service(config, now=FakeClock())
    try:
        problems = service.run_startup_checks()
        assert any("[maildir]" in p and "not a Maildir" in p for p in problems)
        assert dict(service.component("maildir").poll()) == {}
    finally:
        service.close()
    with pytest.raises(ConfigError, match=r"\[maildir\] path is required"):
        build_service(load_config(None, environ={}, overrides={
            "service": {"data_dir": str(tmp_path / "d2")}, "maildir": {"enabled": True}}), now=FakeClock())
