"""Strict email address comparison: two addresses are the same mailbox only when they are spelled the same.

Used wherever an address decides something (is the writing address the one on file?). Lookalikes
(`rn` for `m`, `examp1e.com`), Unicode confusables (Cyrillic `а`, fullwidth `ａ`, the Kelvin sign
that `str.lower()` turns into `k`) and display names must never make two addresses equal. So only
ASCII letters are case-folded, domains go through IDNA 2008 without compatibility mapping (a
fullwidth or mixed-script domain is simply a different, or invalid, domain), and nothing else is
normalised.
"""
from __future__ import annotations

import re

import idna

_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# Also the dots IDNA would treat as label separators (U+3002, U+FF0E, U+FF61): one spelling, one dot.
_FORBIDDEN = re.compile(r"[\s<>()\[\],;:\\\"\x00-\x1f\x7f\u3002\uff0e\uff61]")


def ascii_lower(text: str) -> str:
    """Lowercase A-Z only: `str.lower()` maps U+212A KELVIN SIGN to `k` and other letters to ASCII."""
    return text.translate(_ASCII_UPPER)


def normalize_email(address: str) -> str:
    """The canonical spelling of a bare address, or "" when it is not one we can send to safely.

    `"alice@shop.example" <evil@x.com>` is not a bare address: parsing headers is the channel's job,
    and what reaches here must already be the addr-spec alone.
    """
    address = (address or "").strip()
    if address.count("@") != 1 or _FORBIDDEN.search(address):
        return ""
    local, domain = address.split("@")
    if not local or not domain or len(address) > 254:
        return ""
    try:
        # IDNA 2008 (no UTS 46 mapping): U-labels are checked and turned into A-labels, fullwidth
        # and other compatibility characters are refused rather than folded into ASCII.
        labels = [idna.encode(label).decode("ascii") if not label.isascii() else label
                  for label in ascii_lower(domain).rstrip(".").split(".")]
    except idna.IDNAError:
        return ""
    if any(not label for label in labels):
        return ""
    return f"{ascii_lower(local)}@{'.'.join(labels)}"


def same_mailbox(a: str, b: str) -> bool:
    """True only when both are valid addresses with the same canonical spelling."""
    na, nb = normalize_email(a), normalize_email(b)
    return bool(na) and na == nb
