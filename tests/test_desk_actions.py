"""Desk actions: each one goes through CaseBook as `agent:<login>`, is audited, and loses a race cleanly."""
from __future__ import annotations

import hashlib
import re

import pytest

from bot.cases import allowed_actions
from bot.models import State
from tests.conftest_desk import log_in, page_token


def act(client, seeded, name: str, action: str, version: int | None = None, **data):
    case = seeded.case(name)
    token = page_token(client, f"/desk/cases/{case.ref}")
    form = {"csrf_token": token, "version": case.version if version is None else version, **data}
    return client.post(f"/desk/cases/{case.ref}/actions/{action}", data=form)


def flashes(client, seeded, name: str) -> str:
    html = client.get(f"/desk/cases/{seeded.refs[name]}").get_data(as_text=True)
    return " ".join(re.findall(r'<p class="flash [a-z-]+" role="status">(.*?)</p>', html, flags=re.S))


def last_event(seeded, name: str) -> dict:
    return list(seeded.service.audit.events(seeded.case(name).id))[-1]


def offered(client, seeded, name: str) -> set[str]:
    html = client.get(f"/desk/cases/{seeded.refs[name]}").get_data(as_text=True)
    return set(re.findall(r'data-action="([a-z_]+)"', html))


def test_approve_binds_the_approval_to_the_draft_shown(agent, seeded):
    case = seeded.case("drafted")
    response = act(agent, seeded, "drafted", "approve", draft_hash=case.draft["hash"])
    assert response.status_code == 303 and response.headers["Location"] == f"/desk/cases/{case.ref}"
    after = seeded.case("drafted")
    assert after.state == State.APPROVED
    assert after.approval["by"] == "agent:alice" and after.approval["draft_hash"] == case.draft["hash"]
    event = last_event(seeded, "drafted")
    assert (event["action"], event["actor"], event["before"], event["after"]) == \
        ("approve", "agent:alice", "drafted", "approved")
    assert event["detail"]["draft_hash"] == case.draft["hash"]
    assert "draft approved" in flashes(agent, seeded, "drafted")


def redraft(seeded) -> str:
    """The pipeline wrote a new draft after the page was shown."""
    new_hash = hashlib.sha256(b"draft-2").hexdigest()
    seeded.service.cases.record(seeded.case("drafted").id, "redraft", "system",
                                lambda c: c.draft.update({"hash": new_hash}))
    return new_hash


def test_approve_with_a_stale_draft_hash_is_refused(agent, seeded):
    shown = seeded.case("drafted").draft["hash"]
    redraft(seeded)
    response = act(agent, seeded, "drafted", "approve", draft_hash=shown)  # current version, old hash
    assert response.status_code == 303
    case = seeded.case("drafted")
    assert case.state == State.DRAFTED and not case.approval
    assert not [e for e in seeded.service.audit.events(case.id) if e["action"] == "approve"]
    text = flashes(agent, seeded, "drafted")
    assert case.ref in text and "Approve" in text and "Draft ready" in text
    assert "the draft changed since it was shown" in text


def test_approve_from_a_page_older_than_the_draft_is_refused(agent, seeded):
    shown = seeded.case("drafted")
    new_hash = redraft(seeded)
    response = act(agent, seeded, "drafted", "approve", version=shown.version, draft_hash=new_hash)
    assert response.status_code == 303
    assert seeded.case("drafted").state == State.DRAFTED
    assert "the case changed meanwhile" in flashes(agent, seeded, "drafted")


def test_two_agents_approving_at_once_make_one_approval(app, agent, seeded):
    bob = app.test_client()
    log_in(bob, "bob")
    case = seeded.case("drafted")
    bob_token = page_token(bob, f"/desk/cases/{case.ref}")  # both pages show the same version
    act(agent, seeded, "drafted", "approve", draft_hash=case.draft["hash"])
    # bob's click lands while his page still offers approval: CaseBook's version check stops it.
    seeded.service.cases.transition(case.id, "revoke_approval", "agent:alice")
    response = bob.post(f"/desk/cases/{case.ref}/actions/approve",
                        data={"csrf_token": bob_token, "version": case.version, "draft_hash": case.draft["hash"]})
    assert response.status_code == 303
    approvals = [e for e in seeded.service.audit.events(case.id) if e["action"] == "approve"]
    assert [e["actor"] for e in approvals] == ["agent:alice"]
    assert "the case changed meanwhile" in flashes(bob, seeded, "drafted")


def test_request_changes_records_the_reason_and_blocks_approval(agent, seeded):
    case = seeded.case("drafted")
    assert act(agent, seeded, "drafted", "request_changes", reason="").status_code == 303
    assert not seeded.case("drafted").open_flags  # a reason is required
    act(agent, seeded, "drafted", "request_changes", reason="Remove the newsletter section")
    after = seeded.case("drafted")
    assert [f.code for f in after.open_flags] == ["changes_requested"]
    assert after.decisions[-1]["action"] == "request_changes"
    assert after.decisions[-1]["reason"] == "Remove the newsletter section"
    assert after.decisions[-1]["by"] == "agent:alice"
    event = last_event(seeded, "drafted")
    assert event["action"] == "request_changes" and event["actor"] == "agent:alice"
    assert event["detail"]["reason_sha256"] == hashlib.sha256(b"Remove the newsletter section").hexdigest()
    assert "newsletter" not in str(event)  # free text stays on the case, the audit keeps its hash
    act(agent, seeded, "drafted", "approve", draft_hash=case.draft["hash"])
    assert seeded.case("drafted").state == State.DRAFTED
    html = agent.get(f"/desk/cases/{case.ref}").get_data(as_text=True)
    assert "Changes were requested" in html and 'data-action="request_changes"' not in html
    assert 'data-action="approve" disabled' in html


def test_extend_with_reasons_before_the_last_day(agent, seeded):
    html = agent.get(f"/desk/cases/{seeded.refs['drafted']}").get_data(as_text=True)
    assert 'data-action="extend"' in html and "Allowed until 2025-05-24" in html and "2025-07-24" in html
    act(agent, seeded, "drafted", "extend", reason="Records are spread over three systems")
    case = seeded.case("drafted")
    assert case.extension["by"] == "agent:alice" and case.effective_due.isoformat() == "2025-07-24"
    assert case.decisions[-1]["reason"] == "Records are spread over three systems"
    assert last_event(seeded, "drafted")["action"] == "extend"
    assert 'data-action="extend"' not in agent.get(f"/desk/cases/{case.ref}").get_data(as_text=True)


def test_extend_needs_a_reason(agent, seeded):
    act(agent, seeded, "drafted", "extend", reason="   ")
    assert seeded.case("drafted").extension is None
    assert "needs a reason" in flashes(agent, seeded, "drafted")


def test_extend_is_gone_after_the_last_day_and_refused_if_posted(agent, seeded):
    ref = seeded.refs["overdue"]  # received 7 April: the extension had to be notified by 7 May
    html = agent.get(f"/desk/cases/{ref}").get_data(as_text=True)
    assert 'data-action="extend"' not in html and "too late" in html
    act(agent, seeded, "overdue", "extend", reason="late")
    assert seeded.case("overdue").extension is None
    assert "not available" in flashes(agent, seeded, "overdue")


def test_extend_disappears_when_the_clock_passes_the_last_day(agent, seeded):
    assert "extend" in offered(agent, seeded, "drafted")
    seeded.clock.advance(days=10)  # 24 May was the last day; now 24 May 08:00 UTC = still the 24th in Paris
    log_in(agent)  # the session did not survive ten idle days
    assert "extend" in offered(agent, seeded, "drafted")
    seeded.clock.advance(hours=16)  # 25 May in Paris
    log_in(agent)
    assert "extend" not in offered(agent, seeded, "drafted")
    assert "approve" in offered(agent, seeded, "drafted")


def test_refuse_needs_reasons_and_keeps_them_on_the_case(agent, seeded):
    act(agent, seeded, "due_soon", "refuse", reason="")
    assert seeded.case("due_soon").state == State.RECEIVED
    act(agent, seeded, "due_soon", "refuse", reason="Fifth identical request this month (Art. 12(5))")
    case = seeded.case("due_soon")
    assert case.state == State.REFUSED
    assert case.decisions[-1] == {"action": "refuse", "by": "agent:alice", "at": case.decisions[-1]["at"],
                                  "reason": "Fifth identical request this month (Art. 12(5))"}
    event = last_event(seeded, "due_soon")
    assert (event["action"], event["actor"], event["after"]) == ("refuse", "agent:alice", "refused")
    assert "reason_sha256" in event["detail"]


def test_dismiss_reopen_and_close(agent, seeded):
    act(agent, seeded, "hostile", "dismiss")
    assert seeded.case("hostile").state == State.DISMISSED
    assert last_event(seeded, "hostile")["action"] == "dismiss"
    act(agent, seeded, "hostile", "reopen")
    assert seeded.case("hostile").state == State.RECEIVED
    assert last_event(seeded, "hostile")["actor"] == "agent:alice"
    act(agent, seeded, "dismissed", "close")
    assert seeded.case("dismissed").state == State.CLOSED
    assert last_event(seeded, "dismissed")["action"] == "close"
    assert offered(agent, seeded, "dismissed") == set()  # a closed case offers nothing


def test_assign_to_me(agent, seeded):
    act(agent, seeded, "overdue", "assign")
    assert seeded.case("overdue").assignee == "alice"
    event = last_event(seeded, "overdue")
    assert (event["action"], event["actor"]) == ("assign", "agent:alice")
    assert "assign" not in offered(agent, seeded, "overdue")
    assert "alice" in agent.get("/desk/").get_data(as_text=True)


def test_resolve_flag(agent, seeded):
    assert [f.code for f in seeded.case("due_soon").open_flags] == ["new_message"]
    act(agent, seeded, "due_soon", "resolve_flag", code="new_message")
    assert seeded.case("due_soon").open_flags == []
    event = last_event(seeded, "due_soon")
    assert (event["action"], event["actor"], event["detail"]["code"]) == ("resolve_flag", "agent:alice", "new_message")
    act(agent, seeded, "due_soon", "resolve_flag", code="no_such_flag")
    assert "not available" in flashes(agent, seeded, "due_soon")


def test_retry_gathering_after_a_failure_queues_the_pipeline(agent, seeded):
    act(agent, seeded, "failed", "start_gathering")
    case = seeded.case("failed")
    assert case.state == State.GATHERING
    assert last_event(seeded, "failed")["actor"] == "agent:alice"
    queued = seeded.service.store.find("outbox", {"case_id": case.id, "kind": "pipeline.prepare"})
    assert any(e["key"] == f"{case.id}:prepare:{case.version}" for e in queued)


def test_an_action_the_state_does_not_allow_is_refused(agent, seeded):
    before = seeded.case("overdue")
    act(agent, seeded, "overdue", "close")
    assert seeded.case("overdue").state == before.state and seeded.case("overdue").version == before.version
    assert "not available in state" in flashes(agent, seeded, "overdue")


def test_unknown_action_or_case_is_404(agent, seeded):
    assert act(agent, seeded, "overdue", "delete_everything").status_code == 404
    token = page_token(agent)
    assert agent.post("/desk/cases/DSR-000000-XXXXX/actions/close", data={"csrf_token": token, "version": 1}) \
        .status_code == 404
    assert act(agent, seeded, "overdue", "assign", version="soon").status_code == 400


@pytest.mark.parametrize("name", ["overdue", "due_soon", "drafted", "failed", "hostile", "dismissed"])
def test_pages_offer_only_what_the_state_allows(agent, seeded, name):
    case = seeded.case(name)
    allowed = set(allowed_actions(case.state))
    transitions = {"approve", "refuse", "dismiss", "reopen", "close", "start_gathering"}
    for action in offered(agent, seeded, name) & transitions:
        assert action in allowed, (name, action)
