"""Message catalogues for user-facing strings: one JSON file per language in `bot/locales/`.

Letters have their own Jinja templates per language; short strings (page labels, mail subjects,
Slack texts) come from here. A missing key in a language falls back to English, then to the key.
"""
from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from pathlib import Path

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LANGUAGE = "en"


@lru_cache(maxsize=None)
def catalogue(language: str) -> dict[str, str]:
    path = LOCALES_DIR / f"{language}.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def available_languages() -> list[str]:
    return sorted(p.stem for p in LOCALES_DIR.glob("*.json"))


def best_language(language: str | None) -> str:
    """The requester's language when we have a catalogue for it, English otherwise."""
    if language and (LOCALES_DIR / f"{language}.json").exists():
        return language
    return DEFAULT_LANGUAGE


def t(key: str, language: str | None = None, **values: object) -> str:
    """Translate `key` into `language`, filling `{placeholders}` from `values`."""
    text = catalogue(best_language(language)).get(key) or catalogue(DEFAULT_LANGUAGE).get(key) or key
    return text.format(**values) if values else text


def format_date(day: date, language: str | None = None) -> str:
    """A date as people write it in `language` ("3 mars 2025", "3 March 2025")."""
    months = t("date.months", language).split(",")
    day_text = t("date.day_1", language) if day.day == 1 else str(day.day)  # "1er mars"
    return t("date.long", language, day=day_text, month=months[day.month - 1], year=day.year)
