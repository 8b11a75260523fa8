"""The built-in agent desk: the list of cases with their legal clocks."""
from __future__ import annotations

from flask import Blueprint, current_app, g, render_template

from bot import clock

desk = Blueprint("desk", __name__, template_folder="templates")


@desk.get("/desk/")
def case_list():
    service = current_app.extensions["dsarbot"]
    today = clock.receipt_date(service.now(), service.cases.jurisdiction)
    cases = service.cases.all()
    return render_template("desk/list.html", cases=cases, today=today, lang=g.lang,
                           days_left=clock.days_left,
                           received_day=lambda c: clock.receipt_date(c.received_at, service.cases.jurisdiction))


@desk.get("/")
def home():
    from flask import redirect, url_for

    return redirect(url_for("desk.case_list"))
