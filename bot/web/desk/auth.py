"""Desk login and logout, the guard in front of every desk page, and the agent's language choice."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import flash, g, redirect, render_template, request, session, url_for

from bot.i18n import available_languages, best_language, t
from bot.throttle import Throttle
from bot.web import csrf
from bot.web.desk import desk, service
from bot.web.desk.agents import AgentSessions, check_password, normalise_login

SESSION_ID = "agent_sid"
PUBLIC_ENDPOINTS = frozenset({"desk.login"})


def sessions() -> AgentSessions:
    config = service().config.desk
    return AgentSessions(service().store, service().now, idle=timedelta(minutes=config.session_idle_minutes),
                         max_age=timedelta(hours=config.session_max_hours))


def throttles() -> tuple[Throttle, Throttle]:
    """(per login name, per client address)."""
    svc, config = service(), service().config.desk
    window = timedelta(minutes=config.login_window_minutes)
    return (Throttle(svc.store, svc.now, "desk_login", config.login_max_failures, window),
            Throttle(svc.store, svc.now, "desk_login_ip", config.ip_max_failures, window))


def safe_next(target: str | None) -> str:
    """Where to go after login: only a desk page of this site (never an outside URL)."""
    default = url_for("desk.case_list")
    if not target or "\\" in target or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/desk/"):
        return default
    return target


@desk.before_request
def require_agent():
    """Every desk page needs a live agent session; the login page is the only exception."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    agent = sessions().check(session.get(SESSION_ID, ""), service().config.desk.agents)
    if agent is None:
        session.pop(SESSION_ID, None)
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("desk.login", next=target), code=303)
    g.agent = agent.login
    return None


csrf.protect(desk)  # after require_agent: an anonymous POST is sent to the login page, never acted on


def _audit_login(login: str, outcome: str) -> None:
    # Only configured logins are named: what a stranger types is not worth keeping forever.
    who = f"agent:{login}" if login in service().config.desk.agents else "desk:unknown_login"
    service().cases.log_event("desk_login", who, detail={"outcome": outcome})


@desk.route("/desk/login", methods=["GET", "POST"])
def login():
    agents = service().config.desk.agents
    if request.method == "GET":
        return render_template("desk/login.html", next=request.args.get("next", ""), no_agents=not agents)
    name = normalise_login(request.form.get("login", ""))
    password = request.form.get("password", "")
    next_page = request.form.get("next", "")
    by_login, by_ip = throttles()
    address = request.remote_addr or "unknown"
    wait = max(by_login.retry_after(name), by_ip.retry_after(address))
    if wait:
        _audit_login(name, "throttled")
        minutes = max(1, (wait + 59) // 60)
        return render_template("desk/login.html", next=next_page, login=name,
                               error=t("desk.login.throttled", g.lang, minutes=minutes)), 429
    if not check_password(agents, name, password):
        by_login.fail(name)
        by_ip.fail(address)
        _audit_login(name, "failed")
        return render_template("desk/login.html", next=next_page, login=name,
                               error=t("desk.login.failed", g.lang)), 401
    by_login.clear(name)
    agent = sessions().start(name)
    language = session.get("lang")
    session.clear()  # nothing from before the login survives it
    if language:
        session["lang"] = language
    session[SESSION_ID] = agent.id
    session.permanent = True
    csrf.rotate()
    _audit_login(name, "ok")
    return redirect(safe_next(next_page), code=303)


@desk.post("/desk/logout")
def logout():
    sessions().end(session.get(SESSION_ID, ""))
    service().cases.log_event("desk_logout", f"agent:{g.agent}", detail={"outcome": "ok"})
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    csrf.rotate()
    flash(t("desk.logged_out", language), "ok")
    return redirect(url_for("desk.login"), code=303)


@desk.post("/desk/language")
def choose_language():
    choice = request.form.get("lang", "")
    if choice in available_languages():
        session["lang"] = best_language(choice)
    return redirect(safe_next(request.form.get("next")), code=303)
