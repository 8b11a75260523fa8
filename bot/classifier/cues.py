"""Cue texts shown to the agent: templates live in the locale catalogue (keys `cue.*`)."""
from __future__ import annotations

from bot.i18n import catalogue

#: Cues are stored with the classification, so they are rendered once, in the catalogue's default
#: language; the keys stay stable for a desk that wants to render them in the agent's language.
_TEMPLATES = {k: v for k, v in catalogue("en").items() if k.startswith("cue.")}
MAX_VALUE_CHARS = 80


def _clip(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 1] + "…"


def cue(key: str, **values: object) -> str:
    template = _TEMPLATES.get(f"cue.{key}")
    if template is None:
        return f"cue.{key} " + " ".join(f"{k}={_clip(v)}" for k, v in values.items())
    return template.format(**{k: _clip(v) for k, v in values.items()})
