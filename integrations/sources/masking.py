"""What never leaves in an export: password hashes, tokens, full card numbers; and values made JSON-safe.

Every source passes its rows through `clean_fields`. A column listed in the mapping's `mask` gets
that treatment; columns whose names say they hold a secret are withheld even when a mapping forgot
them; a card number anywhere (a column or free text such as a support message) keeps its last 4
digits only (PCI DSS 3.4). The markers are stable strings; the letter can translate them with the
`withheld.*` catalogue entries.
"""
from __future__ import annotations

import base64
import ipaddress
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Mapping

MASKS = ("hash", "secret", "last4", "drop", "show")  # what a mapping may ask for a column
HASH_WITHHELD = "[hash withheld]"
SECRET_WITHHELD = "[secret withheld]"
#: Marker -> catalogue key of its wording in the requester's language (bot.i18n.t).
WITHHELD_TEXT = {HASH_WITHHELD: "withheld.hash", SECRET_WITHHELD: "withheld.secret"}

# Judged on the column name's last word, so that `token_id` or `last_passwd_gen` stay visible.
_SECRET_NAME = re.compile(r"(^|_)(passwd|password|pwd|pass|secret|token|tokens|secure_key|activation_key|api_key|"
                          r"order_key|session_key|cvv|cvc|cryptogram)$", re.I)
_HASH_NAME = re.compile(r"(^|_)(passwd|password|pwd|pass|hash)$", re.I)
_CARD_NAME = re.compile(r"card_number|cc_number|card_num|^pan$", re.I)
# 13-19 digits, optionally grouped by spaces or dashes; checked with Luhn before masking.
_CARD_IN_TEXT = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def last4(value: Any) -> str | None:
    digits = re.sub(r"\D", "", str(value or ""))
    return f"**** {digits[-4:]}" if digits else None


def mask_cards_in_text(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return f"**** {digits[-4:]}" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)

    return _CARD_IN_TEXT.sub(replace, text) if any(c.isdigit() for c in text) else text


def json_safe(value: Any) -> Any:
    """Database and log values as JSON types (dates as ISO 8601, decimals as strings to keep cents exact)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return mask_cards_in_text(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 49.900000 (PrestaShop's decimal(20,6)) -> "49.9"
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return mask_cards_in_text(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode("ascii")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    return str(value)


def apply_mask(mask: str, value: Any) -> Any:
    """One column's treatment; returns `...` for a column to drop."""
    if mask == "drop":
        return ...
    if value in (None, ""):
        return value
    if mask == "hash":
        return HASH_WITHHELD
    if mask == "secret":
        return SECRET_WITHHELD
    if mask == "last4":
        return last4(value)
    return value


def implied_mask(column: str) -> str | None:
    """The treatment a column's name alone calls for, as a safety net behind the mappings."""
    if _CARD_NAME.search(column):
        return "last4"
    if _HASH_NAME.search(column):
        return "hash"
    if _SECRET_NAME.search(column):
        return "secret"
    return None


def ipv4_from_int(value: Any) -> Any:
    """PrestaShop stores visitors' IPv4 addresses as a number (ip2long)."""
    try:
        return str(ipaddress.IPv4Address(int(value))) if value not in (None, "", 0) else value
    except (ValueError, ipaddress.AddressValueError):
        return value


def clean_fields(row: Mapping[str, Any], mask: Mapping[str, str] | None = None,
                 transform: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A row as exportable fields: masked, transformed, JSON-safe."""
    mask = mask or {}
    transform = transform or {}
    out: dict[str, Any] = {}
    for column, value in row.items():
        treatment = mask.get(column) or implied_mask(column)
        if treatment and treatment != "show":
            value = apply_mask(treatment, value)
            if value is ...:
                continue
        if transform.get(column) == "ipv4_int":
            value = ipv4_from_int(value)
        out[column] = json_safe(value)
    return out
