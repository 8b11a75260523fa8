"""The public request form (`/request`): French and English, accessible, no JavaScript needed.

A submission becomes a Message (channel "form") handed to the intake like any other channel, with
the rights and language the person ticked (not re-guessed). Whether we know the person or not,
the answer is the same redirect to the same page, and the address lookup happens later in the
outbox (SECURITY.md rule 5). Submissions are throttled per address and per IP.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from flask import Blueprint, abort, redirect, request, url_for

from bot.addresses import normalize_email
from bot.i18n import t
from bot.intake import Classification, Parties
from bot.models import Message, Person, Right
from bot.uploads import Upload
from bot.web.csrf import require_csrf
from bot.web.public import client_ip, over_limit, page_language, render, service

blueprint = Blueprint("form", __name__, template_folder="templates")

RIGHTS = [str(r) for r in Right]
MAX_TEXT = 10_000
MAX_FIELD = 200


@dataclass
class FormData:
    email: str = ""
    name: str = ""
    order: str = ""
    rights: list[str] = field(default_factory=list)
    text: str = ""
    third_party: bool = False
    relationship: str = ""
    subject_name: str = ""
    subject_email: str = ""
    submission: str = ""


def _read_form() -> FormData:
    f = request.form
    return FormData(
        email=f.get("email", "").strip()[:MAX_FIELD], name=f.get("name", "").strip()[:MAX_FIELD],
        order=f.get("order", "").strip()[:MAX_FIELD], rights=[r for r in f.getlist("rights") if r in RIGHTS],
        text=f.get("text", "").strip()[:MAX_TEXT], third_party=f.get("third_party") == "yes",
        relationship=f.get("relationship", ""), subject_name=f.get("subject_name", "").strip()[:MAX_FIELD],
        subject_email=f.get("subject_email", "").strip()[:MAX_FIELD],
        submission=f.get("submission", "")[:64],
    )


def _errors(data: FormData) -> dict[str, str]:
    """field id -> catalogue key of the error."""
    from bot.identity_review import RELATIONSHIPS

    errors = {}
    if not normalize_email(data.email):
        errors["email"] = "form.error.email"
    if not data.rights:
        errors["rights"] = "form.error.rights"
    if data.third_party:
        if data.relationship not in RELATIONSHIPS:
            errors["relationship"] = "form.error.relationship"
        if not data.subject_name:
            errors["subject_name"] = "form.error.subject_name"
        if data.subject_email and not normalize_email(data.subject_email):
            errors["subject_email"] = "form.error.subject_email"
    return errors


def _show(data: FormData, lang: str, errors: dict[str, str] | None = None, status: int = 200):
    from bot.identity_review import RELATIONSHIPS

    return render("public/request.html", lang, status, form=data, errors=errors or {}, rights=RIGHTS,
                  relationships=RELATIONSHIPS, max_mb=service().config.verification.document_max_bytes // 2**20)


@blueprint.get("/request")
def request_form():
    return _show(FormData(submission=uuid.uuid4().hex), page_language())


@blueprint.post("/request")
def submit():
    require_csrf()
    svc = service()
    lang = page_language()
    data = _read_form()
    errors = _errors(data)
    proof = request.files.get("proof")
    upload = Upload(proof.filename or "", proof.read(svc.config.verification.document_max_bytes + 1)) \
        if proof and proof.filename else None
    if upload and not errors:
        from bot.uploads import sniff

        if len(upload.data) > svc.config.verification.document_max_bytes:
            errors["proof"] = "upload.too_large"
        elif not sniff(upload.data):
            errors["proof"] = "upload.bad_type"
    if errors:
        return _show(data, lang, errors, 400)
    cfg = svc.config.form
    # Both limits are checked on every submission, whoever the address belongs to.
    waits = [over_limit("form_ip", client_ip(), cfg.max_per_ip_per_hour),
             over_limit("form_address", normalize_email(data.email), cfg.max_per_address_per_hour)]
    if any(waits):
        return _throttled(lang, max(waits))
    intake = svc.component("intake")
    if intake is None:
        abort(503)
    result = intake.receive(_message(data, lang, svc.now()), classification=Classification(
        kind="request", rights=data.rights, language=lang, confidence=1.0, cues=["form: ticked by the requester"],
    ), parties=_parties(data))
    if data.third_party and result.outcome == "case_opened":
        from bot.identity_review import review_of

        review_of(svc).record_mandate_claim(result.case_id, data.relationship, upload)
    return redirect(url_for("form.sent", lang=lang), code=303)


@blueprint.get("/request/sent")
def sent():
    return render("public/request_sent.html", page_language(),
                  ttl_minutes=service().config.verification.code_ttl_minutes)


def _throttled(lang: str, wait_seconds: int):
    response = render("public/throttled.html", lang, 429, minutes=max(1, (wait_seconds + 59) // 60))
    response.headers["Retry-After"] = str(wait_seconds)
    return response


def _message(data: FormData, lang: str, now) -> Message:
    return Message(id="", channel="form", sender=normalize_email(data.email), sender_name=data.name,
                   subject=t("form.message_subject", lang), text=data.text, received_at=now,
                   external_ids={"form_submission": data.submission or uuid.uuid4().hex})


def _parties(data: FormData) -> Parties:
    identifiers = {"order_reference": data.order} if data.order else {}
    requester = Person(email=normalize_email(data.email), name=data.name,
                       identifiers={} if data.third_party else dict(identifiers))
    if not data.third_party:
        return Parties(requester, Person(email=requester.email, name=data.name, identifiers=identifiers))
    subject = Person(email=normalize_email(data.subject_email), name=data.subject_name, identifiers=identifiers)
    return Parties(requester, subject, third_party=True)


def setup(service_) -> None:
    if service_.config.form.enabled:
        service_.blueprints.append(blueprint)
