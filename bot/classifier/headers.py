"""Header-level facts about a message: a case-insensitive view and address helpers."""
from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Mapping

_REPLY_PREFIX_RE = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*)?(?:re|aw|sv|vs|antw|antwort|r|rif|odp|ynt|ref|res|fw|fwd|tr|wg|enc|rv|doorst|"
    r"απ|σχετ|πρθ|odg)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)


class Headers:
    """Read-only, case-insensitive view of `Message.headers` (repeated headers joined by newlines)."""

    def __init__(self, headers: Mapping[str, str] | None) -> None:
        self._values: dict[str, str] = {}
        for name, value in (headers or {}).items():
            key = str(name).strip().lower()
            text = value if isinstance(value, str) else str(value)
            self._values[key] = self._values[key] + "\n" + text if key in self._values else text

    def get(self, name: str) -> str:
        return self._values.get(name.lower(), "")

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._values

    def first(self, name: str) -> str:
        """The first value of a header that may repeat (Return-Path is added once per hop)."""
        return self.get(name).split("\n", 1)[0].strip()


def address_of(value: str) -> str:
    """The bare, lower-cased address in a From/Return-Path value ("" when there is none)."""
    value = value.strip()
    if "<" not in value and " " not in value:  # already bare (what bot.mailparse gives): skip the parser
        return value.lower()
    return parseaddr(value)[1].strip().lower()


def local_part(address: str) -> str:
    return address.rsplit("@", 1)[0] if "@" in address else address


def is_reply_subject(subject: str) -> bool:
    """"Re:", "AW:", "Fwd:"…: a person answering or forwarding, not an automatic notice opening a thread."""
    return bool(_REPLY_PREFIX_RE.match(subject or ""))
