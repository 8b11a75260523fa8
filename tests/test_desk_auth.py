"""Desk login: every page needs it, sessions expire and really end, guessing is throttled, all audited."""
from __future__ import annotations

import pytest

from bot.web.app import create_app
from tests.conftest_desk import csrf_from, log_in
from tests.desk_seed import PASSWORD


def login_events(seeded) -> list[dict]:
    return [e for e in seeded.service.audit.events() if e["action"] in ("desk_login", "desk_logout")]


@pytest.mark.parametrize("path", ["/", "/desk/", "/desk/not-requests", "/desk/quarantine", "/desk/sent-mail",
                                  "/desk/sent-mail/0001-ack.eml"])
def test_every_desk_page_needs_a_login(app, path):
    response = app.test_client().get(path)
    assert response.status_code in (302, 303)
    assert "/desk/login" in response.headers["Location"]


def test_case_pages_and_files_need_a_login(app, seeded):
    ref = seeded.refs["drafted"]
    client = app.test_client()
    for path in (f"/desk/cases/{ref}", f"/desk/cases/{ref}/draft/letter", f"/desk/cases/{ref}/draft/files/0"):
        response = client.get(path)
        assert response.status_code == 303 and "/desk/login" in response.headers["Location"], path
    assert b"Madame" not in client.get(f"/desk/cases/{ref}/draft/letter", follow_redirects=True).data


def test_login_then_the_list_and_back_to_the_page_asked_for(app, seeded):
    client = app.test_client()
    ref = seeded.refs["overdue"]
    first = client.get(f"/desk/cases/{ref}")
    assert first.headers["Location"].endswith(f"/desk/login?next=/desk/cases/{ref}")
    login_page = client.get(first.headers["Location"]).get_data(as_text=True)
    response = client.post("/desk/login", data={"login": "Alice ", "password": PASSWORD, "next": f"/desk/cases/{ref}",
                                                "csrf_token": csrf_from(login_page)})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/desk/cases/{ref}"
    assert ref in client.get(f"/desk/cases/{ref}").get_data(as_text=True)
    events = login_events(seeded)
    assert [(e["actor"], e["detail"]["outcome"]) for e in events] == [("agent:alice", "ok")]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/desk/", "/\\evil.example", "/healthz",
                                    "javascript:alert(1)"])
def test_login_never_redirects_outside_the_desk(app, target):
    client = app.test_client()
    token = csrf_from(client.get("/desk/login").get_data(as_text=True))
    response = client.post("/desk/login", data={"login": "alice", "password": PASSWORD, "next": target,
                                                "csrf_token": token})
    assert response.headers["Location"] == "/desk/"


def test_wrong_password_and_unknown_login_get_the_same_answer(app, seeded):
    client = app.test_client()
    wrong = log_in(client, "alice", "not the password")
    unknown = log_in(client, "mallory", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong login or password" in wrong.get_data(as_text=True)
    assert wrong.get_data(as_text=True).replace("alice", "X") == unknown.get_data(as_text=True).replace("mallory", "X")
    assert client.get("/desk/").status_code == 303  # still not logged in
    events = login_events(seeded)
    assert [(e["actor"], e["detail"]["outcome"]) for e in events] == [
        ("agent:alice", "failed"), ("desk:unknown_login", "failed")]
    assert "mallory" not in str(events)  # what a stranger typed is not kept


def test_login_throttled_per_login_even_with_the_right_password(app, seeded):
    client = app.test_client()
    for _ in range(5):
        assert log_in(client, "alice", "guess").status_code == 401
    blocked = log_in(client, "alice", PASSWORD)
    assert blocked.status_code == 429
    assert "Try again in 15 min" in blocked.get_data(as_text=True)
    assert log_in(app.test_client(), "bob").status_code == 303  # other agents are not locked out
    seeded.clock.advance(minutes=15, seconds=1)
    assert log_in(client, "alice", PASSWORD).status_code == 303
    outcomes = [e["detail"]["outcome"] for e in login_events(seeded) if e["actor"] == "agent:alice"]
    assert outcomes == ["failed"] * 5 + ["throttled", "ok"]


def test_login_throttled_per_address_across_logins(app, seeded):
    client = app.test_client()
    for i in range(20):
        assert log_in(client, f"nobody{i}", "guess", REMOTE_ADDR="203.0.113.7").status_code == 401
    assert log_in(client, "bob", PASSWORD, REMOTE_ADDR="203.0.113.7").status_code == 429
    assert log_in(client, "bob", PASSWORD, REMOTE_ADDR="198.51.100.1").status_code == 303
    # The counters live in the store, hashed: nothing typed is kept as written.
    keys = [k for k in seeded.service.store.keys("kv") if k.startswith("throttle:")]
    assert keys and not any("nobody" in k or "203.0.113.7" in k for k in keys)


def test_success_resets_the_login_counter(app):
    client = app.test_client()
    for _ in range(4):
        log_in(client, "alice", "guess")
    assert log_in(client, "alice", PASSWORD).status_code == 303
    fresh = app.test_client()
    for _ in range(4):
        assert log_in(fresh, "alice", "guess").status_code == 401
    assert log_in(fresh, "alice", PASSWORD).status_code == 303


def test_logout_ends_the_session_even_for_a_copied_cookie(app, agent, seeded):
    stolen = agent.get_cookie("session").value
    token = csrf_from(agent.get("/desk/").get_data(as_text=True))
    response = agent.post("/desk/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/desk/login"
    assert agent.get("/desk/").status_code == 303
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/desk/").status_code == 303
    assert [e["action"] for e in login_events(seeded)] == ["desk_login", "desk_logout"]
    assert login_events(seeded)[-1]["actor"] == "agent:alice"


def test_logout_needs_the_csrf_token(agent):
    assert agent.post("/desk/logout").status_code == 400
    assert agent.get("/desk/").status_code == 200


def test_idle_sessions_expire(agent, seeded):
    seeded.clock.advance(minutes=59)
    assert agent.get("/desk/").status_code == 200  # activity keeps it alive
    seeded.clock.advance(minutes=59)
    assert agent.get("/desk/").status_code == 200
    seeded.clock.advance(minutes=60)
    response = agent.get("/desk/")
    assert response.status_code == 303 and "/desk/login" in response.headers["Location"]


def test_sessions_end_after_the_maximum_age_despite_activity(agent, seeded):
    for _ in range(12):
        seeded.clock.advance(minutes=59)
        assert agent.get("/desk/").status_code == 200
    seeded.clock.advance(minutes=12)  # 12 hours since login
    assert agent.get("/desk/").status_code == 303


def test_a_removed_agent_is_out_at_the_next_click(agent, seeded):
    del seeded.service.config.desk.agents["alice"]
    assert agent.get("/desk/").status_code == 303


def test_session_cookie_flags(seeded):
    response = log_in(create_app(seeded.service).test_client())
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    seeded.service.config.service.base_url = "https://privacy.shop.example"
    secure = create_app(seeded.service).test_client()
    response = log_in(secure, **{"wsgi.url_scheme": "https"})
    assert "Secure" in response.headers["Set-Cookie"]


def test_the_cookie_carries_no_login_name_only_a_session_id(app, agent):
    raw = agent.get_cookie("session").value
    content = app.session_interface.get_signing_serializer(app).loads(raw)
    assert set(content) == {"agent_sid", "_csrf", "_permanent"}
    assert "alice" not in str(content)


def test_login_page_says_how_to_add_an_agent_when_there_is_none(app, seeded):
    seeded.service.config.desk.agents.clear()
    html = app.test_client().get("/desk/login").get_data(as_text=True)
    assert "dsarbot agent add LOGIN" in html


def test_language_follows_the_browser_then_the_agents_choice(agent):
    assert "Cases" in agent.get("/desk/").get_data(as_text=True)
    assert "Dossiers" in agent.get("/desk/", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).get_data(as_text=True)
    token = csrf_from(agent.get("/desk/").get_data(as_text=True))
    response = agent.post("/desk/language", data={"lang": "fr", "next": "/desk/?view=all", "csrf_token": token})
    assert response.headers["Location"] == "/desk/?view=all"
    html = agent.get("/desk/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="fr">' in html and "Dossiers" in html


def test_startup_check_warns_when_nobody_can_log_in(seeded):
    assert seeded.service.run_startup_checks() == []
    seeded.service.config.desk.agents.clear()
    problems = seeded.service.run_startup_checks()
    assert len(problems) == 1 and "dsarbot agent add LOGIN" in problems[0]


def test_unknown_logins_cost_the_same_hash_work_as_known_ones():
    from werkzeug.security import generate_password_hash

    from bot.web.desk import agents as agents_module

    agents = {"alice": generate_password_hash("a password!!", method="pbkdf2:sha256:1234")}
    agents_module._dummy_hash.cache_clear()
    assert not agents_module.check_password(agents, "nobody", "a password!!")
    assert not agents_module.check_password(agents, "Not A Login", "a password!!")
    assert agents_module.check_password(agents, "alice", "a password!!")
    assert not agents_module.check_password(agents, "alice", "wrong")
    assert agents_module._dummy_hash.cache_info().currsize == 1  # one dummy, made like the agents' hashes
    assert agents_module._dummy_hash("pbkdf2:sha256:1234").startswith("pbkdf2:sha256:1234$")
    assert agents_module._dummy_hash.cache_info().currsize == 1
