"""Desk pages that only read: the case list, the case page, non-requests and quarantine."""
from __future__ import annotations

import re
from typing import Any

from flask import g, redirect, render_template, request, url_for

from bot.i18n import t
from bot.models import CASE_REF_PATTERN, Message
from bot.vault import safe_name
from bot.web.desk import desk, load_case, service, today
from bot.web.desk.actions import approval_blockers, available_actions
from bot.web.desk.case_view import VIEWS, case_clock, counts, local_time, scalar_items, select
from bot.web.desk.files import draft_files
from bot.web.desk.sent_mail import sent_mail_dir

_FULL_REF = re.compile(CASE_REF_PATTERN, re.IGNORECASE)


@desk.context_processor
def desk_context() -> dict[str, Any]:
    """What every desk page's header needs."""
    helpers = {"label": label, "safe_name": safe_name}
    if not g.get("agent"):
        return helpers
    store = service().store
    return {**helpers, "agent": g.agent,
            "nav": {"ignored": store.count("ignored"), "quarantine": store.count("quarantine"),
                    "sent_mail": sent_mail_dir() is not None}}


def label(prefix: str, key: str) -> str:
    """The catalogue's words for `prefix.key` (a flag code, a verification field), else the key itself."""
    base, _, qualifier = key.partition(":")  # "effect_failed:mail.send"
    text = t(f"{prefix}.{base}", g.lang)
    text = base if text == f"{prefix}.{base}" else text
    return f"{text} ({qualifier})" if qualifier else text


@desk.get("/")
def home():
    return redirect(url_for("desk.case_list"))


@desk.get("/desk/")
def case_list():
    svc = service()
    view = request.args.get("view", "open")
    view = view if view in VIEWS else "open"
    query = request.args.get("q", "").strip()[:40]
    cases = svc.cases.all()
    if query and _FULL_REF.fullmatch(query):
        exact = [c for c in cases if c.ref == query.upper()]
        if exact:
            return redirect(url_for("desk.case_page", ref=exact[0].ref))
    day, jurisdiction, soon = today(), svc.cases.jurisdiction, svc.config.desk.soon_days
    shown = select(cases, view, query)
    rows = [(case, case_clock(case, day, jurisdiction, soon)) for case in shown]
    return render_template("desk/list.html", rows=rows, counts=counts(cases, day, soon), view=view, query=query,
                           today=day, total=len(cases))


@desk.get("/desk/cases/<ref>")
def case_page(ref: str):
    svc = service()
    case = load_case(ref)
    jurisdiction = svc.cases.jurisdiction
    messages = []
    for message_id in case.message_ids:
        doc = svc.store.get("messages", message_id)
        if doc is not None:
            messages.append(Message.from_doc(doc))
    messages.sort(key=lambda m: m.received_at)
    events = list(svc.audit.events(case.id))
    effects = sorted(svc.store.find("outbox", {"case_id": case.id}), key=lambda e: e.get("created_at", ""))
    return render_template(
        "desk/case.html", case=case, clock=case_clock(case, today(), jurisdiction, svc.config.desk.soon_days),
        messages=messages, events=events, effects=effects, actions=available_actions(case, today(), g.agent),
        blockers=approval_blockers(case), draft_files=draft_files(case), when=lambda value: local_time(value, jurisdiction), fields=scalar_items,
    )


@desk.get("/desk/not-requests")
def ignored_list():
    svc = service()
    items = []
    for doc in sorted(svc.store.find("ignored"), key=lambda d: d.get("received_at", ""), reverse=True)[:500]:
        message = svc.store.get("messages", doc.get("message_id", ""))
        items.append({"doc": doc, "message": Message.from_doc(message) if message else None})
    return render_template("desk/ignored.html", items=items,
                           when=lambda value: local_time(value, svc.cases.jurisdiction))


@desk.get("/desk/quarantine")
def quarantine_list():
    svc = service()
    docs = sorted(svc.store.find("quarantine"), key=lambda d: str(d.get("received_at") or d.get("at") or ""),
                  reverse=True)[:500]
    return render_template("desk/quarantine.html", items=[scalar_items(d) for d in docs])
