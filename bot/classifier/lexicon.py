"""Loads the per-language lexicons (lexicons/*.yaml) once and compiles them into phrase sets."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.classifier.phrases import Hit, PhraseError, PhraseSet, compile_phrase
from bot.classifier.textnorm import fold, normalise
from bot.models import Right

LEXICON_DIR = Path(__file__).parent / "lexicons"
STRENGTHS = {"strong": 3.0, "normal": 2.0, "weak": 1.0}

#: Marker kinds found in the body besides rights (see lexicons/README.md).
MARKER_KINDS = ("regulation", "context", "service", "notice", "conditional", "not_conditional",
                "auto_reply_body", "bounce_body")
LIST_KEYS = ("stopwords", "article_words", *MARKER_KINDS, "auto_reply_subjects", "bounce_subjects")


class LexiconError(ValueError):
    """A lexicon file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Cue:
    """What a phrase means when found: payload of a phrase set."""

    kind: str  # "right" or one of MARKER_KINDS, or "auto_reply_subject" / "bounce_subject"
    language: str
    phrase: str  # as written in the lexicon: shown to the agent
    right: str = ""
    weight: float = 0.0
    anchored: bool = False  # subjects: must open the subject


#: Hits grouped by what they mean: kind -> [(hit, cue)], in text order.
HitIndex = dict[str, list[tuple[Hit[Cue], Cue]]]


def index_hits(hits: list[Hit[Cue]]) -> HitIndex:
    index: HitIndex = {}
    for hit in hits:
        for payload in hit.payloads:
            index.setdefault(payload.kind, []).append((hit, payload))
    return index


@dataclass
class Lexicons:
    languages: list[str]
    body: PhraseSet[Cue]
    subjects: PhraseSet[Cue]
    stopwords: dict[str, dict[str, float]]  # word -> {language: weight}
    letter_owners: dict[str, list[str]]  # typical letter -> languages it hints at
    letters_re: re.Pattern[str] | None
    article_re: re.Pattern[str]


def _load_file(path: Path) -> dict[str, Any]:
    # BaseLoader keeps every scalar a string: "on", "no", "si" are words here, not booleans.
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
    if not isinstance(data, dict) or data.get("language") != path.stem:
        raise LexiconError(f"{path.name}: must be a mapping with 'language: {path.stem}'")
    for key in LIST_KEYS:
        value = data.setdefault(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise LexiconError(f"{path.name}: '{key}' must be a list of strings")
    rights = data.get("rights") or {}
    unknown = set(rights) - {r.value for r in Right}
    if unknown:
        raise LexiconError(f"{path.name}: unknown rights {sorted(unknown)} (use {[r.value for r in Right]})")
    for right, levels in rights.items():
        if set(levels) - set(STRENGTHS):
            raise LexiconError(f"{path.name}: rights.{right} may only have {list(STRENGTHS)}")
    return data


def _cues(language: str, data: dict[str, Any]) -> tuple[list[tuple[str, Cue]], list[tuple[str, Cue]]]:
    body: list[tuple[str, Cue]] = []
    subjects: list[tuple[str, Cue]] = []
    for right, levels in (data.get("rights") or {}).items():
        for level, phrases in levels.items():
            for phrase in phrases or []:
                body.append((phrase, Cue("right", language, phrase, right, STRENGTHS[level])))
    for kind in MARKER_KINDS:
        for phrase in data[kind]:
            body.append((phrase, Cue(kind, language, phrase)))
    for phrase, _ in body + subjects:
        compile_phrase(phrase)  # fail here, where the file name is known
    for key, kind in (("auto_reply_subjects", "auto_reply_subject"), ("bounce_subjects", "bounce_subject")):
        for phrase in data[key]:
            anchored = phrase.startswith("^")
            text = phrase.lstrip("^")
            subjects.append((text, Cue(kind, language, text, anchored=anchored)))
    return body, subjects


def _article_regex(words: set[str]) -> re.Pattern[str]:
    """`art 17`, `article 7 3`, `artikel 21 abs 2` in normalised text -> groups (number, paragraph)."""
    alternatives = "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))
    return re.compile(r"(?<!\S)(?:%s) (\d{1,2})(?: (?:[a-z]{1,9} )?(\d{1,2}))?(?!\S)" % alternatives)


@lru_cache(maxsize=1)
def load() -> Lexicons:
    """All lexicons, compiled. Cached: loading takes a moment, matching then costs microseconds."""
    body: list[tuple[str, Cue]] = []
    subjects: list[tuple[str, Cue]] = []
    stopwords: dict[str, dict[str, float]] = {}
    letters: dict[str, str] = {}
    article_words: set[str] = set()
    languages: list[str] = []
    for path in sorted(LEXICON_DIR.glob("*.yaml")):
        data = _load_file(path)
        language = path.stem
        languages.append(language)
        try:
            file_body, file_subjects = _cues(language, data)
        except PhraseError as exc:
            raise LexiconError(f"{path.name}: {exc}") from exc
        body += file_body
        subjects += file_subjects
        for word in data["stopwords"]:  # folded: detection reads the normalised text
            for token in normalise(word).split():
                stopwords.setdefault(token, {})[language] = 1.0
        letters[language] = str(data.get("letters") or "")
        article_words.update(fold(w).replace(".", "") for w in data["article_words"])
    for word, owners in stopwords.items():  # a word shared by n languages says 1/n about each
        for language in owners:
            owners[language] = 1.0 / len(owners)
    letter_owners: dict[str, list[str]] = {}
    for language, chars in letters.items():
        for char in chars.lower():
            letter_owners.setdefault(char, []).append(language)
    letters_re = re.compile("[" + re.escape("".join(letter_owners)) + "]") if letter_owners else None
    try:
        return Lexicons(languages, PhraseSet(body), PhraseSet(subjects), stopwords, letter_owners, letters_re,
                        _article_regex(article_words))
    except PhraseError as exc:
        raise LexiconError(str(exc)) from exc
