"""What the requester-facing pages (form, verification, portal) share: language, rendering, client IP."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app, g, render_template, request

from bot.i18n import best_language
from bot.service import Service
from bot.throttle import Throttle

LANGUAGES = ("fr", "en")


def service() -> Service:
    return current_app.extensions["dsarbot"]


def page_language(case_language: str | None = None) -> str:
    """An explicit ?lang= wins, then the case's language, then the browser's."""
    asked = request.values.get("lang")
    if asked in LANGUAGES:
        return asked
    if case_language in LANGUAGES:
        return case_language
    return g.get("lang") or best_language(None)


def client_ip() -> str:
    # Behind a reverse proxy, run the app wrapped in werkzeug's ProxyFix so remote_addr is the client.
    return request.remote_addr or "unknown"


def render(template: str, lang: str, status: int = 200, **context: Any):
    context.setdefault("shop_name", service().config.service.shop_name)
    response = current_app.make_response((render_template(template, lang=lang, **context), status))
    # Pages with codes, links and personal data are never cached, and never leak their URL onwards.
    response.headers["Cache-Control"] = "no-store"
    return response


def over_limit(name: str, key: str, limit: int, window: timedelta = timedelta(hours=1)) -> int:
    """Count one use of `key` under `name`; seconds to wait when over `limit` in the window, else 0."""
    svc = service()
    throttle = Throttle(svc.store, svc.now, name, limit, window)
    wait = throttle.retry_after(key)
    if not wait:
        throttle.fail(key)
    return wait
