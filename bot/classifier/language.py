"""Which language a message is written in: offline, deterministic, about 50 µs a message.

A small model of our own rather than a package: the languages that matter are the ones we have
lexicons for, and for those the most frequent short words ("stopwords", kept in the lexicons)
decide reliably from a handful of words, which is what customers write. Letters typical of a
language (ß, ł, ř, ș…) break ties. Scripts other than Latin decide by themselves (Greek has a
lexicon; Cyrillic, Japanese, Chinese, Korean, Arabic and Hebrew are named but not analysed).
General-purpose detectors (langdetect, lingua, fastText) are either random unless seeded, heavy
(hundreds of MB of models) or need weights downloaded; they bring no accuracy we need here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from bot.classifier.lexicon import Lexicons

DEFAULT_LANGUAGE = "en"
SAMPLE_CHARS = 4000
MAX_WORDS = 600
MIN_EVIDENCE = 0.3  # one typical letter (ß, ł, ř…) is enough when there are no words to go by

_WORD_RE = re.compile(r"[^\W\d_]+")
_NON_LATIN_RE = re.compile(r"[^\x00-\u024f\u1e00-\u1eff\u2000-\u206f]")
#: (language, character class): scripts that name their language by themselves.
_HEADER_LINES_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,40}:[^\n]*(?:\n[ \t]+[^\n]*)*", re.MULTILINE)
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_SCRIPTS = [
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
]
_UKRAINIAN = re.compile(r"[іїєґІЇЄҐ]")


@dataclass
class LanguageGuess:
    language: str
    score: float  # evidence, in "words"
    detail: str  # e.g. "12 common words" — for the cues


def detect(subject: str, text: str, lexicons: Lexicons) -> LanguageGuess:
    body = _HEADER_LINES_RE.sub(" ", text[:SAMPLE_CHARS])  # quoted headers (bounces, forwards) are not prose
    sample = (subject + "\n" + subject + "\n" + body).lower()  # the subject counts twice
    scores: dict[str, float] = {}
    words = _WORD_RE.findall(sample, 0, len(sample))[:MAX_WORDS]
    stopwords = lexicons.stopwords
    hits = 0
    for word in words:
        owners = stopwords.get(word)
        if owners:
            hits += 1
            for language, weight in owners.items():
                scores[language] = scores.get(language, 0.0) + weight
    for language, letters in lexicons.letters.items():
        if letters:
            found = sum(min(sample.count(letter), 5) for letter in letters)
            if found:
                scores[language] = scores.get(language, 0.0) + 0.3 * found
    if _NON_LATIN_RE.search(sample):
        kana, han = len(_KANA.findall(sample)), len(_HAN.findall(sample))
        if kana or han:  # kana make it Japanese, even when kanji dominate
            language = "ja" if kana else "zh"
            scores[language] = scores.get(language, 0.0) + (kana + han) / 3.0
        for language, pattern in _SCRIPTS:
            count = len(pattern.findall(sample))
            if count:
                if language == "ru" and _UKRAINIAN.search(sample):
                    language = "uk"
                # about 4 letters (2 for Hangul syllables) per word
                scores[language] = scores.get(language, 0.0) + count / (2.0 if language == "ko" else 4.0)
    if not scores:
        return LanguageGuess(DEFAULT_LANGUAGE, 0.0, "no evidence")
    best = max(sorted(scores), key=lambda lang: scores[lang])  # sorted: ties break the same way every time
    if scores[best] < MIN_EVIDENCE:
        return LanguageGuess(DEFAULT_LANGUAGE, scores[best], "too little text")
    return LanguageGuess(best, scores[best], f"{hits} common words" if hits else "typical letters")
