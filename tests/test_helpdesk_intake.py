"""Tickets customers open in the helpdesk become cases; agents' changes there come back to the case."""
from __future__ import annotations

import pytest

from bot.models import Person, parse_datetime
from bot.web.app import create_app
from tests.fakes.freshdesk import FakeFreshdesk
from tests.fakes.zendesk import AGENT_ID, FakeZendesk
from tests.helpdesk_support import Clock, effects, make_service, run_outbox


@pytest.fixture
def clock():
    return Clock()


class Desk:
    """One helpdesk fake, the service pointed at it, and a way to deliver its webhooks."""

    def __init__(self, fake, service, clock) -> None:
        self.fake, self.service, self.clock = fake, service, clock
        self.client = create_app(service).test_client()

    def deliver(self, headers, body) -> None:
        reply = self.client.post(f"/webhooks/{self.service.component('helpdesk').name}", data=body, headers=headers)
        assert reply.status_code == 200, reply.get_json()
        self.clock.advance(1)  # the drain waits for a quiet door
        self.service.component("helpdesk_drain").run()

    def zendesk(self, kind, tid, **kw) -> None:
        self.deliver(*self.fake.webhook(kind, tid, timestamp=self.clock.iso(), **kw))

    def freshdesk(self, tid, **kw) -> None:
        self.deliver(*self.fake.webhook(tid, **kw))

    def cases(self):
        return self.service.cases.all()


@pytest.fixture
def zd(tmp_path, clock):
    with FakeZendesk() as fake:
        service = make_service(tmp_path, "zendesk", fake.url, clock)
        yield Desk(fake, service, clock)
        service.close()
        fake.assert_clean()


@pytest.fixture
def fd(tmp_path, clock):
    with FakeFreshdesk() as fake:
        service = make_service(tmp_path, "freshdesk", fake.url, clock)
        yield Desk(fake, service, clock)
        service.close()
        fake.assert_clean()


def test_a_request_opened_in_zendesk_becomes_a_case_on_that_ticket(zd):
    tid = zd.fake.customer_ticket("Camille@Example.fr", "Camille Martin", "Mes données",
                                  "Bonjour, je souhaite une copie de mes données personnelles.")
    zd.zendesk("created", tid)
    [case] = zd.cases()
    assert case.channel == "zendesk" and case.rights == ["access"] and case.language == "fr"
    assert case.requester.email == "camille@example.fr"  # as Zendesk reports it: still only a claim
    assert case.received_at == parse_datetime(zd.fake.tickets[tid]["created_at"])
    assert case.ticket == {"system": "zendesk", "id": str(tid), "url": f"{zd.fake.url}/agent/tickets/{tid}"}
    run_outbox(zd.service)
    assert zd.fake.calls("POST", r"/api/v2/tickets\.json") == []  # no second ticket
    assert zd.fake.field(tid, "case_ref") == case.ref and zd.fake.field(tid, "state") == "received"
    assert "dsar_access" in zd.fake.tickets[tid]["tags"]
    zd.zendesk("created", tid)  # the same event again (a new invocation): nothing more
    assert len(zd.cases()) == 1


def test_a_question_that_is_no_request_is_left_alone(zd):
    tid = zd.fake.customer_ticket("sam@example.org", "Sam", "Where is my parcel?", "Order 1234 has not arrived.")
    zd.zendesk("created", tid)
    assert zd.cases() == []
    run_outbox(zd.service)
    assert zd.fake.calls("PUT", rf"/api/v2/tickets/{tid}\.json") == []
    [ignored] = zd.service.store.find("ignored")
    assert ignored["channel"] == "zendesk"


def test_customer_comments_attach_to_the_case_and_agents_notes_do_not(zd):
    tid = zd.fake.customer_ticket("camille@example.fr", "Camille", "RGPD", "Je demande l'accès à mes données.")
    zd.zendesk("created", tid)
    [case] = zd.cases()
    zd.fake._add_comment(tid, {"body": "internal: check the CRM", "public": False}, AGENT_ID)
    zd.fake.customer_comment(tid, "Voici mon numéro de commande : 1234")
    zd.zendesk("comment_added", tid)
    case = zd.service.cases.get(case.id)
    assert len(case.message_ids) == 2
    assert [f.code for f in case.open_flags] == ["new_message"]
    zd.zendesk("comment_added", tid)  # delivered twice: attached once
    assert len(zd.service.cases.get(case.id).message_ids) == 2
    zd.fake.customer_comment(tid, "I am her lawyer", email="someone@else.example")
    zd.zendesk("comment_added", tid)
    assert "sender_differs" in [f.code for f in zd.service.cases.get(case.id).open_flags]


def test_agents_closing_or_reopening_the_ticket_flag_the_open_case(zd):
    tid = zd.fake.customer_ticket("camille@example.fr", "Camille", "RGPD", "Je demande l'accès à mes données.")
    zd.zendesk("created", tid)
    [case] = zd.cases()
    zd.fake.agent_status(tid, "solved")
    zd.zendesk("status_changed", tid, event={"current": "SOLVED", "previous": "OPEN"})
    assert [f.code for f in zd.service.cases.get(case.id).open_flags] == ["ticket_closed"]
    zd.fake.agent_status(tid, "open")
    zd.zendesk("status_changed", tid, event={"current": "OPEN", "previous": "SOLVED"})
    assert [f.code for f in zd.service.cases.get(case.id).open_flags] == ["ticket_closed", "ticket_reopened"]
    run_outbox(zd.service)
    assert "dsar_flagged" in zd.fake.tickets[tid]["tags"]


def test_a_merge_moves_the_case_to_the_surviving_ticket(zd):
    tid = zd.fake.customer_ticket("camille@example.fr", "Camille", "RGPD", "Je demande l'accès à mes données.")
    zd.zendesk("created", tid)
    [case] = zd.cases()
    run_outbox(zd.service)
    target = zd.fake.customer_ticket("camille@example.fr", "Camille", "Relance", "Avez-vous reçu mon message ?")
    zd.zendesk("created", target)  # not a request on its own
    zd.fake.merge(tid, target)
    zd.zendesk("merged", tid, event={"target_ticket_id": str(target)})
    case = zd.service.cases.get(case.id)
    assert case.ticket["id"] == str(target)
    assert zd.service.store.get("refs", f"ticket:zendesk:{target}") == {"case_id": case.id}
    assert [f.code for f in case.open_flags] == ["ticket_merged"]  # not also "closed": it was a merge
    run_outbox(zd.service)
    assert zd.fake.field(target, "case_ref") == case.ref


def test_the_webhook_of_dsarbots_own_ticket_opens_no_case(zd, clock):
    case = zd.service.cases.open(received_at=clock(), rights=["access"], language="fr", channel="email",
                                 requester=Person(email="camille@example.fr"))
    zd.fake.lose(1, path=r"/api/v2/tickets\.json", method="POST")
    run_outbox(zd.service)  # created in Zendesk; our answer lost
    [tid] = zd.fake.tickets
    zd.zendesk("created", tid)  # its webhook arrives first
    assert [c.id for c in zd.cases()] == [case.id]
    assert zd.service.cases.get(case.id).ticket["id"] == str(tid)
    clock.advance(60)
    run_outbox(zd.service)
    assert list(zd.fake.tickets) == [tid]
    assert all(e["status"] == "done" for e in effects(zd.service))


def test_freshdesk_payload_lies_are_ignored_the_api_is_asked(fd):
    tid = fd.fake.customer_ticket("camille@example.fr", "Camille Martin", "Suppression",
                                  "Merci de supprimer toutes mes données.")
    fd.freshdesk(tid, lies={"requester_email": "attacker@evil.example", "subject": "Accès",
                            "ticket_status": "Closed", "description": "send my data to attacker@evil.example"})
    [case] = fd.cases()
    assert case.requester.email == "camille@example.fr" and case.rights == ["erasure"]
    assert case.ticket == {"system": "freshdesk", "id": str(tid), "url": f"{fd.fake.url}/a/tickets/{tid}"}
    assert not case.open_flags  # the lying "Closed" status did not count either
    run_outbox(fd.service)
    assert fd.fake.tickets[tid]["custom_fields"]["cf_dsar_case_ref"] == case.ref
    assert fd.fake.calls("POST", r"^/api/v2/tickets$") == []


def test_freshdesk_replies_and_status_changes_come_back(fd):
    tid = fd.fake.customer_ticket("camille@example.fr", "Camille", "RGPD", "Je demande l'accès à mes données.")
    fd.freshdesk(tid)
    [case] = fd.cases()
    fd.fake.customer_reply(tid, "Ma commande : 1234")
    fd.fake.agent_status(tid, "closed")
    fd.freshdesk(tid)
    case = fd.service.cases.get(case.id)
    assert len(case.message_ids) == 2
    assert {f.code for f in case.open_flags} == {"new_message", "ticket_closed"}


def test_a_helpdesk_down_pauses_the_drain_and_nothing_is_lost(zd, clock):
    tids = [zd.fake.customer_ticket(f"p{n}@example.fr", "P", "RGPD", "Accès à mes données") for n in range(3)]
    zd.fake.fail(1, 429, {"Retry-After": "20"}, path=rf"/api/v2/tickets/{tids[1]}\.json")
    for tid in tids:
        headers, body = zd.fake.webhook("created", tid, timestamp=clock.iso())
        assert zd.client.post("/webhooks/zendesk", data=body, headers=headers).status_code == 200
    drain = zd.service.component("helpdesk_drain")
    clock.advance(1)
    assert drain.run() == 1 and len(zd.cases()) == 1
    assert drain.run() == 0  # paused as Zendesk asked
    clock.advance(20)
    assert drain.run() == 2
    assert sorted(c.ticket["id"] for c in zd.cases()) == sorted(str(t) for t in tids)
    assert zd.service.component("helpdesk_inbox").backlog() == 0


def test_the_drain_waits_while_webhooks_keep_coming_but_not_forever(zd, clock):
    drain = zd.service.component("helpdesk_drain")
    first = zd.fake.customer_ticket("p0@example.fr", "P", "RGPD", "Accès à mes données")
    headers, body = zd.fake.webhook("created", first, timestamp=clock.iso())
    zd.client.post("/webhooks/zendesk", data=body, headers=headers)
    assert drain.run() == 0  # a burst is arriving: acknowledge first, turn into cases later
    for n in range(1, 31):
        clock.advance(1)
        tid = zd.fake.customer_ticket(f"p{n}@example.fr", "P", "RGPD", "Accès à mes données")
        headers, body = zd.fake.webhook("created", tid, timestamp=clock.iso())
        zd.client.post("/webhooks/zendesk", data=body, headers=headers)
        if n < 30:
            assert drain.run() == 0
    assert drain.run() == 31  # the oldest waited 30 s: no more waiting, the burst or not
    assert len(zd.cases()) == 31
