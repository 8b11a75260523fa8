"""Case lifecycle: allowed transitions, clear errors, audit events and outbox effects."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.cases import TRANSITIONS, IllegalTransition, allowed_actions
from bot.models import Person, State
from bot.outbox import Effect, RetryLater
from bot.request_register import to_csv


def _open(service, **kw):  # noqa: ANN001, ANN003
    return service.cases.open(received_at=kw.pop("received_at", service.now()), rights=["access"], language="fr",
                              channel="email", requester=Person(email="a@example.fr"), **kw)


def test_open_sets_the_legal_dates(service) -> None:  # noqa: ANN001
    case = _open(service)
    assert case.state == State.RECEIVED
    assert (case.due, case.extended_due) == (date(2026, 12, 28), date(2027, 2, 25))
    assert service.cases.by_ref(case.ref).id == case.id
    assert service.audit.verify().ok


def test_happy_path_and_audit(service) -> None:  # noqa: ANN001
    case = _open(service)
    book = service.cases
    book.transition(case.id, "request_identity", "system")
    book.transition(case.id, "verify", "requester", mutate=lambda c: c.verification.update(verified=True))
    book.transition(case.id, "start_gathering", "system")
    book.transition(case.id, "gathered", "system", mutate=lambda c: c.draft.update(hash="h1"))
    book.transition(case.id, "approve", "agent:ana", detail={"draft_hash": "h1"})
    done = book.transition(case.id, "deliver", "system")
    assert done.state == State.DELIVERED and done.answered_at == service.now()
    assert done.approval["by"] == "agent:ana"
    actions = [e["action"] for e in service.audit.events(case.id)]
    assert actions == ["open", "request_identity", "verify", "start_gathering", "gathered", "approve", "deliver"]
    assert all(e["case"] == case.id for e in service.audit.events(case.id))


def test_illegal_transition_names_case_state_and_action(service) -> None:  # noqa: ANN001
    case = _open(service)
    with pytest.raises(IllegalTransition) as err:
        service.cases.transition(case.id, "deliver", "system")
    message = str(err.value)
    assert case.ref in message and "'received'" in message and "'deliver'" in message
    assert service.cases.get(case.id).state == State.RECEIVED  # nothing written
    assert [e["action"] for e in service.audit.events(case.id)] == ["open"]


def test_every_state_is_reachable_and_closed_is_final() -> None:
    targets = {target for _, target in TRANSITIONS.values()}
    assert targets | {State.RECEIVED} == set(State)
    assert allowed_actions(State.CLOSED) == []


def test_approval_is_bound_to_the_draft_shown(service) -> None:  # noqa: ANN001
    case = _open(service)
    book = service.cases
    book.transition(case.id, "verify", "requester", mutate=lambda c: c.verification.update(verified=True))
    book.transition(case.id, "start_gathering", "system")
    book.transition(case.id, "gathered", "system", mutate=lambda c: c.draft.update(hash="new"))
    with pytest.raises(IllegalTransition, match="draft changed"):
        book.transition(case.id, "approve", "agent:ana", detail={"draft_hash": "old"})
    book.flag(case.id, "changes_requested", "rewrite section 2")
    with pytest.raises(IllegalTransition, match="changes were requested"):
        book.transition(case.id, "approve", "agent:ana", detail={"draft_hash": "new"})


def test_frozen_or_unverified_cases_never_deliver(service) -> None:  # noqa: ANN001
    case = _open(service)
    book = service.cases
    book.transition(case.id, "verify", "agent:ana")  # verified state but no proof recorded
    book.transition(case.id, "start_gathering", "system")
    book.transition(case.id, "gathered", "system", mutate=lambda c: c.draft.update(hash="h"))
    with pytest.raises(IllegalTransition, match="not verified"):
        book.transition(case.id, "approve", "agent:ana", detail={"draft_hash": "h"})
    book.record(case.id, "freeze", "requester", lambda c: setattr(c, "frozen", True))
    with pytest.raises(IllegalTransition, match="frozen"):
        book.transition(case.id, "approve", "agent:ana", detail={"draft_hash": "h"})


def test_stale_version_is_refused(service) -> None:  # noqa: ANN001
    case = _open(service)
    service.cases.flag(case.id, "x", "something")
    with pytest.raises(IllegalTransition, match="changed meanwhile"):
        service.cases.transition(case.id, "dismiss", "agent:ana", expected_version=case.version)


def test_extension_only_with_reasons_and_within_the_first_month(service, clock) -> None:  # noqa: ANN001
    case = _open(service)
    with pytest.raises(ValueError, match="reasons"):
        service.cases.extend(case.id, "agent:ana", "  ")
    late = _open(service, received_at=service.now() - timedelta(days=40))
    with pytest.raises(IllegalTransition, match="must be notified by"):
        service.cases.extend(late.id, "agent:ana", "many systems")
    fresh = _open(service)
    extended = service.cases.extend(fresh.id, "agent:ana", "data spread over 9 systems")
    assert extended.effective_due == extended.extended_due
    with pytest.raises(IllegalTransition, match="already extended"):
        service.cases.extend(fresh.id, "agent:ana", "again")


def test_planners_queue_effects_once_in_the_same_transaction(service) -> None:  # noqa: ANN001
    seen = []

    def planner(change):  # noqa: ANN001, ANN202
        yield Effect("test.notify", key=f"{change.case.id}:{change.action}", case_id=change.case.id)

    service.cases.add_planner(planner)
    service.outbox.register("test.notify", lambda e: seen.append(e["key"]) or {"ok": True})
    case = _open(service)
    service.cases.transition(case.id, "request_identity", "system")
    mine = {e["key"] for e in service.outbox.pending() if e["kind"] == "test.notify"}
    assert mine == {f"{case.id}:open", f"{case.id}:request_identity"}
    service.outbox.run_due()
    assert sorted(seen) == sorted([f"{case.id}:open", f"{case.id}:request_identity"])
    service.outbox.run_due()
    assert len(seen) == 2  # done effects never run again


def test_failing_effect_backs_off_then_flags_the_case(service, clock) -> None:  # noqa: ANN001
    calls = []

    def flaky(effect):  # noqa: ANN001, ANN202
        calls.append(clock())
        raise RetryLater("helpdesk answered 503")

    service.outbox.register("test.flaky", flaky)
    case = _open(service)
    service.outbox.enqueue(Effect("test.flaky", key="k1", case_id=case.id))
    from datetime import datetime

    for _ in range(20):
        service.outbox.run_due()
        clock.current = max(clock.current, datetime.fromisoformat(service.store.get("outbox", "k1")["due_at"]))
    assert len(calls) == service.outbox.max_attempts
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert gaps == sorted(gaps) and gaps[0] < gaps[-1]  # exponential backoff
    flags = [f.code for f in service.cases.get(case.id).open_flags]
    assert flags == ["effect_failed:test.flaky"]


def test_register_of_requests(service, clock) -> None:  # noqa: ANN001
    on_time = _open(service)
    book = service.cases
    book.transition(on_time.id, "dismiss", "agent:ana", detail={"reason": "newsletter question"})
    open_case = _open(service)
    text = to_csv(book.all(), book.jurisdiction)
    lines = text.splitlines()
    assert lines[0].startswith("reference,received,rights,channel,due,extended")
    row = next(line for line in lines if on_time.ref in line)
    assert ",not_a_request,yes" in row and "dismiss by agent:ana" in row
    assert any(open_case.ref in line and line.endswith(",open,") for line in lines)


def test_pending_audit_is_written_after_a_crash(service) -> None:  # noqa: ANN001
    case = _open(service)
    service.store.put("audit_pending", "p1", {"id": "p1", "actor": "system", "action": "verify",
                                               "at": service.now().isoformat(), "case_id": case.id,
                                               "case_ref": case.ref, "before": "received", "after": "verified",
                                               "detail": {}})
    assert service.cases.flush_pending_audit() == 1
    assert service.cases.flush_pending_audit() == 0
    assert [e["action"] for e in service.audit.events(case.id)] == ["open", "verify"]
    assert service.audit.verify().ok


def test_request_changes_is_bound_to_the_draft_shown_and_blocks_approval(service) -> None:  # noqa: ANN001
    case = _open(service)
    book = service.cases
    with pytest.raises(IllegalTransition, match="no draft waiting"):
        book.request_changes(case.id, "agent:ana", "too early")
    book.transition(case.id, "verify", "requester", mutate=lambda c: c.verification.update(verified=True))
    book.transition(case.id, "start_gathering", "system")
    book.transition(case.id, "gathered", "system", mutate=lambda c: c.draft.update(hash="new"))
    with pytest.raises(ValueError, match="needs reasons"):
        book.request_changes(case.id, "agent:ana", "  ")
    with pytest.raises(IllegalTransition, match="draft changed"):
        book.request_changes(case.id, "agent:ana", "rewrite section 2", draft_hash="old")
    after = book.request_changes(case.id, "agent:ana", "rewrite section 2", draft_hash="new")
    assert after.state == State.DRAFTED and [f.code for f in after.open_flags] == ["changes_requested"]
    assert after.decisions[-1]["reason"] == "rewrite section 2"
    event = list(service.audit.events(case.id))[-1]
    assert event["action"] == "request_changes" and "reason" not in event["detail"] and event["detail"]["reason_sha256"]
    with pytest.raises(IllegalTransition, match="changes were requested"):
        book.transition(case.id, "approve", "agent:ana", detail={"draft_hash": "new"})


def test_a_reference_already_taken_is_never_handed_to_a_second_case(service, monkeypatch) -> None:  # noqa: ANN001
    refs = iter(["DSR-261125-AAAAA", "DSR-261125-AAAAA", "DSR-261125-BBBBB"])
    monkeypatch.setattr("bot.cases.new_case_ref", lambda received: next(refs))
    first, second = _open(service), _open(service)
    assert (first.ref, second.ref) == ("DSR-261125-AAAAA", "DSR-261125-BBBBB")
    assert service.cases.by_ref(first.ref).id == first.id and service.cases.by_ref(second.ref).id == second.id
    assert service.cases.get(second.id).ref == second.ref
    assert [e["ref"] for e in service.audit.events(second.id)] == [second.ref]


def test_the_audit_event_follows_the_commit_of_the_outermost_transaction(service) -> None:  # noqa: ANN001
    case = _open(service)
    with pytest.raises(ZeroDivisionError):
        with service.store.transaction():
            service.cases.transition(case.id, "verify", "system")
            assert [e["action"] for e in service.audit.events(case.id)] == ["open"]  # not before the commit
            1 / 0
    assert service.cases.get(case.id).state == State.RECEIVED
    assert [e["action"] for e in service.audit.events(case.id)] == ["open"]  # never for a rolled-back change
    assert service.store.find("audit_pending") == []
    with service.store.transaction():
        service.cases.transition(case.id, "verify", "system")
    assert [e["action"] for e in service.audit.events(case.id)] == ["open", "verify"]
