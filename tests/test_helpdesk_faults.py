"""The helpdesk down, then rate limiting, answers lost, the service killed and restarted mid-way:
afterwards every case has exactly one ticket and every note is there exactly once."""
from __future__ import annotations

import pytest

from bot.models import Person
from integrations.helpdesk_sync import queue_note
from tests.fakes.freshdesk import FakeFreshdesk
from tests.fakes.zendesk import FakeZendesk
from tests.helpdesk_support import Clock, effects, make_service, run_outbox
from tests.servers.postgres import pg_url  # noqa: F401 - fixture

SETUPS = {
    "zendesk": (FakeZendesk, r"/api/v2/tickets\.json", r"/api/v2/tickets/\d+\.json"),
    "freshdesk": (FakeFreshdesk, r"^/api/v2/tickets$", r"/api/v2/tickets/\d+/notes"),
}


def _tickets_of(fake, kind, case) -> list[int]:
    if kind == "zendesk":
        return [tid for tid, t in fake.tickets.items() if t["external_id"] == case.id]
    return [tid for tid, t in fake.tickets.items() if t["custom_fields"]["cf_dsar_case_ref"] == case.ref]


def _note_texts(fake, kind, tid) -> list[str]:
    if kind == "zendesk":
        return [n["body"] for n in fake.notes(tid)]
    return [n["body_text"].split(" dsarbot-ref:")[0] for n in fake.notes(tid)]


def _crash_after_next_create(service, create_path):
    """The process dies right after the helpdesk created a ticket, before anything is recorded."""
    import re

    api = service.component("helpdesk").api
    real = api.request

    def request(method, path, **kwargs):
        response = real(method, path, **kwargs)
        if method == "POST" and re.search(create_path, path):
            api.request = real
            raise KeyboardInterrupt("killed")
        return response

    api.request = request


@pytest.fixture(params=["tinydb", "postgres"])
def store(request) -> dict[str, str]:
    """The [store] section: the embedded store, and PostgreSQL (a fresh database)."""
    if request.param == "tinydb":
        return {}
    return {"url": request.getfixturevalue("pg_url")}


@pytest.mark.parametrize("kind", sorted(SETUPS))
def test_outage_rate_limits_lost_answers_and_a_restart(tmp_path, kind, store):
    fake_class, create_path, note_path = SETUPS[kind]
    clock = Clock()
    with fake_class() as fake:
        service = make_service(tmp_path, kind, fake.url, clock, store=store)
        cases = [service.cases.open(received_at=clock(), rights=["access"], language="fr", channel="email",
                                    requester=Person(email=f"person{n}@example.fr", name=f"Person {n}"))
                 for n in range(6)]
        notes = {case.id: f"Brouillon prêt pour {case.ref}" for case in cases[:4]}

        fake.down()  # the helpdesk is unreachable for a while
        for case in cases[:4]:
            queue_note(service, case, f"draft:{case.id}", notes[case.id])
        for _ in range(4):
            run_outbox(service)
            clock.advance(45)
        assert fake.tickets == {}
        fake.up()
        fake.fail(3, 429, {"Retry-After": "30"})  # back, but rate limiting
        fake.lose(2, path=create_path, method="POST")  # created, answers lost
        fake.lose(1, path=note_path, when=lambda seen: b"Brouillon" in seen.body)  # a note posted, answer lost
        run_outbox(service)
        clock.advance(30)
        run_outbox(service)
        _crash_after_next_create(service, create_path)
        with pytest.raises(KeyboardInterrupt):
            for _ in range(10):
                run_outbox(service)
                clock.advance(60)
        service.close()

        service = make_service(tmp_path, kind, fake.url, clock, store=store)  # restarted on the same data
        for _ in range(60):
            run_outbox(service)
            if all(e["status"] == "done" for e in effects(service)):
                break
            clock.advance(60)

        assert all(e["status"] == "done" for e in effects(service)), [
            (e["kind"], e["status"], e["last_error"]) for e in effects(service) if e["status"] != "done"]
        for case in cases:
            tickets = _tickets_of(fake, kind, case)
            assert len(tickets) == 1, f"case {case.ref} has tickets {tickets}"
            current = service.cases.get(case.id)
            assert current.ticket["id"] == str(tickets[0])
            expected = [notes[case.id]] if case.id in notes else []
            assert _note_texts(fake, kind, tickets[0]) == expected
            assert not current.open_flags  # any "keeps failing" flag was cleared when it went through
        assert len(fake.tickets) == len(cases)
        # the paths under test were taken: tickets found again after lost answers and the crash, a note too
        assert sum(bool(e["result"].get("found_existing")) for e in effects(service, "helpdesk.open_ticket")) == 3
        assert [e["result"] for e in effects(service, "helpdesk.note")].count({"already_posted": True}) == 1
        service.close()
        fake.assert_clean()
