"""Flask app factory: core pages plus the blueprints integrations registered on the service."""
from __future__ import annotations

from datetime import timedelta

from flask import Flask, g, request, session

from bot import clock
from bot.i18n import available_languages, best_language, t
from bot.service import Service, secret_key
from bot.web import csrf
from bot.web.desk import desk


def create_app(service: Service) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key(service.config),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=service.config.service.base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=service.config.desk.session_max_hours),
        MAX_CONTENT_LENGTH=25 * 1024 * 1024,
    )
    app.extensions["dsarbot"] = service
    app.jinja_env.globals.update(t=t, urgency=clock.urgency)
    app.jinja_env.autoescape = True
    csrf.init_app(app)

    @app.before_request
    def _language() -> None:
        # The language asked for in the link, else the one chosen in this session, else the browser's.
        g.lang = best_language(request.args.get("lang") or session.get("lang")
                               or request.accept_languages.best_match(available_languages()))

    @app.context_processor
    def _page_language() -> dict[str, str]:
        return {"lang": g.get("lang", "en")}

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                    "form-action 'self'; frame-ancestors 'none'")
        return response

    @app.get("/healthz")
    def healthz():
        return {"ok": True}

    app.register_blueprint(desk)
    for blueprint in service.blueprints:
        app.register_blueprint(blueprint)
    return app


def service_of(app: Flask | None = None) -> Service:
    from flask import current_app

    return (app or current_app).extensions["dsarbot"]
