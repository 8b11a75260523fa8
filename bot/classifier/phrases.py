"""Compiles lexicon phrases into one regex (a character trie) and finds them in folded text.

Phrase syntax (see lexicons/README.md): words separated by spaces; `word*` matches any ending;
`(a|b|)` lists alternatives (an empty one makes the group optional); `~N` allows up to N words in
between. Thousands of phrases cost one scan: the trie shares prefixes, so the regex engine rejects
most positions after one character, instead of trying every phrase at every position.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, Iterable, TypeVar

from bot.classifier.textnorm import normalise

T = TypeVar("T")

_GAP_RE = re.compile(r"~(\d{1,2})")
_GAP_REGEX = r"(?:[^\s|]+ ){0,%d}"  # up to N words (or commas), never across a sentence end


class PhraseError(ValueError):
    """A lexicon phrase that cannot be compiled; the message names it."""


# A phrase is parsed into units: ("word", text, stem) | ("gap", n) | ("group", alternatives, optional)
Unit = tuple


def parse(phrase: str) -> list[Unit]:
    units: list[Unit] = []
    i = 0
    while i < len(phrase):
        char = phrase[i]
        if char.isspace():
            i += 1
        elif char == "(":
            close = phrase.find(")", i)
            if close < 0 or "(" in phrase[i + 1:close]:
                raise PhraseError(f"phrase {phrase!r}: unbalanced or nested parentheses")
            # "(personal |)data" is fine (the space is inside); "right(en|)" would silently mean "right en"
            raw = [a for a in phrase[i + 1:close].split("|") if a]
            before = phrase[i - 1] if i > 0 else " "
            after = phrase[close + 1] if close + 1 < len(phrase) else " "
            if (before.isalnum() and not all(a[0].isspace() for a in raw)) or \
                    ((after.isalnum() or after == "*") and not all(a[-1].isspace() for a in raw)):
                raise PhraseError(f"phrase {phrase!r}: a group must stand apart from words (spaces around it)")
            alternatives = [parse(a) for a in phrase[i + 1:close].split("|")]
            units.append(("group", [a for a in alternatives if a], any(not a for a in alternatives)))
            i = close + 1
        else:
            j = i
            while j < len(phrase) and not phrase[j].isspace() and phrase[j] != "(":
                j += 1
            token = phrase[i:j]
            gap = _GAP_RE.fullmatch(token)
            if gap:
                units.append(("gap", int(gap.group(1))))
            else:
                text = " ".join(normalise(token.rstrip("*")).split())
                if not text:
                    raise PhraseError(f"phrase {phrase!r}: token {token!r} has no letters")
                units.append(("word", text, token.endswith("*")))
            i = j
    return units


def expand_head(units: list[Unit]) -> list[list[Unit]]:
    """Spell out a leading group (so that every phrase starts with literal text, the trie key)."""
    if not units or units[0][0] != "group":
        return [units]
    _, alternatives, optional = units[0]
    rest = units[1:]
    out: list[list[Unit]] = []
    for alternative in alternatives + ([[]] if optional else []):
        out.extend(expand_head(alternative + rest))
    return out


def _regex(units: list[Unit]) -> str:
    return "".join(re.escape(t) if lit else t for lit, t in _fragments(units))


def _fragments(units: list[Unit]) -> list[tuple[bool, str]]:
    """(is_literal, text) pieces; literal pieces are unescaped text."""
    out: list[tuple[bool, str]] = []
    gap = -1
    first = True
    for unit in units:
        if unit[0] == "gap":
            gap = unit[1]
            continue
        separator: tuple[bool, str] | None = None
        gap_before = gap >= 0
        if not first:
            separator = (False, " " + _GAP_REGEX % gap) if gap >= 0 else (True, " ")
        gap = -1
        if unit[0] == "word":
            if separator:
                out.append(separator)
            out.append((True, unit[1]))
            if unit[2]:
                out.append((False, r"\w*"))
        else:
            _, alternatives, optional = unit
            body = "(?:" + "|".join(_regex(a) for a in alternatives) + ")"
            if optional:
                if gap_before:
                    raise PhraseError("a gap cannot precede an optional group (write the optional word out)")
                sep = "" if separator is None else (re.escape(separator[1]) if separator[0] else separator[1])
                out.append((False, "(?:" + sep + body + ")?"))
                if first:  # an optional first unit is spelled out by expand_head, never reached
                    raise PhraseError("optional group cannot open a phrase")
                continue
            if separator:
                out.append(separator)
            out.append((False, body))
        first = False
    if gap >= 0:
        raise PhraseError("a gap cannot end a phrase")
    return out


@dataclass(frozen=True)
class Compiled:
    literal: str  # leading literal text (trie key)
    suffix: str  # regex for the rest
    has_gap: bool

    @property
    def source(self) -> str:
        return re.escape(self.literal) + self.suffix


def compile_phrase(phrase: str) -> list[Compiled]:
    """A lexicon phrase -> one or more (literal prefix, regex suffix), over normalised text."""
    units = parse(phrase)
    if not units or units[0][0] == "gap":
        raise PhraseError(f"phrase {phrase!r} must start with a word")
    compiled = []
    for spelled in expand_head(units):
        if not spelled:
            raise PhraseError(f"phrase {phrase!r} can match nothing")
        try:
            fragments = _fragments(spelled)
        except PhraseError as exc:
            raise PhraseError(f"phrase {phrase!r}: {exc}") from None
        literal = []
        for index, (is_literal, text) in enumerate(fragments):
            if not is_literal:
                break
            literal.append(text)
        rest = fragments[len(literal):]
        literal_text = "".join(literal)
        if not literal_text.strip():
            raise PhraseError(f"phrase {phrase!r} must start with literal letters")
        has_gap = any(u[0] == "gap" for u in spelled) or "{0," in "".join(t for _, t in rest)
        compiled.append(Compiled(literal_text, "".join(re.escape(t) if lit else t for lit, t in rest), has_gap))
    return compiled


def _trie_source(items: Iterable[Compiled]) -> str:
    trie: dict = {}
    for item in items:
        node = trie
        for char in item.literal:
            node = node.setdefault(char, {})
        node.setdefault("", set()).add(item.suffix)

    def build(node: dict) -> str:
        alternatives = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        ends = sorted(node.get("", ()), key=lambda s: (-len(s), s))  # longer suffixes first
        alternatives += [s for s in ends if s]
        optional = "" in node.get("", ())
        if not alternatives:
            return ""
        if len(alternatives) == 1 and not optional:
            return alternatives[0]
        return "(?:" + "|".join(alternatives) + ")" + ("?" if optional else "")

    return build(trie)


@dataclass(frozen=True)
class Hit(Generic[T]):
    start: int
    end: int
    text: str
    payloads: tuple[T, ...]


class PhraseSet(Generic[T]):
    """Many phrases, each with a payload; `find` returns the hits in a normalised text.

    The trie regex only finds where some phrase starts; the phrases sharing the first letters of
    that position are then tried one by one, and the longest wins (regex alternation is ordered,
    not longest-first: "delete my" would otherwise shadow "delete my account").
    """

    def __init__(self, phrases: Iterable[tuple[str, T]]) -> None:
        by_source: dict[str, tuple[Compiled, list[T]]] = {}
        for phrase, payload in phrases:
            for compiled in compile_phrase(phrase):
                slot = by_source.setdefault(compiled.source, (compiled, []))
                if payload not in slot[1]:
                    slot[1].append(payload)
        # Candidates by first word: a phrase whose literal opens with a whole word is filed under it;
        # one that opens with a stem ("supprim*") under the stem, looked up by the word's prefixes.
        self._by_word: dict[str, list[tuple[re.Pattern[str], bool, tuple[T, ...]]]] = {}
        self._by_stem: dict[str, list[tuple[re.Pattern[str], bool, tuple[T, ...]]]] = {}
        for compiled, payloads in by_source.values():
            entry = (re.compile(compiled.source + r"(?!\S)"), compiled.has_gap, tuple(payloads))
            literal = compiled.literal
            if " " in literal or not compiled.suffix or compiled.suffix.startswith((" ", "\\ ", "(?:\\ ")):
                self._by_word.setdefault(literal.split(" ", 1)[0], []).append(entry)
            else:
                self._by_stem.setdefault(literal, []).append(entry)
        self._stem_lengths = sorted({len(k) for k in self._by_stem})
        source = _trie_source(c for c, _ in by_source.values())
        # Searched in " " + text: opening with a literal space lets the engine jump from word to
        # word, where a look-behind would be tried at every character.
        self._regex = re.compile(" " + source + r"(?!\S)") if source else None
        self.size = len(by_source)

    def _longest_at(self, text: str, start: int) -> tuple[int, bool, tuple[T, ...]]:
        """(end, has_gap, payloads) of the longest phrase starting at `start`."""
        best_end, best_gap, payloads = -1, False, ()
        space = text.find(" ", start)
        word = text[start:] if space < 0 else text[start:space]
        candidates = self._by_word.get(word, [])
        by_stem = self._by_stem
        for length in self._stem_lengths:
            if length > len(word):
                break
            bucket = by_stem.get(word[:length])
            if bucket:
                candidates = candidates + bucket
        for pattern, has_gap, found in candidates:
            match = pattern.match(text, start)
            if match is None or match.end() < best_end:
                continue
            if match.end() > best_end:
                best_end, best_gap, payloads = match.end(), has_gap, found
            else:
                payloads = payloads + tuple(p for p in found if p not in payloads)
                best_gap = best_gap and has_gap
        return best_end, best_gap, payloads

    def find(self, text: str) -> list[Hit[T]]:
        """Hits at every word start (overlapping), minus hits inside a longer contiguous phrase."""
        if self._regex is None:
            return []
        hits: list[Hit[T]] = []
        cover_end = -1  # end of the furthest contiguous (gap-free) phrase seen so far
        search = self._regex.search
        spaced = " " + text  # index i in `spaced` is i - 1 in `text`
        pos = 0
        while True:
            match = search(spaced, pos)
            if match is None:
                break
            start = match.start()  # the space before the word in `spaced` = the word's start in `text`
            end, has_gap, payloads = self._longest_at(text, start)
            if end > cover_end and payloads:
                hits.append(Hit(start, end, text[start:end], payloads))
                if not has_gap:
                    cover_end = end
            nxt = text.find(" ", start)
            if nxt < 0:
                break
            pos = nxt + 1  # the space before the next word, in `spaced`
        return hits
