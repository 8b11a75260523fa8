"""The outbox: stored before running, at least once, keyed, backing off, flagging, surviving restarts."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.config import load_config
from bot.models import Person
from bot.outbox import Effect, PermanentFailure, RetryLater, backoff_seconds
from bot.service import build_service
from tests.helpdesk_support import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc))


@pytest.fixture
def service(tmp_path, clock):
    svc = build_service(load_config(None, environ={}, overrides={"service": {"data_dir": str(tmp_path)}}),
                        now=clock, integrations=[])
    yield svc
    svc.close()


def _case(service, clock):
    return service.cases.open(received_at=clock(), rights=["access"], language="en", channel="email",
                              requester=Person(email="sam@example.org"))


def _doc(service, key):
    return service.store.get("outbox", key)


def test_an_effect_is_stored_once_per_key_before_it_runs(service, clock):
    ran = []
    service.outbox.register("test.effect", lambda effect: ran.append(effect["key"]) or {"ok": 1})
    assert service.outbox.enqueue(Effect("test.effect", key="k1", case_id="c"))
    assert not service.outbox.enqueue(Effect("test.effect", key="k1", case_id="c"))  # same key: not twice
    assert _doc(service, "k1")["status"] == "pending" and ran == []
    service.outbox.run_due()
    service.outbox.run_due()
    assert ran == ["k1"]
    assert _doc(service, "k1")["status"] == "done" and _doc(service, "k1")["result"] == {"ok": 1}


def test_the_attempt_is_counted_before_the_handler_runs(service, clock):
    seen = []

    def handler(effect):
        seen.append((effect["attempts"], _doc(service, effect["key"])["attempts"]))
        if len(seen) == 1:
            raise RetryLater("down")

    service.outbox.register("test.effect", handler)
    service.outbox.enqueue(Effect("test.effect", key="k"))
    service.outbox.run_due()
    clock.advance(backoff_seconds(1))
    service.outbox.run_due()
    assert seen == [(1, 1), (2, 2)]  # the handler knows an earlier attempt may have done the work


def test_backoff_grows_and_retry_after_is_honoured(service, clock):
    outcomes = iter([RetryLater("500"), RetryLater("500"), RetryLater("429", after_seconds=120), None])

    def handler(effect):
        outcome = next(outcomes)
        if outcome:
            raise outcome

    service.outbox.register("test.effect", handler)
    service.outbox.enqueue(Effect("test.effect", key="k"))
    waits = []
    for _ in range(3):
        start = clock()
        service.outbox.run_due()
        due = datetime.fromisoformat(_doc(service, "k")["due_at"])
        waits.append((due - start).total_seconds())
        clock.value = due
    assert waits == [5.0, 10.0, 120.0]
    clock.advance(-1)
    assert service.outbox.run_due() == 0  # not before it is due
    clock.advance(1)
    service.outbox.run_due()
    assert _doc(service, "k")["status"] == "done"


def test_a_keep_trying_effect_flags_the_case_keeps_trying_and_clears_the_flag(service, clock):
    case = _case(service, clock)
    service.outbox.max_attempts = 3
    calls = []

    def handler(effect):
        calls.append(effect["attempts"])
        if len(calls) < 5:
            raise RetryLater("helpdesk down")

    service.outbox.register("test.effect", handler, keep_trying=True)
    service.outbox.enqueue(Effect("test.effect", key="k", case_id=case.id))
    for _ in range(5):
        service.outbox.run_due()
        doc = _doc(service, "k")
        if doc["status"] == "pending":
            clock.value = datetime.fromisoformat(doc["due_at"])
    assert calls == [1, 2, 3, 4, 5]
    flags = service.cases.get(case.id).flags
    assert [(f.code, f.resolved) for f in flags] == [("effect_failed:test.effect", True)]  # flagged once, then cleared
    assert _doc(service, "k")["status"] == "done"


def test_a_permanent_failure_stops_and_flags(service, clock):
    case = _case(service, clock)

    def handler(effect):
        raise PermanentFailure("the helpdesk refuses this field")

    service.outbox.register("test.effect", handler)
    service.outbox.enqueue(Effect("test.effect", key="k", case_id=case.id))
    service.outbox.run_due()
    assert _doc(service, "k")["status"] == "failed"
    assert [f.code for f in service.cases.get(case.id).open_flags] == ["effect_failed:test.effect"]
    clock.advance(10_000)
    assert service.outbox.run_due() == 0


def test_an_effect_interrupted_by_a_crash_runs_again_after_a_restart(tmp_path, clock):
    config = load_config(None, environ={}, overrides={"service": {"data_dir": str(tmp_path)}})
    first = build_service(config, now=clock, integrations=[])

    def crash(effect):
        raise KeyboardInterrupt("the process dies mid-effect")

    first.outbox.register("test.effect", crash)
    first.outbox.enqueue(Effect("test.effect", key="k"))
    with pytest.raises(KeyboardInterrupt):
        first.outbox.run_due()
    first.close()

    second = build_service(config, now=clock, integrations=[])
    ran = []
    second.outbox.register("test.effect", lambda effect: ran.append(effect["attempts"]))
    # the lease names this process (the same pid: an earlier life of it), so the restart releases it
    # and resumes at once instead of after lease_seconds (tests/faults/test_recovery.py: other pids)
    assert second.outbox.run_due() == 1
    assert ran == [2]  # the crashed attempt counted: the handler knows to look before acting
    second.close()


def test_waiting_for_another_effect_is_not_a_failure(service, clock):
    case = _case(service, clock)
    service.outbox.max_attempts = 2
    calls = []

    def handler(effect):
        calls.append(effect["attempts"])
        if len(calls) < 5:
            raise RetryLater("the ticket is not opened yet", 5, counts=False)

    service.outbox.register("test.effect", handler)
    service.outbox.enqueue(Effect("test.effect", key="k", case_id=case.id))
    for _ in range(5):
        service.outbox.run_due()
        clock.advance(5)
    assert calls == [1, 1, 1, 1, 1] and _doc(service, "k")["status"] == "done"
    assert service.cases.get(case.id).flags == []


def test_by_default_an_effect_gives_up_after_max_attempts(service, clock):
    case = _case(service, clock)
    service.outbox.max_attempts = 3
    calls = []

    def handler(effect):
        calls.append(effect["attempts"])
        raise RetryLater("down")

    service.outbox.register("test.effect", handler)
    service.outbox.enqueue(Effect("test.effect", key="k", case_id=case.id))
    for _ in range(6):
        service.outbox.run_due()
        clock.advance(3600)
    assert calls == [1, 2, 3] and _doc(service, "k")["status"] == "failed"
    assert [f.code for f in service.cases.get(case.id).open_flags] == ["effect_failed:test.effect"]


def test_one_tick_works_through_a_backlog_larger_than_a_batch(service, clock):
    ran = []
    service.outbox.register("test.effect", lambda effect: ran.append(effect["key"]))
    for n in range(120):
        service.outbox.enqueue(Effect("test.effect", key=f"k{n:03}", case_id="c"))
    service.outbox.enqueue(Effect("test.effect", key="later", case_id="c", delay_seconds=60))
    assert service.outbox.run_backlog(limit=50) == 120  # three batches in one tick, not one
    assert sorted(ran) == [f"k{n:03}" for n in range(120)]
    assert service.outbox.run_backlog(limit=50) == 0  # what is not due yet waits


def test_an_effect_whose_lease_ran_out_in_a_slow_batch_is_left_to_the_worker_that_took_it(service, clock):
    from bot.outbox import Outbox

    other = Outbox(service.store, clock, lease_seconds=120)
    other.worker = "other-host:1"
    ran: list[tuple[str, str]] = []

    def slow(effect):
        ran.append(("here", effect["key"]))
        clock.advance(seconds=70)  # each takes more than half the lease
        if effect["key"] == "b":
            other.run_due()  # "c" waited past its lease: another instance takes it

    service.outbox.register("test.effect", slow)
    other.register("test.effect", lambda effect: ran.append(("other", effect["key"])))
    for key in ("a", "b", "c"):
        service.outbox.enqueue(Effect("test.effect", key=key, case_id="c"))
    service.outbox.lease_seconds = 120
    service.outbox.run_due()
    assert ran == [("here", "a"), ("here", "b"), ("other", "c")]  # "b" was renewed in time; each once
    assert all(_doc(service, k)["status"] == "done" for k in "abc")
    assert [_doc(service, k)["attempts"] for k in "abc"] == [1, 1, 2]  # "c" was claimed twice, run once


def test_a_slow_batch_keeps_the_effects_nobody_else_took(service, clock):
    ran = []

    def slow(effect):
        ran.append(effect["key"])
        clock.advance(seconds=70)  # past half the lease: the next one's lease is renewed, not lost

    service.outbox.register("test.effect", slow)
    for key in ("a", "b", "c"):
        service.outbox.enqueue(Effect("test.effect", key=key, case_id="c"))
    service.outbox.lease_seconds = 120
    service.outbox.run_due()
    assert ran == ["a", "b", "c"]
