"""The requester's verification pages: enter the code, ask for a new one, "this wasn't me", send documents.

Reached only through the link in a mail sent to an address on file (`/verify/<token>`). Nothing on
these pages depends on whether we hold data on the person (rule 5), and every change is a POST
(link scanners only GET).
"""
from __future__ import annotations

from flask import Blueprint, redirect, request, url_for

from bot.models import State
from bot.uploads import Upload, UploadRejected
from bot.verification import Outcome, verifier_of
from bot.web.csrf import require_csrf
from bot.web.public import client_ip, over_limit, page_language, render, service

blueprint = Blueprint("verify", __name__, template_folder="templates")

CODE_POSTS_PER_IP_PER_HOUR = 30
_ERRORS = {Outcome.WRONG: "verify.error.wrong", Outcome.EXPIRED: "verify.error.expired"}
_NOTICES = {Outcome.SENT: "verify.notice.sent", Outcome.THROTTLED: "verify.notice.throttled"}


def _invalid(lang: str):
    return render("public/message.html", lang, 404, title_key="verify.invalid_title", body_key="verify.invalid_body")


def _page(token: str, *, errors: dict[str, str] | None = None, notice: str = "", status: int = 200):
    verifier = verifier_of(service())
    opened = verifier.open_link(token)
    if opened is None:
        return _invalid(page_language())
    case, slot = opened
    lang = page_language(case.language)
    if case.frozen:
        return render("public/message.html", lang, 200, title_key="verify.frozen_title", body_key="verify.frozen_body")
    if verifier.codes.is_locked(f"verify:{case.id}") and case.state == State.AWAITING_IDENTITY:
        return render("public/message.html", lang, status,
                      title_key="verify.locked_title", body_key="verify.locked_body", alert=True)
    if case.state != State.AWAITING_IDENTITY:
        done = case.verification.get("verified")
        return render("public/message.html", lang, 200 if done else 404,
                      title_key="verify.done_title" if done else "verify.invalid_title",
                      body_key="verify.done_body" if done else "verify.invalid_body")
    gates = case.verification.get("gates", {})
    return render("public/verify.html", lang, status, token=token, case=case, errors=errors or {}, notice=notice,
                  code_ok=bool(case.verification.get("code_ok")),
                  ask_mandate=case.third_party and gates.get("mandate") == "pending",
                  ask_id=gates.get("id_document") in ("requested", "received"),
                  id_received=gates.get("id_document") == "received",
                  digits=service().config.verification.code_digits,
                  max_mb=service().config.verification.document_max_bytes // 2**20)


@blueprint.get("/verify/<token>")
def show(token: str):
    return _page(token)


@blueprint.post("/verify/<token>")
def submit_code(token: str):
    require_csrf()
    svc = service()
    wait = over_limit("verify_ip", client_ip(), CODE_POSTS_PER_IP_PER_HOUR)
    if wait:
        return render("public/throttled.html", page_language(), 429, minutes=max(1, (wait + 59) // 60))
    outcome = verifier_of(svc).submit_code(token, request.form.get("code", ""))
    if outcome in (Outcome.VERIFIED, Outcome.AWAITING_AGENT):
        return redirect(url_for("verify.show", token=token), code=303)
    if outcome in _ERRORS:
        return _page(token, errors={"code": _ERRORS[outcome]}, status=400)
    return _page(token, status=429 if outcome == Outcome.LOCKED else 404)


@blueprint.post("/verify/<token>/resend")
def resend(token: str):
    require_csrf()
    outcome = verifier_of(service()).resend(token, client_ip())
    if outcome in _NOTICES:
        return _page(token, notice=_NOTICES[outcome], status=200 if outcome == Outcome.SENT else 429)
    return _page(token)


@blueprint.get("/verify/<token>/not-me")
def not_me_confirm(token: str):
    verifier = verifier_of(service())
    opened = verifier.open_link(token) or verifier.open_link(token, purpose="notice")
    if opened is None:
        return _invalid(page_language())
    return render("public/not_me.html", page_language(opened[0].language), token=token)


@blueprint.post("/verify/<token>/not-me")
def not_me(token: str):
    require_csrf()
    verifier = verifier_of(service())
    opened = verifier.open_link(token) or verifier.open_link(token, purpose="notice")
    if opened is None or not verifier.report_not_me(token):
        return _invalid(page_language())
    return render("public/message.html", page_language(opened[0].language), title_key="not_me.done_title",
                  body_key="not_me.done_body")


@blueprint.post("/verify/<token>/document")
def document(token: str):
    require_csrf()
    from bot.identity_review import review_of

    svc = service()
    verifier = verifier_of(svc)
    opened = verifier.open_link(token)
    if opened is None:
        return _invalid(page_language())
    case, slot = opened
    if case.state != State.AWAITING_IDENTITY or case.frozen:
        return _page(token)
    file = request.files.get("document")
    if not file or not file.filename:
        return _page(token, errors={"document": "upload.empty"}, status=400)
    upload = Upload(file.filename, file.read(svc.config.verification.document_max_bytes + 1))
    gates = case.verification.get("gates", {})
    review = review_of(svc)
    try:
        if request.form.get("kind") == "id" and gates.get("id_document") in ("requested", "received"):
            review.add_id_document(case.id, slot, upload)
        elif case.third_party and gates.get("mandate") == "pending" and case.verification.get("code_ok"):
            review.add_mandate_proof(case.id, upload)
        else:
            return _page(token, status=400)
    except UploadRejected as exc:
        return _page(token, errors={"document": exc.reason_key}, status=400)
    return _page(token, notice="verify.notice.document_received")

