"""Which rights a message exercises: lexicon phrases and GDPR article numbers, weighed.

Each right collects the weights of its cues (strong 3, normal 2, weak 1), more in the subject
and the opening lines, where people state what they want. Cues in a second-person statement of
rights (a privacy notice or newsletter footer) do not count. Cues inside a hypothetical clause
("if the objection leads to the deletion of my account") count for the main right but do not add
a further one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.classifier.lexicon import HitIndex, Lexicons
from bot.classifier.textnorm import SENTENCE_END
from bot.models import Right

LEAD_CHARS = 400  # of the body: where the request is usually stated
LEAD_BONUS = 1.5
MAX_COUNT_PER_CUE = 2  # a phrase repeated ten times in a template is not ten times the evidence
STRONG = 3.0

#: GDPR article -> right. Article 7 only with paragraph 3 (withdrawal of consent).
ARTICLES = {15: Right.ACCESS, 16: Right.RECTIFICATION, 17: Right.ERASURE, 18: Right.RESTRICTION,
            20: Right.PORTABILITY, 21: Right.OBJECTION}


@dataclass
class RightsFinding:
    scores: dict[str, float] = field(default_factory=dict)  # every counted cue
    further: dict[str, float] = field(default_factory=dict)  # without hypothetical clauses
    strong: set[str] = field(default_factory=set)  # rights with an explicit (strong) cue
    lead_strong: set[str] = field(default_factory=set)  # ... in the subject or the opening lines
    first_at: dict[str, int] = field(default_factory=dict)
    notices: int = 0  # distinct notice/footer phrases: two or more and it reads like bulk mail
    context: bool = False
    service: bool = False
    cues: list[tuple[float, str, dict]] = field(default_factory=list)  # (weight, cue key, values): see cues.cue


class _Scorer:
    def __init__(self, text: str, index: HitIndex, lead_end: int) -> None:
        self.text = text
        self.lead_end = lead_end
        self.found = RightsFinding()
        notice_hits = [hit for hit, _ in index.get("notice", ())]
        self.found.notices = len({hit.text for hit in notice_hits})
        self.notices = [self._sentence_span(hit.start, hit.end) for hit in notice_hits]
        self.conditionals = [hit.start for hit, _ in index.get("conditional", ())]
        self.seen: dict[tuple[str, str], int] = {}

    def _sentence_span(self, start: int, end: int) -> tuple[int, int]:
        left = self.text.rfind(SENTENCE_END, 0, start)
        right = self.text.find(SENTENCE_END, end)
        return left + 1, (len(self.text) if right < 0 else right)

    def in_notice(self, start: int) -> bool:
        return any(a <= start < b for a, b in self.notices)

    def hypothetical(self, end: int) -> bool:
        """A conditional word between the start of the cue's clause (judged at its end) and its end."""
        if not self.conditionals:
            return False
        clause_start = max(self.text.rfind(",", 0, end), self.text.rfind(SENTENCE_END, 0, end))
        return any(clause_start < at < end for at in self.conditionals)

    def count(self, right: str, weight: float, key: tuple[str, str], start: int, end: int,
              text_cue: tuple[str, dict]) -> None:
        found = self.found
        self.seen[key] = seen = self.seen.get(key, 0) + 1
        if seen > MAX_COUNT_PER_CUE:
            return
        weighted = weight * (LEAD_BONUS if start < self.lead_end else 1.0)
        found.scores[right] = found.scores.get(right, 0.0) + weighted
        found.first_at.setdefault(right, start)
        if weight >= STRONG:
            found.strong.add(right)
            if start < self.lead_end:
                found.lead_strong.add(right)
        if not self.hypothetical(end):
            found.further[right] = found.further.get(right, 0.0) + weighted
        if seen == 1:
            found.cues.append((weighted, *text_cue))


_PATTERN_CHARS = frozenset("(|~*")


def shown(phrase: str, matched: str) -> str:
    """What the agent reads: the lexicon phrase when it is plain words, else the words that matched."""
    if not _PATTERN_CHARS & set(phrase):
        return phrase
    words = matched.replace(" , ", ", ").split()
    return " ".join(words) if len(words) <= 6 else " ".join(words[:3]) + " … " + " ".join(words[-2:])


def find_rights(text: str, index: HitIndex, lexicons: Lexicons, lead_end: int) -> RightsFinding:
    """`text`: normalised subject + body; `index`: its phrase hits by kind; `lead_end`: end of the lead zone."""
    scorer = _Scorer(text, index, lead_end)
    found = scorer.found
    found.context = any(not scorer.in_notice(hit.start) for kind in ("context", "regulation")
                        for hit, _ in index.get(kind, ()))
    found.service = any(not scorer.in_notice(hit.start) for hit, _ in index.get("service", ()))
    counted: set[tuple[int, str]] = set()  # a phrase in several lexicons counts once
    for hit, payload in index.get("right", ()):
        if (hit.start, payload.right) in counted or scorer.in_notice(hit.start):
            continue
        counted.add((hit.start, payload.right))
        scorer.count(payload.right, payload.weight, ("phrase", payload.phrase), hit.start, hit.end,
                     ("phrase", {"phrase": shown(payload.phrase, hit.text), "language": payload.language,
                                 "right": payload.right}))
    if "regulation" in index:  # article numbers only mean GDPR articles when the GDPR is named
        for match in lexicons.article_re.finditer(text):
            number = int(match.group(1))
            paragraph = int(match.group(2)) if match.group(2) else 0
            right = Right.WITHDRAW_CONSENT if (number, paragraph) == (7, 3) else ARTICLES.get(number)
            if right is None or scorer.in_notice(match.start()):
                continue
            scorer.count(str(right), STRONG, ("article", str(number)), match.start(), match.end(),
                         ("article", {"article": number if number != 7 else "7(3)", "right": str(right)}))
    return found
