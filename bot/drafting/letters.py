"""Letters from Jinja templates, one folder per language (`templates/<lang>/`): the Art. 15 answer and the others.

A language folder holds `strings.yaml` (labels, month names, redaction markers) and one template per
kind of letter; all of them extend the language-neutral `layout.html`, so every letter has the
same letterhead, reference block and signature. Adding a language is adding one folder.

`render_letter(kind, case, context)` is the API other parts use for mails (e.g. an extension notice):
`context` holds `config` (bot.config.Config) and `today` (a date), plus the kind's own keys (KINDS).
"""
from __future__ import annotations

import html as html_lib
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from bot import clock
from bot.config import Config, jurisdiction_of
from bot.drafting.parties import authority, controller
from bot.drafting.plaintext import html_to_text
from bot.models import Case

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_LANGUAGE = "en"

#: kind -> context keys the caller must give (beyond config and today). Each kind is `<lang>/<kind>.html`.
KINDS: dict[str, tuple[str, ...]] = {
    "access": ("facts",),  # the Art. 15 answer, built by the Drafter
    "no_data": (),  # Art. 15(1) confirmation that nothing is processed
    "identity_request": (),  # optional: "requested" (list of what we ask for)
    "clarification_request": ("questions",),  # Recital 63: which information or processing
    "extension_notice": ("reasons",),  # Art. 12(3): two further months, only within the first month
    "refusal": ("reasons",),  # Art. 12(5)(b) with the Art. 12(4) notice; optional "earlier_requests"
    "fee": ("reasons", "fee"),  # Art. 12(5)(a): "fee" = amount with its currency, e.g. "15,00 €"
}


class LetterRefused(ValueError):
    """This letter must not be produced (e.g. an extension notice once the first month has ended)."""


def languages() -> list[str]:
    return sorted(p.parent.name for p in TEMPLATES.glob("*/strings.yaml"))


def letter_language(language: str | None) -> str:
    """The requester's language when a template folder exists for it, English otherwise."""
    base = (language or "").lower().split("-")[0].split("_")[0]
    return base if base in languages() else DEFAULT_LANGUAGE


@lru_cache(maxsize=None)
def strings(language: str) -> dict[str, Any]:
    return yaml.safe_load((TEMPLATES / language / "strings.yaml").read_text(encoding="utf-8"))


def format_date(day: date, language: str) -> str:
    s = strings(language)
    return s["date_format"].format(day=day.day, month=s["months"][day.month - 1], year=day.year)


def css_string(text: str) -> Markup:
    """A CSS string literal that cannot leave its <style> element."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ").replace("\n", " ")
    return Markup(f'"{escaped}"')


_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def base_context(case: Case, config: Config, today: date, language: str) -> dict[str, Any]:
    """What every letter shows: the controller, the authority, dates, the reference, the addressee."""
    jurisdiction = jurisdiction_of(config)
    L = strings(language)
    addressee = case.requester if case.requester.email or case.requester.name else case.subject
    return {
        "lang": language, "L": L, "case": case, "today": today,
        "received": clock.receipt_date(case.received_at, jurisdiction),
        "shop": controller(config), "authority": authority(config.jurisdiction.authority, language),
        "addressee": {"name": addressee.name, "email": addressee.email},
        "date": lambda d: format_date(d, language), "css_string": css_string,
        "legal_basis": lambda code: L["legal_bases"].get(str(code).strip().lower(), code),
        "annex": None,
    }


def check_allowed(kind: str, case: Case, config: Config, today: date) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown letter kind {kind!r}; known: {', '.join(KINDS)}")
    if kind == "extension_notice":
        received = clock.receipt_date(case.received_at, jurisdiction_of(config))
        last = clock.last_extension_notice_day(received)
        if today > last:
            raise LetterRefused(f"case {case.ref}: an extension must be notified within the first month "
                                f"(by {last.isoformat()}); it is {today.isoformat()}")


def render_html(kind: str, case: Case, context: Mapping[str, Any]) -> tuple[str, str, str]:
    """(language, subject, HTML) of one letter; `context` as for render_letter (may add "annex")."""
    config, today = context["config"], context["today"]
    check_allowed(kind, case, config, today)
    missing = [key for key in KINDS[kind] if not context.get(key)]
    if missing:
        raise ValueError(f"letter {kind!r} needs {', '.join(missing)} in its context")
    language = letter_language(context.get("language") or case.language)
    values = base_context(case, config, today, language)
    values.update({k: v for k, v in context.items() if k not in ("config",)})
    values["lang"], values["L"] = language, strings(language)
    values.setdefault("requested", [])
    values.setdefault("earlier_requests", [])
    html = _env.get_template(f"{language}/{kind}.html").render(**values)
    found = re.search(r"<title>(.*?)</title>", html, re.S)
    subject = " ".join(html_lib.unescape(found.group(1)).split()) if found else ""
    return language, subject, html


def render_letter(kind: str, case: Case, context: Mapping[str, Any]) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of a letter, in the case's language (English when we have no templates)."""
    _, subject, html = render_html(kind, case, {**context, "annex": None})
    return subject, html_to_text(html), html


def letter_context(service: Any, **extra: Any) -> dict[str, Any]:
    """The context render_letter needs, from a running service (config, today in the controller's time zone)."""
    today = clock.receipt_date(service.now(), jurisdiction_of(service.config))
    return {"config": service.config, "today": today, **extra}
