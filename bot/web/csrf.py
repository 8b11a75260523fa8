"""CSRF protection for every form the service serves: one random token per session, checked on each POST.

Use it in a blueprint with `csrf.protect(blueprint)` (every unsafe request of that blueprint is
checked) or call `require_csrf()` at the top of a view. Templates put `{{ csrf_field() }}` (or
`{{ csrf_token() }}` in a field named `csrf_token`) inside each form; scripts may send the token
in the `X-CSRF-Token` header. Webhooks are not protected this way: they verify signatures instead.
"""
from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, Flask, g, request, session
from markupsafe import Markup, escape
from werkzeug.exceptions import BadRequest

from bot.i18n import t

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SESSION_KEY = "_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CSRFError(BadRequest):
    """A form came without the session's token (forged, or from a page older than the session)."""


def csrf_token() -> str:
    """The session's token, created on first use."""
    token = session.get(SESSION_KEY)
    if not token:
        token = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    """The hidden input to put inside every form."""
    return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(csrf_token())}">')


def rotate() -> str:
    """A new token: call it when the session changes hands (login, logout)."""
    session[SESSION_KEY] = secrets.token_urlsafe(32)
    return session[SESSION_KEY]


def require_csrf() -> None:
    """Abort with 400 unless an unsafe request carries the session's token (constant-time compare)."""
    if request.method not in UNSAFE_METHODS:
        return
    expected = session.get(SESSION_KEY, "")
    sent = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CSRFError(description=t("csrf.rejected", g.get("lang")))


def protect(blueprint: Blueprint) -> Blueprint:
    """Check the token on every unsafe request to `blueprint`."""
    blueprint.before_request(require_csrf)
    return blueprint


def init_app(app: Flask) -> None:
    """Make `csrf_token()` and `csrf_field()` available in every template."""
    app.jinja_env.globals.update(csrf_token=csrf_token, csrf_field=csrf_field)
