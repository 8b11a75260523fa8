"""Identity decisions on the desk: accept or reject a mandate, ask for an ID document on reasonable doubt,
look at a document and record the check (which deletes it), unlock codes after a lockout.

Only here (an authenticated agent, CSRF-checked by the desk blueprint) and the requester's right code
may verify a case; every decision goes through bot.identity_review / bot.verification and is audited.
"""
from __future__ import annotations

from typing import Any, Callable

from flask import abort, flash, g, redirect, request, url_for

from bot.cases import IllegalTransition
from bot.i18n import t
from bot.identity_review import review_of
from bot.models import Case, State
from bot.vault import VaultError
from bot.verification import verifier_of
from bot.web.desk import actor, desk, load_case, service
from bot.web.desk.files import download

REASON_MAX = 4000


def _reason() -> str:
    return request.form.get("reason", "").strip()[:REASON_MAX]


def _mandate(case: Case, accept: bool) -> None:
    review_of(service()).decide_mandate(case.id, actor(), accept=accept, reason=_reason())


def _id_check(case: Case, ok: bool) -> None:
    review_of(service()).record_id_check(case.id, actor(), ok=ok, reason=_reason())


#: action -> (does it, needs a reason)
ACTIONS: dict[str, tuple[Callable[[Case], Any], bool]] = {
    "accept_mandate": (lambda case: _mandate(case, True), False),
    "reject_mandate": (lambda case: _mandate(case, False), True),
    "request_id_document": (lambda case: review_of(service()).request_id_document(case.id, actor(), _reason()), True),
    "id_check_ok": (lambda case: _id_check(case, True), False),
    "id_check_failed": (lambda case: _id_check(case, False), True),
    "unlock_codes": (lambda case: verifier_of(service()).unlock_and_resend(case.id, actor()), False),
}


def identity_actions(case: Case) -> list[str]:
    """What the identity panel offers for this case now."""
    if case.state != State.AWAITING_IDENTITY:
        return []
    v = case.verification
    gates = v.get("gates", {})
    offered = []
    if case.third_party and gates.get("mandate") == "pending":
        offered += ["accept_mandate", "reject_mandate"]
    if gates.get("id_document") in (None, "checked"):
        offered.append("request_id_document")
    if v.get("id_check", {}).get("document"):
        offered += ["id_check_ok", "id_check_failed"]
    if any(f.code == "verification_locked" for f in case.open_flags):
        offered.append("unlock_codes")
    return offered


def identity_documents(case: Case) -> list[dict[str, Any]]:
    docs = [{"kind": "mandate", **d} for d in case.verification.get("mandate", {}).get("documents", [])]
    document = case.verification.get("id_check", {}).get("document")
    return docs + ([{"kind": "id_document", **document}] if document else [])


@desk.post("/desk/cases/<ref>/identity/<name>")
def identity_action(ref: str, name: str):
    if name not in ACTIONS:
        abort(404)
    case = load_case(ref)
    back = redirect(url_for("desk.case_page", ref=case.ref), code=303)
    if name not in identity_actions(case):
        flash(t("desk.identity.not_available", g.lang), "error")
        return back
    run, needs_reason = ACTIONS[name]
    if needs_reason and not _reason():
        flash(t("desk.identity.reason_required", g.lang), "error")
        return back
    try:
        run(case)
    except (IllegalTransition, ValueError) as exc:
        flash(t("desk.identity.refused", g.lang), "error")
        flash(str(exc), "detail")
        return back
    flash(t(f"desk.identity.done.{name}", g.lang, ref=case.ref), "ok")
    return back


@desk.get("/desk/cases/<ref>/identity/documents/<int:index>")
def identity_document(ref: str, index: int):
    """An agent opens a proof or an ID document (a download, never rendered in our origin); audited."""
    case = load_case(ref)
    documents = identity_documents(case)
    if not 0 <= index < len(documents):
        abort(404)
    try:
        data, _ = review_of(service()).read_document(case.id, documents[index]["vault_path"], actor())
    except (FileNotFoundError, VaultError):
        abort(404)
    return download(data, documents[index].get("name") or "document")


@desk.app_context_processor
def _identity_helpers() -> dict[str, Any]:
    return {"identity_actions": identity_actions, "identity_documents": identity_documents}
