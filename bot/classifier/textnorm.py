"""Folds text for matching: lower case, no accents, words separated by single spaces.

Lexicon phrases go through the same folding, so "droit d'accès", "Droit d'acces" and
"DROIT D’ACCÈS" all meet as `droit d acces`. Two punctuation marks survive as tokens because the
rules need them: `|` ends a sentence and `,` ends a clause.
"""
from __future__ import annotations

import re
import unicodedata

#: Only this much of a message is read: requests are short, and a 5 MB body must not cost seconds.
MAX_CHARS = 30_000

SENTENCE_END = "|"
CLAUSE_END = ","


def _fold_table() -> dict[int, str | None]:
    """Precomputed so that folding is one C-level `str.translate` instead of a Python loop."""
    special = {"ß": "ss", "ł": "l", "đ": "d", "ø": "o", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d",
               "ı": "i", "ς": "σ", "ħ": "h", "ŀ": "l", "ŧ": "t",
               "\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "´": "'"}
    table: dict[int, str | None] = {ord(k): v for k, v in special.items()}
    ranges = [(0x00C0, 0x0250), (0x0370, 0x0400), (0x1E00, 0x1F00)]
    for start, end in ranges:
        for code in range(start, end):
            char = chr(code)
            if code in table:
                continue
            base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            if base and base != char:
                table[code] = base.lower()
    for code in range(0x0300, 0x0370):  # combining marks left by decomposed (NFD) input
        table[code] = None
    return table


_FOLD = _fold_table()
#: "!" and "?" always end a sentence; "." ";" ":" only before a capital, so that abbreviations
#: ("bspw. nach", "e.g. the", "Art. 15") do not cut a phrase in two.
_SENTENCE_RE = re.compile(r"[!?]+|[.;:]+(?=\s+(\S))|[.;:]+\s*$|\n[ \t]*\n|[•·]")
_CLAUSE_RE = re.compile(r",(?!\d)")
_NOT_WORD_RE = re.compile(r"[^\w|,]+|_+")


def _sentence_end(match: re.Match[str]) -> str:
    following = match.group(1)
    if following is not None and not following[0].isupper():
        return match.group(0)
    return " | "


def fold(text: str) -> str:
    """Lower case without diacritics (keeps punctuation)."""
    return text.lower().translate(_FOLD)


def normalise(text: str) -> str:
    """Folded words separated by single spaces, with `|` between sentences and `,` between clauses."""
    text = _SENTENCE_RE.sub(_sentence_end, text[:MAX_CHARS])
    text = fold(text)
    text = _CLAUSE_RE.sub(" , ", text)
    text = _NOT_WORD_RE.sub(" ", text)
    return " ".join(text.split())
