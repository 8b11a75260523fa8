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

from typing import Iterable

from bot.classifier.lexicon import Cue, Lexicons
from bot.classifier.phrases import Hit
from bot.classifier.textnorm import normalise

DEFAULT_LANGUAGE = "en"
SAMPLE_CHARS = 1500
MAX_WORDS = 120  # plenty to tell languages apart; a long letter need not be read twice
MIN_EVIDENCE = 0.3  # one typical letter (ß, ł, ř…) is enough when there are no words to go by
LETTER_WEIGHT = 0.3
MAX_LETTER_COUNT = 5

#: Header lines quoted in bounces and forwards: they are not prose in any language.
_HEADER_LINES_RE = re.compile(
    r"^(?:Received|From|To|Cc|Subject|Date|Message-I[dD]|Return-Path|Content-[A-Za-z-]+|MIME-Version|Reply-To|"
    r"Sender|Delivered-To|DKIM-Signature|Authentication-Results|ARC-[A-Za-z-]+|Thread-[A-Za-z]+|In-Reply-To|"
    r"References|X-[A-Za-z0-9-]+):[^\n]*(?:\n[ \t]+[^\n]*)*", re.MULTILINE)
_NON_LATIN_RE = re.compile(r"[^\x00-\u024f\u1e00-\u1eff\u2000-\u206f]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")
#: (language, character class): scripts that name their language by themselves.
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


#: Evidence a matched lexicon phrase gives for its language (a phrase is worth a couple of words).
PHRASE_EVIDENCE = 1.5
MAX_VOTING_PHRASES = 20


def phrase_votes(hits: Iterable[Hit[Cue]]) -> dict[str, float]:
    """Languages of the lexicon phrases found; a phrase shared by several languages is split among them."""
    votes: dict[str, float] = {}
    for hit in hits[:MAX_VOTING_PHRASES]:
        languages = {p.language for p in hit.payloads}
        for language in languages:
            votes[language] = votes.get(language, 0.0) + PHRASE_EVIDENCE / len(languages)
    return votes


def detect(subject: str, text: str, lexicons: Lexicons, votes: dict[str, float] | None = None,
           normalised: str | None = None) -> LanguageGuess:
    """`normalised`: the caller's normalised subject + body, reused when the text quotes no headers."""
    body = text[:SAMPLE_CHARS]
    if _HEADER_LINES_RE.search(body):  # quoted headers (bounces, forwards) are not prose
        body = _HEADER_LINES_RE.sub(" ", body)
        normalised = None
    sample = subject + " | " + body
    words = (normalised if normalised is not None else normalise(sample)).split()[:MAX_WORDS]
    words += normalise(subject).split()  # the subject counts twice
    scores: dict[str, float] = dict(votes or {})
    stopwords = lexicons.stopwords
    known = [stopwords[word] for word in words if word in stopwords]
    hits = len(known)
    for owners in known:
        for language, weight in owners.items():
            scores[language] = scores.get(language, 0.0) + weight
    lowered = sample.lower()
    found_letters = lexicons.letters_re.findall(lowered) if lexicons.letters_re else []
    if found_letters:
        counts: dict[str, int] = {}
        for letter in found_letters:
            counts[letter] = counts.get(letter, 0) + 1
        for letter, count in counts.items():
            for language in lexicons.letter_owners[letter]:
                scores[language] = scores.get(language, 0.0) + LETTER_WEIGHT * min(count, MAX_LETTER_COUNT)
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
    return LanguageGuess(best, scores[best], f"{hits} common words" if hits else "phrases and letters")
