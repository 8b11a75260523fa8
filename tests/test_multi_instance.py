"""Several instances on one PostgreSQL database: work shared out, nothing done twice, nothing lost.

The last test runs two real `dsarbot serve` processes (their own data dirs and ports) against one
database, the fake Zendesk and one Dovecot mailbox, with signed webhooks sent to both (some
retried to the other instance) and a burst of mail both watch; the others pit two services in one
process against each other on the primitives that make that work.
"""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Callable

import pytest

from bot.config import ConfigError, load_config
from bot.models import Message, Person
from bot.service import Service, build_service
from tests.mailbox_support import request_mail
from tests.servers.dovecot import dovecot, imap_account  # noqa: F401 (fixtures)
from tests.servers.instances import Cluster, due_effects, tally, wait_until
from tests.servers.postgres import pg_url  # noqa: F401 (fixture)
from tests.servers.smtp import smtp_sink  # noqa: F401 (fixture)

T0 = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)
KEYS = {"DSARBOT_SERVICE__SECRET_KEY": "s" * 64, "DSARBOT_SERVICE__VAULT_KEY": "A" * 43 + "="}


def _service(url: str, data_dir: Path, environ: dict[str, str] | None = None, **sections: Any) -> Service:
    config = load_config(None, environ=KEYS if environ is None else environ,
                         overrides={"service": {"data_dir": str(data_dir)}, "store": {"url": url}, **sections})
    return build_service(config, now=lambda: T0, integrations=["bot.classifier", "bot.intake_setup"])


@pytest.fixture
def pair(pg_url: str, tmp_path: Path):  # noqa: F811
    services = [_service(pg_url, tmp_path / f"i{n}") for n in (1, 2)]
    yield services
    for service in services:
        service.close()


def _race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same moment, one thread each."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_the_same_request_handed_to_two_instances_at_once_is_one_case(pair: list[Service]) -> None:
    for n in range(8):
        message = Message(id="", channel="email", sender="camille@example.fr", subject="Demande d'accès RGPD",
                          text="Je souhaite obtenir une copie de mes données personnelles (article 15 du RGPD).",
                          received_at=T0, message_id=f"<race-{n}@example.fr>")
        results = _race(*(lambda s=s: s.component("intake").receive(Message.from_doc(message.to_doc()))
                          for s in pair))
        assert sorted(r.outcome for r in results) == ["case_opened", "duplicate"]
        assert len({r.case_id for r in results}) == 1
    cases = pair[0].cases.all()
    assert len(cases) == 8
    assert all(pair[0].cases.by_ref(c.ref).id == c.id for c in cases)
    opens = Counter(e["case"] for e in pair[0].audit.events() if e["action"] == "open")
    assert sorted(opens.values()) == [1] * 8 and pair[0].audit.verify().ok


def test_two_instances_changing_one_case_lose_no_update(pair: list[Service]) -> None:
    case = pair[0].cases.open(received_at=T0, rights=["access"], language="fr", channel="email",
                              requester=Person(email="a@example.fr"))

    def assign_many(service: Service, who: str) -> None:
        for n in range(15):
            service.cases.record(case.id, "note", "system",
                                 lambda c, n=n: c.decisions.append({"action": "note", "by": who, "n": n}))

    _race(lambda: assign_many(pair[0], "one"), lambda: assign_many(pair[1], "two"))
    final = pair[1].cases.get(case.id)
    assert Counter(d["by"] for d in final.decisions) == {"one": 15, "two": 15}
    assert final.version == 31
    assert pair[0].audit.verify().ok and len(list(pair[0].audit.events(case.id))) == 31


def test_a_file_one_instance_stored_is_read_by_the_other(pair: list[Service]) -> None:
    pair[0].component("vault").write("attachments/m1/proof.pdf", b"%PDF-1.4 scan")
    assert pair[1].component("vault").read("attachments/m1/proof.pdf") == b"%PDF-1.4 scan"


def test_an_instance_whose_keys_differ_refuses_to_start(pair: list[Service], pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match=r"\[service\] vault_key \(DSARBOT_SERVICE__VAULT_KEY\) differ"):
        _service(pg_url, tmp_path / "i3", {**KEYS, "DSARBOT_SERVICE__VAULT_KEY": "B" * 43 + "="})
    with pytest.raises(ConfigError, match=r"\[service\] secret_key .* and \[service\] vault_key"):
        _service(pg_url, tmp_path / "i4", {})  # nothing configured: each data dir made its own
    _service(pg_url, tmp_path / "i5").close()  # the same keys: fine


def test_two_instances_polling_one_mailbox_hand_each_mail_to_intake_once(pg_url: str, imap_account, tmp_path: Path) -> None:  # noqa: F811
    mailbox = imap_account.config_overrides(use_idle=False)
    services = [_service(pg_url, tmp_path / f"m{n}", mailbox=mailbox) for n in (1, 2)]
    for service in services:  # the mailbox integration needs the intake the classifier set up
        from integrations.mailbox import setup

        setup(service)
    try:
        for n in range(12):
            imap_account.append(request_mail(message_id=make_msgid(domain="example.fr"),
                                             sender=f"client{n}@example.fr"), msg_time=T0)
        results = _race(*(lambda s=s: [s.component("mailbox").poll() for _ in range(3)] for s in services))
        delivered = Counter()
        for passes in results:
            for result in passes:
                delivered.update(result.outcomes)
        assert delivered == {"case_opened": 12}  # no pass saw a mail another pass had handed over
        assert len(services[0].cases.all()) == 12
        state = services[0].store.get("kv", services[0].component("mailbox").state.key)
        assert state["last_uid"] == max(imap_account.uids()) and state["failing"] == {}
    finally:
        for service in services:
            service.close()


def test_two_serve_processes_on_one_database(pg_url: str, imap_account, smtp_sink, tmp_path: Path) -> None:  # noqa: F811
    from tests.fakes.zendesk import FakeZendesk

    fake = FakeZendesk().start()
    cluster = Cluster(tmp_path, pg_url, fake.url, imap_account, settings={
        "reminders": {"digest_hour": 0},  # the digest and the overdue reminders are due at once
        "smtp": {"enabled": True, "host": "127.0.0.1", "port": smtp_sink.port, "starttls": False}})
    try:
        first, second = cluster.start(2)
        tickets = [fake.customer_ticket(f"client{n}@example.fr", f"Client {n}", "Mes données",
                                        f"Bonjour, je demande l'accès à mes données personnelles (client {n}).")
                   for n in range(30)]
        deliveries = [fake.webhook("created", tid) for tid in tickets]
        later = (datetime.now(timezone.utc) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        # Zendesk retries a delivery it got no answer for (same body and invocation, signed anew),
        # here to the other instance, as a load balancer would
        retried = [(fake.signed(body, later, headers["x-zendesk-webhook-invocation-id"]), body)
                   for headers, body in deliveries[:8]]
        statuses = _race(lambda: _post_all(first.port, deliveries[0::2] + retried[1::2]),
                         lambda: _post_all(second.port, deliveries[1::2] + retried[0::2]))
        assert all(s == 200 for batch in statuses for s in batch)
        old = datetime.now(timezone.utc) - timedelta(days=40)  # overdue on arrival: reminded today
        mail_ids = [make_msgid(domain="example.fr") for _ in range(8)]
        for n, mid in enumerate(mail_ids):
            imap_account.append(request_mail(message_id=mid, sender=f"mail{n}@example.fr"), msg_time=old)

        from bot.audit import PostgresAuditLog
        from bot.store import open_store

        store = open_store(pg_url, tmp_path / "reader")
        try:
            wait_until(lambda: store.count("cases") == 38 and cluster.inbox_backlog() == 0
                       and not imap_account.uids(criteria="UNSEEN") and not due_effects(store)
                       and any(e["kind"] == "notify.digest" for e in store.find("outbox", {"status": "done"})),
                       timeout=60, what="all work done")
            cluster.stop()
            assert all(i.process.returncode == 0 for i in cluster.instances), [i.log() for i in cluster.instances]
            counts = tally(store, PostgresAuditLog(store), fake)
        finally:
            store.close()
        assert counts["by_channel"] == {"zendesk": 30, "email": 8}  # one case per request, retries included
        assert counts["tickets_linked"] == 38 and counts["tickets_with_two_cases"] == 0
        assert counts["tickets_opened"] == 8 and counts["cases_with_two_tickets"] == 0  # one ticket per mail case
        assert counts["ticket_create_requests"] == 8 and counts["ticket_creations_repeated"] == 0
        assert counts["effects_failed"] == 0 and counts["effects_attempted_twice"] == 0
        assert counts["audit_ok"] and counts["cases_opened_twice"] == 0
        assert counts["reminders_sent"] == 8 and counts["reminders_twice"] == 0
        assert counts["digests"] == 1
        acks = Counter(m["In-Reply-To"].strip("<>") for m in smtp_sink.messages if m["Auto-Submitted"])
        assert acks == {mid.strip("<>"): 1 for mid in mail_ids}  # each acknowledgement sent once
        assert {i.name for i in cluster.instances} == {"instance1", "instance2"}
        fake.assert_clean()
    finally:
        cluster.stop()
        fake.stop()


def _post_all(port: int, requests: list[tuple[dict[str, str], bytes]]) -> list[int]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses = []
    for headers, body in requests:
        conn.request("POST", "/webhooks/zendesk", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
    conn.close()
    return statuses
