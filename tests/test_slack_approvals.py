"""Approval in Slack: only a signed, fresh, first-seen click by an allow-listed approver on the current draft."""
from __future__ import annotations

import json
import time

import pytest

from bot.models import Case, State
from tests.conftest import FakeClock
from tests.fakes import slack as fake_slack
from tests.fakes.slack import FakeSlack, signed_headers
from tests.slack_harness import AGENT, APPROVER, GUEST, SlackHarness, button, buttons, text_of
from tests.slack_harness import fake, harness  # noqa: F401 - fixtures

DRAFT = "3f" * 32
NEW_DRAFT = "9c" * 32


def _audit(harness: SlackHarness, case_id: str) -> list[dict]:
    return list(harness.service.audit.events(case_id))


@pytest.fixture
def drafted(harness: SlackHarness) -> Case:
    case = harness.open_case()
    harness.run_outbox()
    case = harness.draft(case, DRAFT)
    return case


def test_an_approver_approves_the_draft_shown(harness: SlackHarness, fake: FakeSlack, drafted: Case) -> None:
    message = harness.approval_message(drafted)
    assert message["thread_ts"] == harness.service.cases.get(drafted.id).slack["ts"] and message["reply_broadcast"]
    assert buttons(message) == ["dsar_approve", "dsar_request_changes", "dsar_refuse", "dsar_assign"]
    value = json.loads(button(message, "approve")["value"])
    assert value == {"c": drafted.id, "h": DRAFT, "v": harness.service.cases.get(drafted.id).version}
    started = time.monotonic()
    response = harness.click(APPROVER, "approve", message, wait=False)
    acked_in = time.monotonic() - started
    assert response.status_code == 200 and acked_in < 3.0
    assert harness.interactions.wait_idle(10)
    case = harness.service.cases.get(drafted.id)
    assert case.state == State.APPROVED
    assert case.approval["by"] == f"slack:{APPROVER}" and case.approval["draft_hash"] == DRAFT
    updated = fake.message(message["ts"])
    assert buttons(updated) == []
    assert f"Approved by <@{APPROVER}> on <!date^{int(harness.clock().timestamp())}^" in text_of(updated)
    event = [e for e in _audit(harness, drafted.id) if e["action"] == "approve"][-1]
    assert event["actor"] == f"slack:{APPROVER}" and event["detail"]["draft_hash"] == DRAFT


def _unchanged(harness: SlackHarness, case: Case, audit_before: int) -> None:
    current = harness.service.cases.get(case.id)
    assert current.state == State.DRAFTED and current.version == case.version and not current.approval
    assert len(_audit(harness, case.id)) == audit_before


@pytest.mark.parametrize("forgery", ["unsigned", "stale", "wrong_secret", "body_changed", "future"])
def test_unverifiable_clicks_change_nothing(harness: SlackHarness, fake: FakeSlack, drafted: Case,
                                            forgery: str) -> None:
    case = harness.service.cases.get(drafted.id)
    audit_before = len(_audit(harness, case.id))
    message = harness.approval_message(case)
    body = fake_slack.block_actions(fake, APPROVER, "dsar_approve", button(message, "approve")["value"], message["ts"])
    headers = {
        "unsigned": {"Content-Type": "application/x-www-form-urlencoded"},
        "stale": signed_headers(body, timestamp=int(time.time()) - 302),
        "future": signed_headers(body, timestamp=int(time.time()) + 302),
        "wrong_secret": signed_headers(body, secret="not-the-signing-secret"),
        "body_changed": signed_headers(body.replace("U0APPROVER", "U0APPROVEZ")),
    }[forgery]
    response = harness.post("/slack/interactions", body, headers=headers)
    assert response.status_code == 401
    _unchanged(harness, case, audit_before)
    assert fake.ephemerals == [] and buttons(fake.message(message["ts"]))


def test_a_replayed_click_is_refused(harness: SlackHarness, fake: FakeSlack, drafted: Case) -> None:
    case = harness.service.cases.get(drafted.id)
    message = harness.approval_message(case)
    body = fake_slack.block_actions(fake, AGENT, "dsar_approve", button(message, "approve")["value"], message["ts"])
    headers = signed_headers(body)
    assert harness.post("/slack/interactions", body, headers=headers).status_code == 200
    audit_after_first = len(_audit(harness, case.id))
    assert len(fake.ephemerals) == 1  # the non-approver was told once
    assert harness.post("/slack/interactions", body, headers=headers).status_code == 401
    assert len(fake.ephemerals) == 1 and len(_audit(harness, case.id)) == audit_after_first
    seen = harness.service.store.find("kv", {"kind": "slack_seen"})
    assert len(seen) == 1
    harness.interactions.guard.wall = lambda: time.time() + 3600  # an hour on: bolt refuses it anyway
    assert harness.interactions.guard.purge() == 1


def test_a_non_approver_is_told_and_nothing_changes(harness: SlackHarness, fake: FakeSlack, drafted: Case) -> None:
    case = harness.service.cases.get(drafted.id)
    audit_before = len(_audit(harness, case.id))
    message = harness.approval_message(case)
    for action in ("approve", "refuse", "request_changes"):
        assert harness.click(AGENT, action, message).status_code == 200
    current = harness.service.cases.get(case.id)
    assert current.state == State.DRAFTED and current.version == case.version and fake.views == []
    assert [e["user"] for e in fake.ephemerals] == [AGENT] * 3
    assert all("Only the approvers configured in dsarbot" in e["text"] for e in fake.ephemerals)
    refused = [e for e in _audit(harness, case.id)[audit_before:]]
    assert [(e["action"], e["actor"], e["detail"]["kind"], e["detail"]["outcome"]) for e in refused] == [
        ("slack_refused", f"slack:{AGENT}", kind, "not_approver") for kind in ("approve", "refuse", "request_changes")]


def test_a_click_on_an_old_draft_is_refused_with_an_explanation(harness: SlackHarness, fake: FakeSlack,
                                                                drafted: Case) -> None:
    old_message = harness.approval_message(drafted)
    harness.draft(drafted, NEW_DRAFT)  # an agent re-ran the gathering: a new draft, a new message
    new_message = harness.approval_message(drafted)
    assert new_message["ts"] != old_message["ts"]
    stale_value = json.dumps({"c": drafted.id, "h": DRAFT, "v": harness.service.cases.get(drafted.id).version})
    harness.click(APPROVER, "approve", old_message, value=stale_value)
    case = harness.service.cases.get(drafted.id)
    assert case.state == State.DRAFTED and not case.approval
    assert "The draft of" in fake.ephemerals[-1]["text"] and "changed since this message was posted" in \
        fake.ephemerals[-1]["text"]
    assert buttons(fake.message(old_message["ts"])) == []
    assert "replaced by a newer one" in text_of(fake.message(old_message["ts"]))
    assert _audit(harness, drafted.id)[-1]["detail"]["outcome"] == "stale_draft"
    harness.click(APPROVER, "approve", fake.message(new_message["ts"]))
    assert harness.service.cases.get(drafted.id).approval["draft_hash"] == NEW_DRAFT


def test_a_click_on_a_changed_case_refreshes_the_buttons(harness: SlackHarness, fake: FakeSlack, drafted: Case) -> None:
    message = harness.approval_message(drafted)
    old_value = button(message, "approve")["value"]
    harness.service.cases.flag(drafted.id, "note", "an agent looked")  # the case moves on
    harness.click(APPROVER, "approve", message, value=old_value)
    assert harness.service.cases.get(drafted.id).state == State.DRAFTED
    assert "changed since this message was shown" in fake.ephemerals[-1]["text"]
    refreshed = fake.message(message["ts"])
    assert json.loads(button(refreshed, "approve")["value"])["v"] == \
        harness.service.cases.get(drafted.id).version
    harness.click(APPROVER, "approve", refreshed)
    assert harness.service.cases.get(drafted.id).state == State.APPROVED


def test_request_changes_asks_why_then_flags_the_case(harness: SlackHarness, fake: FakeSlack, drafted: Case) -> None:
    message = harness.approval_message(drafted)
    approve = button(message, "approve")["value"]
    harness.click(APPROVER, "request_changes", message)
    assert len(fake.views) == 1 and fake.views[0]["title"]["text"] == "Request changes"
    assert json.loads(fake.views[0]["private_metadata"])["h"] == DRAFT
    empty = harness.submit_reason(APPROVER, "   ")
    assert empty.status_code == 200 and json.loads(empty.data)["response_action"] == "errors"
    assert not harness.service.cases.get(drafted.id).open_flags
    harness.submit_reason(APPROVER, "Add the Stripe records <!channel>")
    case = harness.service.cases.get(drafted.id)
    assert case.state == State.DRAFTED and [f.code for f in case.open_flags] == ["changes_requested"]
    assert case.decisions[-1]["action"] == "request_changes" and case.decisions[-1]["by"] == f"slack:{APPROVER}"
    assert case.decisions[-1]["reason"] == "Add the Stripe records <!channel>"
    shown = text_of(fake.message(message["ts"]))
    assert f"Changes requested by <@{APPROVER}>" in shown and "&lt;!channel&gt;" in shown
    assert buttons(fake.message(message["ts"])) == []
    event = _audit(harness, drafted.id)[-1]
    assert event["action"] == "request_changes"
    assert "reason_sha256" in event["detail"] and "reason" not in event["detail"]  # the audit keeps no free text
    harness.click(APPROVER, "approve", message, value=approve)  # a click from before: changes were requested
    assert harness.service.cases.get(drafted.id).state == State.DRAFTED
    assert f"Nothing was changed: Changes requested by <@{APPROVER}>" in fake.ephemerals[-1]["text"]


def test_refuse_with_a_reason(harness: SlackHarness, fake: FakeSlack, drafted: Case) -> None:
    message = harness.approval_message(drafted)
    harness.click(APPROVER, "refuse", message)
    harness.click(AGENT, "refuse", message)  # not an approver: no modal for them
    assert len(fake.views) == 1
    harness.submit_reason(AGENT, "I am not an approver", dict(fake.views[0]))
    assert harness.service.cases.get(drafted.id).state == State.DRAFTED
    harness.submit_reason(APPROVER, "Manifestly excessive: fifth identical request this month")
    case = harness.service.cases.get(drafted.id)
    assert case.state == State.REFUSED
    assert case.decisions[-1] == {"action": "refuse", "by": f"slack:{APPROVER}", "at": harness.clock().isoformat(),
                                  "reason": "Manifestly excessive: fifth identical request this month"}
    assert f"Refused by <@{APPROVER}>" in text_of(fake.message(message["ts"]))


def test_assign_to_me(harness: SlackHarness, fake: FakeSlack) -> None:
    case = harness.open_case()
    harness.run_outbox()
    root = fake.top_level()[0]
    harness.click(GUEST, "assign", root)
    assert harness.service.cases.get(case.id).assignee == ""
    assert "Only members of this workspace" in fake.ephemerals[-1]["text"]
    harness.click(AGENT, "assign", root)
    assert harness.service.cases.get(case.id).assignee == f"slack:{AGENT}"
    assert f"<@{AGENT}>" in text_of(fake.message(root["ts"])) and buttons(fake.message(root["ts"])) == []
    assert _audit(harness, case.id)[-1]["action"] == "assign"


def test_slash_command(harness: SlackHarness, clock: FakeClock) -> None:
    soon = harness.open_case()
    clock.advance(days=20)
    later = harness.open_case()
    clock.advance(days=6)  # now 21 Dec: `soon` (25 Nov) is due on 28 Dec, `later` (15 Dec) on 15 Jan
    answer = harness.command(AGENT, soon.ref.lower())
    assert answer["response_type"] == "ephemeral"
    shown = json.dumps(answer["blocks"])
    assert soon.ref in shown and "Received" in shown and "7 days left" in shown
    week = harness.command(AGENT, "week")
    assert soon.ref in json.dumps(week["blocks"]) and later.ref not in json.dumps(week["blocks"])
    assert harness.command(AGENT, "")["blocks"] == week["blocks"]
    assert "No case with reference DSR-991231-ABCDE" in harness.command(AGENT, "DSR-991231-ABCDE")["text"]
    assert "Usage" in harness.command(AGENT, "<!channel>")["text"]
    assert "Only members" in harness.command(GUEST, soon.ref)["text"]
    assert "Only members" in harness.command(AGENT, soon.ref, team="T0ELSEWHERE")["text"]
    assert [e["action"] for e in _audit(harness, soon.id)][-1] == "slack_lookup"


def test_slack_failing_during_a_click_changes_nothing(harness: SlackHarness, fake: FakeSlack, drafted: Case,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    fake.api.fail(1, 500, path="views.open", body={"ok": False, "error": "internal_error"})
    harness.click(APPROVER, "refuse", harness.approval_message(drafted))
    assert fake.views == [] and harness.service.cases.get(drafted.id).state == State.DRAFTED
    assert "slack on_button stopped: slack views_open: internal_error" in caplog.text
