"""The approval message (Approve, Request changes, Refuse) and the modal that asks for a reason.

The message is rendered from the case alone (`approval_status`), so re-rendering it after any
change is safe: buttons bound to the case's current version, or who decided and when.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.models import Case, State
from integrations.slack_blocks import Binding, Mrkdwn, Render, actor_label, button, context, due_text, link, \
    rights_text, section_text, slack_time, state_text

APPROVAL_ACTIONS = ("approve", "request_changes", "refuse")
REASON_CALLBACK = "dsar_reason"


@dataclass(frozen=True)
class ApprovalStatus:
    kind: str  # pending | approved | refused | changes_requested | superseded | no_longer
    actor: str = ""
    at: datetime | None = None
    reason: str = ""


def approval_status(case: Case, shown_hash: str) -> ApprovalStatus:
    """What became of the draft `shown_hash`: the approval message is rendered from this alone."""
    def last(action: str) -> dict[str, Any]:
        return next((d for d in reversed(case.decisions) if d.get("action") == action), {})

    def when(entry: dict[str, Any]) -> datetime | None:
        return datetime.fromisoformat(entry["at"]) if entry.get("at") else None

    if case.draft.get("hash") != shown_hash:
        return ApprovalStatus("superseded")
    if case.approval.get("draft_hash") == shown_hash and case.state in (State.APPROVED, State.DELIVERED, State.CLOSED):
        return ApprovalStatus("approved", case.approval.get("by", ""), when(case.approval))
    if case.state == State.REFUSED:
        entry = last("refuse")
        return ApprovalStatus("refused", entry.get("by", ""), when(entry), entry.get("reason", ""))
    if any(f.code == "changes_requested" for f in case.open_flags):
        entry = last("request_changes")
        return ApprovalStatus("changes_requested", entry.get("by", ""), when(entry), entry.get("reason", ""))
    if case.state == State.DRAFTED:
        return ApprovalStatus("pending")
    return ApprovalStatus("no_longer")


def approval_message(case: Case, shown_hash: str, r: Render) -> tuple[str, list[dict[str, Any]]]:
    """The message with the decision buttons, or, once decided, who decided and when."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": section_text(r.tr("slack.approval.ready", ref=r.ref_link(case.ref)))},
        context(r.tr("slack.approval.details", rights=rights_text(case, r), due=due_text(case, r),
                      hash=shown_hash[:12]),
                 r.tr("slack.approval.review", link=link(r.case_url(case.ref),
                                                         r.tr("slack.case.open_in_desk", ref=case.ref)))),
    ]
    status = approval_status(case, shown_hash)
    if status.kind == "pending":
        value = Binding(case.id, shown_hash, case.version).encode()
        confirm = {"title": r.plain("slack.confirm.approve.title", 100),
                   "text": r.plain("slack.confirm.approve.text", 300, hash=shown_hash[:12], ref=case.ref),
                   "confirm": r.plain("slack.confirm.approve.yes", 30), "deny": r.plain("slack.confirm.no", 30)}
        elements = [button(r, "approve", value, "primary", confirm), button(r, "request_changes", value),
                    button(r, "refuse", value, "danger")]
        if not case.assignee:
            elements.append(button(r, "assign", value))
        # a new block_id per version: Slack asks for one per iteration of an updated message
        blocks.append({"type": "actions", "block_id": f"dsar_approval_{case.version}", "elements": elements})
    else:
        blocks.append({"type": "section", "text": section_text(approval_outcome(case, shown_hash, r))})
    return r.tr("slack.approval.fallback", ref=case.ref), blocks


def approval_outcome(case: Case, shown_hash: str, r: Render) -> Mrkdwn:
    """What became of the draft once it is no longer awaiting a decision (who and when, or why not)."""
    status = approval_status(case, shown_hash)
    if status.kind in ("approved", "refused", "changes_requested"):
        outcome = r.tr(f"slack.approval.{status.kind}", actor=actor_label(status.actor, r.language),
                       at=slack_time(status.at) if status.at else r.tr("slack.none"))
        if status.reason:
            outcome = Mrkdwn(outcome + "\n" + r.tr("slack.update.reason", reason=status.reason[:500]))
        return outcome
    if status.kind == "superseded":
        return r.tr("slack.approval.superseded")
    return r.tr("slack.approval.no_longer", state=state_text(case.state, r))


def reason_modal(kind: str, case: Case, binding: Binding, channel: str, message_ts: str, r: Render) -> dict[str, Any]:
    """The modal asking why (request changes, refuse); what it is about rides in private_metadata."""
    metadata = {"a": kind, "c": binding.case_id, "h": binding.draft_hash, "v": binding.version,
                "ch": channel, "ts": message_ts}
    return {
        "type": "modal", "callback_id": REASON_CALLBACK, "private_metadata": json.dumps(metadata),
        "title": r.plain(f"slack.modal.{kind}.title", 24), "submit": r.plain("slack.modal.submit", 24),
        "close": r.plain("slack.modal.cancel", 24),
        "blocks": [{"type": "input", "block_id": "reason", "label": r.plain("slack.modal.reason", 2000),
                    "hint": r.plain(f"slack.modal.{kind}.hint", 2000, ref=case.ref),
                    "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True,
                                "max_length": 2000}}],
    }
