"""Folds text for matching: lower case, no accents, words separated by single spaces.

Lexicon phrases go through the same folding, so "droit d'accès", "Droit d'acces" and
"DROIT D’ACCÈS" all meet as `droit d acces`. Two punctuation marks survive as tokens because the
rules need them: `|` ends a sentence and `,` ends a clause. Everything here is C-level work
(`str.translate`, regexes that open with a lookahead so the engine can skip ahead): the
classifier normalises every message it sees.
"""
from __future__ import annotations

import re
import string
import unicodedata

#: Only this much of a message is read: requests are short, and a 5 MB body must not cost seconds.
MAX_CHARS = 30_000

SENTENCE_END = "|"
CLAUSE_END = ","

_UPPER = "".join(c for c in map(chr, range(0x41, 0x530)) if c.isalpha() and c.isupper())
#: "!" and "?" always end a sentence; "." ";" ":" only before a capital letter, so that
#: abbreviations ("bspw. nach", "e.g. the", "Art. 15") do not cut a phrase in two.
_SENTENCE_RE = re.compile(r"(?=[!?.;:\n•·])(?:[!?]+|[.;:]+(?=\s+[" + re.escape(_UPPER) + r"])|[.;:]+\s*$"
                          r"|\n[ \t]*\n|[•·])")
_NOT_WORD_RE = re.compile(r"(?=[^\w\s|,]|_)(?:[^\w\s|,]+|_+)")


#: Letters that Unicode decomposition does not reduce to a base letter.
_SPECIAL = {"ß": "ss", "ł": "l", "đ": "d", "ø": "o", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d", "ı": "i",
            "ς": "σ", "ħ": "h", "ŀ": "l", "ŧ": "t", "ŉ": "n"}
_SPECIAL_RE = re.compile("[" + "".join(_SPECIAL) + "]")
_COMBINING_RE = re.compile(r"[\u0300-\u036f]+")
#: ASCII punctuation to spaces in one `str.translate` (CPython's fast path for ASCII text).
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation + "_" if c not in "|,"})
#: Typographic marks common in Latin-script mail: replaced first so that the text becomes ASCII.
_TYPOGRAPHIC = ("\u2019", "\u2018", "\u201c", "\u201d", "\u00ab", "\u00bb", "\u2013", "\u2014", "\u2026",
                "\u00a0", "\u201e", "\u00b0", "\u00a7")


def fold(text: str) -> str:
    """Lower case without diacritics (keeps punctuation)."""
    text = text.lower()
    if text.isascii():
        return text
    text = _COMBINING_RE.sub("", unicodedata.normalize("NFKD", text))
    if _SPECIAL_RE.search(text):
        text = _SPECIAL_RE.sub(lambda m: _SPECIAL[m.group()], text)
    return text


def normalise(text: str) -> str:
    """Folded words separated by single spaces, with `|` between sentences and `,` between clauses."""
    text = _SENTENCE_RE.sub(" | ", text[:MAX_CHARS])
    text = fold(text).replace(",", " , ").replace("|", " | ")
    if not text.isascii():
        for mark in _TYPOGRAPHIC:
            if mark in text:
                text = text.replace(mark, " ")
    if text.isascii():
        text = text.translate(_PUNCTUATION)
    else:  # Greek, Cyrillic…: a regex is faster than translate's slow path
        text = _NOT_WORD_RE.sub(" ", text)
    return " ".join(text.split())
