"""CSRF: every desk form carries the session's token; a POST without it, or with another, changes nothing."""
from __future__ import annotations

import pytest
from flask import Blueprint, Flask, render_template_string

from bot.web import csrf
from tests.conftest_desk import csrf_from, log_in, page_token


def snapshot(seeded, name: str) -> tuple:
    case = seeded.case(name)
    return case.version, case.state, len(list(seeded.service.audit.events()))


@pytest.mark.parametrize("token", [None, "", "forged-token", "x" * 43])
def test_a_desk_action_without_the_right_token_is_refused_and_changes_nothing(agent, seeded, token):
    ref = seeded.refs["drafted"]
    case = seeded.case("drafted")
    before = snapshot(seeded, "drafted")
    data = {"version": case.version, "draft_hash": case.draft["hash"]}
    if token is not None:
        data["csrf_token"] = token
    response = agent.post(f"/desk/cases/{ref}/actions/approve", data=data)
    assert response.status_code == 400
    assert "expired or was not sent from this site" in response.get_data(as_text=True)
    assert snapshot(seeded, "drafted") == before


def test_the_token_of_another_session_does_not_work(app, agent, seeded):
    other = app.test_client()
    log_in(other, "bob")
    bobs_token = page_token(other)
    ref = seeded.refs["overdue"]
    before = snapshot(seeded, "overdue")
    response = agent.post(f"/desk/cases/{ref}/actions/assign",
                          data={"version": seeded.case("overdue").version, "csrf_token": bobs_token})
    assert response.status_code == 400
    assert snapshot(seeded, "overdue") == before
    assert seeded.case("overdue").assignee == ""


def test_with_the_right_token_the_same_post_works(agent, seeded):
    ref = seeded.refs["overdue"]
    response = agent.post(f"/desk/cases/{ref}/actions/assign",
                          data={"version": seeded.case("overdue").version, "csrf_token": page_token(agent)})
    assert response.status_code == 303
    assert seeded.case("overdue").assignee == "alice"


def test_login_itself_needs_the_token(app, seeded):
    from tests.desk_seed import PASSWORD

    client = app.test_client()
    client.get("/desk/login")
    response = client.post("/desk/login", data={"login": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/desk/").status_code == 303
    assert not [e for e in seeded.service.audit.events() if e["action"] == "desk_login"]


def test_the_token_changes_at_login(app):
    client = app.test_client()
    before = csrf_from(client.get("/desk/login").get_data(as_text=True))
    log_in(client)
    assert page_token(client) != before


def test_every_form_on_every_desk_page_carries_the_token(agent, seeded):
    import re

    paths = ["/desk/", "/desk/not-requests", "/desk/quarantine", "/desk/sent-mail"]
    paths += [f"/desk/cases/{ref}" for ref in seeded.refs.values()]
    forms = 0
    for path in paths:
        html = agent.get(path).get_data(as_text=True)
        for form in re.findall(r"<form\b[^>]*>.*?</form>", html, flags=re.S):
            if 'method="post"' in form:
                forms += 1
                assert 'name="csrf_token"' in form, (path, form[:200])
    assert forms > 20


def make_app(protect: bool) -> Flask:
    """A minimal app using the module the way other blueprints (request form, portal) will."""
    app = Flask(__name__)
    app.secret_key = "k"
    csrf.init_app(app)
    bp = Blueprint("form", __name__)
    if protect:
        csrf.protect(bp)

    @bp.route("/form", methods=["GET", "POST"])
    def form():
        return render_template_string("<form method=post>{{ csrf_field() }}</form>{{ csrf_token() }}")

    @bp.post("/manual")
    def manual():
        csrf.require_csrf()
        return "done"

    app.register_blueprint(bp)
    return app


def test_protect_checks_form_field_and_header():
    client = make_app(protect=True).test_client()
    page = client.get("/form").get_data(as_text=True)
    token = csrf_from(page)
    assert page.endswith(token)
    assert client.post("/form").status_code == 400
    assert client.post("/form", data={"csrf_token": token + "x"}).status_code == 400
    assert client.post("/form", data={"csrf_token": token}).status_code == 200
    assert client.post("/form", headers={"X-CSRF-Token": token}).status_code == 200


def test_require_csrf_in_a_view_and_a_fresh_session_has_no_valid_token():
    client = make_app(protect=False).test_client()
    assert client.post("/form").status_code == 200  # not protected: the blueprint did not ask
    assert client.post("/manual", data={"csrf_token": "anything"}).status_code == 400
    token = csrf_from(client.get("/form").get_data(as_text=True))
    assert client.post("/manual", data={"csrf_token": token}).status_code == 200
