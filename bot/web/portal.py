"""The delivery portal (`/portal/<token>`): fresh code, then one download (or the archive password) per code.

Every GET only shows a page; sending a code, entering it and downloading are POSTs, so a mail
scanner that follows the link consumes nothing. The grant given by a right code lives server-side
(bot.delivery) and is used up by the download: replaying the request, or the link after it has
expired, gets nothing.
"""
from __future__ import annotations

from flask import Blueprint, Response, redirect, request, session, url_for

from bot.delivery import deliveries_of
from bot.vault import safe_name
from bot.verification import Outcome
from bot.web.csrf import require_csrf
from bot.web.public import client_ip, over_limit, page_language, render, service

blueprint = Blueprint("portal", __name__, template_folder="templates")

GRANT = "portal_grant"
UNLOCKS_PER_IP_PER_HOUR = 30


def _invalid():
    return render("public/message.html", page_language(), 404, title_key="portal.invalid_title",
                  body_key="portal.invalid_body")


def _page(token: str, *, step: str = "start", errors: dict[str, str] | None = None, notice: str = "",
          status: int = 200, password: str = ""):
    deliveries = deliveries_of(service())
    opened = deliveries.open(token)
    if opened is None:
        return _invalid()
    delivery, case = opened
    if deliveries.grant_alive(token, session.get(GRANT, "")) and not password:
        step = "unlocked"
    return render("public/portal.html", page_language(case.language), status, token=token, case=case,
                  delivery=delivery, step=step, errors=errors or {}, notice=notice, password=password,
                  digits=service().config.verification.code_digits,
                  ttl_minutes=service().config.verification.code_ttl_minutes)


@blueprint.get("/portal/<token>")
def show(token: str):
    return _page(token)


@blueprint.post("/portal/<token>/code")
def send_code(token: str):
    require_csrf()
    outcome = deliveries_of(service()).request_code(token)
    if outcome == Outcome.SENT:
        return _page(token, step="code", notice="portal.code_sent")
    if outcome == Outcome.THROTTLED:
        return _page(token, step="code", notice="portal.code_throttled", status=429)
    if outcome == Outcome.LOCKED:
        return _page(token, step="locked", status=429)
    return _invalid()


@blueprint.post("/portal/<token>/unlock")
def unlock(token: str):
    require_csrf()
    wait = over_limit("portal_ip", client_ip(), UNLOCKS_PER_IP_PER_HOUR)
    if wait:
        return render("public/throttled.html", page_language(), 429, minutes=max(1, (wait + 59) // 60))
    deliveries = deliveries_of(service())
    outcome, grant = deliveries.unlock(token, request.form.get("code", ""))
    if outcome == Outcome.VERIFIED:
        opened = deliveries.open(token)
        if opened and opened[0]["method"] == "encrypted_email":
            # The password is shown once, right here, and never put in a mail.
            password = deliveries.reveal_password(token, grant)
            return _page(token, step="password", password=password or "")
        session[GRANT] = grant
        return redirect(url_for("portal.show", token=token), code=303)
    if outcome == Outcome.WRONG:
        return _page(token, step="code", errors={"code": "verify.error.wrong"}, status=400)
    if outcome == Outcome.EXPIRED:
        return _page(token, step="code", errors={"code": "verify.error.expired"}, status=400)
    if outcome == Outcome.LOCKED:
        return _page(token, step="locked", status=429)
    return _invalid()


@blueprint.post("/portal/<token>/download")
def download(token: str):
    require_csrf()
    grant = session.pop(GRANT, "")
    file = deliveries_of(service()).download(token, grant)
    if file is None:
        return _page(token, errors={"download": "portal.download_refused"}, status=403) \
            if deliveries_of(service()).open(token) else _invalid()
    response = Response(file.data, mimetype=file.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{safe_name(file.filename, "answer")}"'
    response.headers["Cache-Control"] = "no-store"
    return response
