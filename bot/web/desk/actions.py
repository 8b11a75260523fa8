"""What agents do on a case from the desk: each action is one POST, CSRF-checked, done through CaseBook.

Every form carries the case version it was shown (`expected_version`), so when two agents click at
once only the first wins and the second is told the case changed. Approval also carries the hash
of the draft shown on the page: CaseBook refuses it when the draft changed since.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Callable

from flask import abort, flash, g, redirect, request, url_for
from werkzeug.datastructures import MultiDict

from bot.cases import CaseBook, IllegalTransition, allowed_actions
from bot.i18n import t
from bot.models import Case, State
from bot.web.desk import actor, desk, load_case, service, today
from bot.web.desk.case_view import case_clock

REASON_MAX = 4000

Run = Callable[[CaseBook, Case, str, int, MultiDict], Case]


@dataclass(frozen=True)
class DeskAction:
    name: str
    run: Run
    reason: str = "none"  # none | optional | required


def _transition(action: str, with_reason: bool = False) -> Run:
    def run(cases: CaseBook, case: Case, who: str, version: int, form: MultiDict) -> Case:
        detail = {"reason": _reason(form)} if with_reason and _reason(form) else {}
        return cases.transition(case.id, action, who, detail=detail, expected_version=version)

    return run


def _approve(cases: CaseBook, case: Case, who: str, version: int, form: MultiDict) -> Case:
    return cases.transition(case.id, "approve", who, detail={"draft_hash": form.get("draft_hash", "")},
                            expected_version=version)


def _request_changes(cases: CaseBook, case: Case, who: str, version: int, form: MultiDict) -> Case:
    return cases.request_changes(case.id, who, _reason(form), case.draft.get("hash", ""), version)


def _extend(cases: CaseBook, case: Case, who: str, version: int, form: MultiDict) -> Case:
    return cases.extend(case.id, who, _reason(form), expected_version=version)


def _assign(cases: CaseBook, case: Case, who: str, version: int, form: MultiDict) -> Case:
    login = who.split(":", 1)[1]

    def mutate(c: Case) -> None:
        c.assignee = login

    return cases.record(case.id, "assign", who, mutate, expected_version=version)


def _resolve_flag(cases: CaseBook, case: Case, who: str, version: int, form: MultiDict) -> Case:
    code = form.get("code", "")
    if not any(f.code == code for f in case.open_flags):
        raise IllegalTransition(case.ref, case.state, "resolve_flag", "no such open flag")
    return cases.resolve_flag(case.id, code, who, expected_version=version)


ACTIONS: dict[str, DeskAction] = {a.name: a for a in [
    DeskAction("approve", _approve),
    DeskAction("request_changes", _request_changes, reason="required"),
    DeskAction("extend", _extend, reason="required"),
    DeskAction("refuse", _transition("refuse", with_reason=True), reason="required"),
    DeskAction("dismiss", _transition("dismiss", with_reason=True), reason="optional"),
    DeskAction("reopen", _transition("reopen")),
    DeskAction("start_gathering", _transition("start_gathering")),
    DeskAction("close", _transition("close")),
    DeskAction("assign", _assign),
    DeskAction("resolve_flag", _resolve_flag),
]}


def available_actions(case: Case, day: date, login: str) -> list[str]:
    """The desk actions this case allows now, in the order the page offers them."""
    allowed = set(allowed_actions(case.state))
    svc = service()
    clock = case_clock(case, day, svc.cases.jurisdiction, svc.config.desk.soon_days)
    offered = []
    if "approve" in allowed and case.draft.get("hash"):
        offered.append("approve")
        if not any(f.code == "changes_requested" for f in case.open_flags):
            offered.append("request_changes")
    if "start_gathering" in allowed and case.state in (State.GATHERING_FAILED, State.DRAFTED):
        offered.append("start_gathering")
    if clock.can_still_extend:
        offered.append("extend")
    offered += [a for a in ("refuse", "dismiss", "reopen", "close") if a in allowed]
    if case.state != State.CLOSED and case.assignee != login:
        offered.append("assign")
    if case.open_flags:
        offered.append("resolve_flag")
    return offered


def approval_blockers(case: Case) -> list[str]:
    """Why CaseBook would refuse an approval now (shown beside a disabled button)."""
    blockers = []
    if not case.verification.get("verified"):
        blockers.append("not_verified")
    if case.frozen:
        blockers.append("frozen")
    if any(f.code == "changes_requested" for f in case.open_flags):
        blockers.append("changes_requested")
    return blockers


def _reason(form: MultiDict) -> str:
    return form.get("reason", "").strip()[:REASON_MAX]


@desk.post("/desk/cases/<ref>/actions/<name>")
def act(ref: str, name: str):
    action = ACTIONS.get(name)
    if action is None:
        abort(404)
    case = load_case(ref)
    back = redirect(url_for("desk.case_page", ref=case.ref), code=303)
    try:
        version = int(request.form.get("version", ""))
    except ValueError:
        abort(400)
    if name not in available_actions(case, today(), g.agent):
        flash(t("desk.flash.not_available", g.lang, action=t(f"desk.action.{name}", g.lang),
                state=t(f"state.{case.state}", g.lang)), "error")
        return back
    if action.reason == "required" and not _reason(request.form):
        flash(t("desk.flash.reason_required", g.lang, action=t(f"desk.action.{name}", g.lang)), "error")
        return back
    try:
        action.run(service().cases, case, actor(), version, request.form)
    except IllegalTransition as exc:
        flash(t("desk.flash.refused", g.lang, ref=exc.case_ref, action=t(f"desk.action.{exc.action}", g.lang),
                state=t(f"state.{exc.state}", g.lang)), "error")
        flash(str(exc), "detail")
        return back
    flash(t(f"desk.flash.done.{name}", g.lang, ref=case.ref), "ok")
    return back
