"""The built-in agent desk: login, the case list, the case page and the actions agents take.

Every page needs a logged-in agent (`auth`), every form is CSRF-checked (`bot.web.csrf`), every
change goes through CaseBook as `agent:<login>`. Everything that came from outside is escaped by
Jinja's autoescape; nothing from a message is ever marked safe.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, g

from bot import clock
from bot.cases import CaseNotFound
from bot.models import Case
from bot.service import Service
from bot.vault import Vault, vault_of

desk = Blueprint("desk", __name__)


def service() -> Service:
    return current_app.extensions["dsarbot"]


def actor() -> str:
    """Who does what the current request does, as CaseBook and the audit trail write it."""
    return f"agent:{g.agent}"


def today() -> date:
    svc = service()
    return clock.receipt_date(svc.now(), svc.cases.jurisdiction)


def load_case(ref: str) -> Case:
    try:
        return service().cases.by_ref(ref)
    except CaseNotFound:
        abort(404)


def vault() -> Vault:
    """The service's vault (registered by whoever set it up first, else opened on the data dir)."""
    return vault_of(service())


def check_agents(service: Service) -> str | None:
    """A startup check: with no helpdesk but the built-in desk, nobody could approve anything."""
    if service.config.helpdesk.kind == "builtin" and not service.config.desk.agents:
        return ("[desk] agents is empty: nobody can log in to the built-in desk; "
                "add an agent with `dsarbot agent add LOGIN --write CONFIG`")
    return None


def setup(service: Service) -> None:
    """The desk is always served (create_app registers it); here it only checks it can be used."""
    service.startup_checks.append(lambda: check_agents(service))


from bot.web.desk import auth, views, actions, files, sent_mail, identity  # noqa: E402,F401 - each adds its routes to `desk`
