"""Message catalogues for user-facing strings: one JSON file per language in `bot/locales/`.

Letters have their own Jinja templates per language; short strings (page labels, mail subjects,
Slack texts) come from here. A missing key in a language falls back to English, then to the key.
"""
from __future__ import annotations

import json
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
