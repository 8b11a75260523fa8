"""The mailbox channel against a real Dovecot, with the acknowledgement checked at a real SMTP sink."""
from __future__ import annotations

from datetime import date

import pytest
from imapclient import FLAGGED, SEEN

from tests.mailbox_support import RECEIVED, make_service, request_mail, wait_until
from tests.servers.dovecot import dovecot, dovecot_basic, free_port, imap_account  # noqa: F401 (fixtures)
from tests.servers.smtp import smtp_sink  # noqa: F401 (fixture)
from tests.shared import shared_dir

CORPUS = shared_dir() / "corpus"


@pytest.fixture
def service(tmp_path, imap_account, smtp_sink):
    svc = make_service(tmp_path / "data", imap_account, smtp_sink.port)
    yield svc
    watcher = svc.component("mailbox_watcher")
    if watcher:
        watcher.stop()
    svc.close()


def flags_of(account, folder="INBOX"):
    with account.client() as client:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        return {uid: set(data[b"FLAGS"]) for uid, data in client.fetch(uids, ["FLAGS"]).items()} if uids else {}


def test_a_request_becomes_one_case_clocked_from_internaldate_and_is_acknowledged(service, imap_account, smtp_sink):
    imap_account.append(request_mail(), msg_time=RECEIVED)
    channel = service.component("mailbox")

    result = channel.poll()

    assert dict(result.outcomes) == {"case_opened": 1}
    (case,) = service.cases.all()
    assert case.received_at == RECEIVED  # the server's INTERNALDATE, not the Date header (3 days earlier)
    assert case.due == date(2025, 4, 3)
    assert case.language == "fr" and case.requester.email == "camille.martin@example.fr"
    assert all(SEEN in f for f in flags_of(imap_account).values())

    service.outbox.run_due()
    (ack,) = smtp_sink.wait_for(1)
    assert smtp_sink.envelopes[0].rcpt_tos == ["camille.martin@example.fr"]
    assert case.ref in ack["Subject"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Dsarbot-Ref"] == case.ref
    body = ack.get_content()
    assert "3 avril 2025" in body and "3 mars 2025" in body and "Bonjour" in body
    first = service.store.get("messages", case.message_ids[0])
    assert ack["In-Reply-To"].strip("<>") == first["message_id"].strip("<>")

    # the outbox key allows one acknowledgement per case, however often the effects run
    service.outbox.run_due()
    assert len(smtp_sink.envelopes) == 1


def test_the_same_message_id_twice_makes_no_second_case(service, imap_account):
    raw = request_mail(message_id="<same-request@example.fr>")
    imap_account.append(raw, msg_time=RECEIVED)
    service.component("mailbox").poll()
    imap_account.append(raw, msg_time=RECEIVED)

    result = service.component("mailbox").poll()

    assert dict(result.outcomes) == {"duplicate": 1}
    assert len(service.cases.all()) == 1
    assert all(SEEN in f for f in flags_of(imap_account).values())


@pytest.mark.parametrize("name", ["auto_reply_set_of_emails_rfc3834_01_eml.eml",
                                  "bounce_set_of_emails_lhost_postfix_01_eml.eml"])
def test_auto_replies_and_bounces_open_no_case_and_get_no_reply(service, imap_account, smtp_sink, name):
    imap_account.append((CORPUS / name).read_bytes(), msg_time=RECEIVED)

    result = service.component("mailbox").poll()
    service.outbox.run_due()

    assert dict(result.outcomes) == {"ignored": 1}
    assert service.cases.all() == []
    assert service.store.count("ignored") == 1
    assert service.store.find("outbox") == [] and smtp_sink.envelopes == []
    assert all(SEEN in f for f in flags_of(imap_account).values())


def test_replies_thread_to_their_case_by_in_reply_to_or_by_reference(service, imap_account, smtp_sink):
    channel = service.component("mailbox")
    imap_account.append(request_mail(), msg_time=RECEIVED)
    channel.poll()
    service.outbox.run_due()
    (ack,) = smtp_sink.wait_for(1)
    (case,) = service.cases.all()

    imap_account.append(request_mail(subject="Re: votre accusé de réception", text="Merci, voici mon numéro de "
                                     "commande : XKBKNABJK.", headers={"In-Reply-To": ack["Message-ID"]}))
    imap_account.append(request_mail(subject=f"Question sur le dossier {case.ref}", text="Où en est ma demande ?"))
    result = channel.poll()

    assert dict(result.outcomes) == {"attached": 2}
    assert len(service.cases.all()) == 1
    assert len(service.cases.get(case.id).message_ids) == 3
    service.outbox.run_due()
    assert len(smtp_sink.envelopes) == 1  # replies are never acknowledged


def test_idle_push_delivers_within_seconds(service, imap_account):
    watcher = service.component("mailbox_watcher")
    assert watcher.start in service.components["background"]
    watcher.start()
    wait_until(watcher.connected.is_set, what="IDLE connection")

    imap_account.append(request_mail())

    wait_until(lambda: service.cases.all(), timeout=10, what="case opened by IDLE push")
    wait_until(lambda: all(SEEN in f for f in flags_of(imap_account).values()), what="message flagged")
    assert service.component("mailbox").state.status()["mode"] == "idle"


def test_idle_is_renewed_before_the_server_drops_it(tmp_path, imap_account):
    svc = make_service(tmp_path / "data", imap_account)
    svc.component("mailbox_watcher").config.idle_renew_seconds = 1  # validated config forbids it: test only
    watcher = svc.component("mailbox_watcher")
    polls = []
    channel = svc.component("mailbox")
    original = channel.poll
    channel.poll = lambda *a, **k: polls.append(1) or original(*a, **k)
    try:
        watcher.start()
        wait_until(lambda: len(polls) >= 3, timeout=10, what="two IDLE renewals")
        imap_account.append(request_mail())
        wait_until(lambda: svc.cases.all(), timeout=10, what="case after renewals")
    finally:
        watcher.stop()
        svc.close()


def test_polling_alone_when_idle_is_disabled(tmp_path, imap_account):
    svc = make_service(tmp_path / "data", imap_account, use_idle=False, poll_seconds=30)
    try:
        assert "background" not in svc.components
        (job,) = [j for j in svc.jobs if j.id == "mailbox.poll"]
        assert job.seconds == 30
        imap_account.append(request_mail())
        job.func()
        assert len(svc.cases.all()) == 1
        assert svc.component("mailbox").state.status()["state"] == "ok"
    finally:
        svc.close()


def test_processed_mail_is_moved_when_a_processed_folder_is_set(tmp_path, imap_account):
    imap_account.create_folder("Processed")
    svc = make_service(tmp_path / "data", imap_account, processed_folder="Processed")
    try:
        assert svc.component("mailbox").check() is None
        imap_account.append(request_mail())
        svc.component("mailbox").poll()
        assert imap_account.uids("INBOX") == [] and len(imap_account.uids("Processed")) == 1
        assert len(svc.cases.all()) == 1
    finally:
        svc.close()


def test_startup_check_names_the_problem(tmp_path, imap_account, dovecot):
    wrong = dovecot.add_user()
    wrong.password = "not-the-password"
    svc = make_service(tmp_path / "data", wrong)
    try:
        problem = svc.component("mailbox").check()
        assert problem and "username and password" in problem
        assert svc.component("mailbox").state.status()["state"] == "auth_failed"
    finally:
        svc.close()
    svc = make_service(tmp_path / "data2", imap_account, folder="NoSuchFolder")
    try:
        assert "NoSuchFolder" in svc.component("mailbox").check()
        assert svc.component("mailbox").state.status()["state"] == "misconfigured"
    finally:
        svc.close()
    svc = make_service(tmp_path / "data3", imap_account, port=free_port())  # nobody listens there
    try:
        assert "connection failed" in svc.component("mailbox").check()
        assert svc.component("mailbox").state.status()["state"] == "not_ready"
    finally:
        svc.close()


def test_a_message_failing_intake_is_retried_then_quarantined_never_dropped(service, imap_account):
    channel = service.component("mailbox")
    intake = service.component("intake")
    real_receive = intake.receive
    failures = {"left": 99}

    def failing_receive(message, **kw):
        if failures["left"] > 0 and "POISON" in message.subject:
            failures["left"] -= 1
            raise RuntimeError("simulated intake failure")
        return real_receive(message, **kw)

    intake.receive = failing_receive
    imap_account.append(request_mail(subject="POISON données"))
    imap_account.append(request_mail(subject="Suppression de mes données"))

    first = channel.poll()
    assert first.failed == 1 and dict(first.outcomes) == {"case_opened": 1}
    doc = service.store.get("kv", channel.state.key)
    assert list(doc["failing"].values())[0]["count"] == 1
    for _ in range(channel.config.max_failures - 2):
        assert channel.poll().failed == 1
    last = channel.poll()
    assert last.quarantined == 1

    (quarantined,) = service.store.find("quarantine")
    assert "simulated intake failure" in quarantined["reason"]
    assert b"POISON" in service.component("vault").read(quarantined["vault_path"])
    flags = flags_of(imap_account)
    poison_uid = min(flags)
    assert FLAGGED in flags[poison_uid] and SEEN not in flags[poison_uid]  # still there, still unread
    assert service.store.get("kv", channel.state.key)["failing"] == {}
    assert channel.poll().delivered == 0  # not retried once quarantined


def test_a_failing_message_heals_on_retry(service, imap_account):
    channel = service.component("mailbox")
    intake = service.component("intake")
    real_receive = intake.receive
    calls = {"n": 0}

    def flaky(message, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return real_receive(message, **kw)

    intake.receive = flaky
    imap_account.append(request_mail())
    assert channel.poll().failed == 1
    assert all(SEEN not in f for f in flags_of(imap_account).values())
    assert dict(channel.poll().outcomes) == {"case_opened": 1}
    assert all(SEEN in f for f in flags_of(imap_account).values())
    assert service.store.get("kv", channel.state.key)["failing"] == {}


def test_a_new_uidvalidity_rescans_and_dedupe_keeps_one_case(service, imap_account):
    channel = service.component("mailbox")
    imap_account.append(request_mail(message_id="<rescan@example.fr>"))
    channel.poll()
    doc = service.store.get("kv", channel.state.key)
    service.store.put("kv", channel.state.key, {**doc, "uidvalidity": 1})  # as if the server renumbered
    with imap_account.client() as client:  # make it unseen again: a rescan must not depend on flags
        client.select_folder("INBOX")
        client.remove_flags(client.search("ALL"), [SEEN])

    result = channel.poll()

    assert dict(result.outcomes) == {"duplicate": 1}
    assert len(service.cases.all()) == 1
    assert service.store.get("kv", channel.state.key)["uidvalidity"] != 1


def test_without_idle_move_or_uidplus_the_watcher_leaves_it_to_polling_and_copy_expunge_moves(
        tmp_path, dovecot_basic):
    account = dovecot_basic.add_user()
    account.create_folder("Processed")
    svc = make_service(tmp_path / "data", account, processed_folder="Processed")
    try:
        channel, watcher = svc.component("mailbox"), svc.component("mailbox_watcher")
        with channel.connect() as client:
            assert not client.has_capability("IDLE") and not client.has_capability("MOVE")
        watcher.start()
        wait_until(lambda: not watcher.running, what="watcher to leave it to polling")
        assert channel.state.status()["mode"] == "poll"
        account.append(request_mail())
        (job,) = [j for j in svc.jobs if j.id == "mailbox.poll"]
        job.func()
        assert len(svc.cases.all()) == 1
        assert account.uids("INBOX") == [] and len(account.uids("Processed")) == 1
    finally:
        svc.close()


def test_watcher_backs_off_on_bad_credentials_and_stops_on_a_missing_folder(tmp_path, dovecot, imap_account):
    wrong = dovecot.add_user()
    wrong.password = "nope"
    svc = make_service(tmp_path / "a", wrong)
    try:
        watcher = svc.component("mailbox_watcher")
        watcher.start()
        wait_until(lambda: svc.component("mailbox").state.status().get("state") == "auth_failed",
                   what="auth_failed status")
        assert watcher.running  # it keeps trying, slowly, until someone fixes the password
        watcher.stop(timeout=5)
        assert not watcher.running
    finally:
        svc.close()
    svc = make_service(tmp_path / "b", imap_account, folder="Nope")
    try:
        watcher = svc.component("mailbox_watcher")
        watcher.start()
        wait_until(lambda: not watcher.running, what="watcher to stop on a misconfiguration")
        assert svc.component("mailbox").state.status()["state"] == "misconfigured"
    finally:
        svc.close()


def test_a_missing_processed_folder_is_reported_and_nothing_is_lost(tmp_path, imap_account):
    svc = make_service(tmp_path / "data", imap_account, processed_folder="Gone")
    try:
        channel = svc.component("mailbox")
        assert "Gone" in channel.check()
        imap_account.append(request_mail())
        channel.poll_job()
        assert channel.state.status()["state"] == "misconfigured"
        assert len(svc.cases.all()) == 1 and imap_account.uids("INBOX", "SEEN") != []  # flagged, not moved
        imap_account.create_folder("Gone")
        channel.poll_job()  # once fixed, the replay finds the case and moves the mail
        assert len(svc.cases.all()) == 1 and imap_account.uids("INBOX") == []
        assert channel.state.status()["state"] == "ok"
    finally:
        svc.close()


def test_mail_arriving_during_a_pass_is_not_left_for_the_safety_net(service, imap_account):
    """The server announces it once, inside the answer to one of the pass's commands: IDLE never would."""
    channel, watcher = service.component("mailbox"), service.component("mailbox_watcher")
    appended = []

    def append_another(uid):
        if not appended:
            appended.append(uid)
            imap_account.append(request_mail(subject="Effacement de mes données personnelles"))

    channel.after_fetch.append(append_another)
    imap_account.append(request_mail())
    watcher.start()  # no scheduler runs here: only IDLE and the pass loop can deliver the second mail
    wait_until(lambda: len(service.cases.all()) == 2, timeout=10, what="both mails as cases")
