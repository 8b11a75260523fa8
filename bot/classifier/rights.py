"""Which rights a message exercises: lexicon phrases and GDPR article numbers, weighed.

Each right collects the weights of its cues (strong 3, normal 2, weak 1), more in the subject
and the opening lines, where people state what they want. Cues in a second-person statement of
rights (a privacy notice or newsletter footer) do not count. Cues inside a hypothetical clause
("if the objection leads to the deletion of my account") count for the main right but do not add
a further one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.classifier.cues import cue
from bot.classifier.lexicon import Cue, Lexicons
from bot.classifier.phrases import Hit
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
    notices: int = 0  # distinct notice/footer phrases: two or more and it reads like bulk mail
    first_at: dict[str, int] = field(default_factory=dict)
    context: bool = False
    service: bool = False
    cues: list[tuple[float, str]] = field(default_factory=list)  # (weight, text), for the agent


def _sentence_span(text: str, start: int, end: int) -> tuple[int, int]:
    left = text.rfind(SENTENCE_END, 0, start)
    right = text.find(SENTENCE_END, end)
    return left + 1, (len(text) if right < 0 else right)


def _is_hypothetical(text: str, start: int, end: int, conditionals: list[int]) -> bool:
    """A conditional word between the start of the cue's clause (judged at its end) and the cue's end."""
    clause_start = max(text.rfind(",", 0, end), text.rfind(SENTENCE_END, 0, end))
    return any(clause_start < at < end for at in conditionals)


def find_rights(text: str, hits: list[Hit[Cue]], lexicons: Lexicons, lead_end: int) -> RightsFinding:
    """`text`: normalised subject + body; `hits`: the body phrase hits in it; `lead_end`: end of the lead zone."""
    found = RightsFinding()
    notice_hits = [h for h in hits if any(p.kind == "notice" for p in h.payloads)]
    notices = [_sentence_span(text, h.start, h.end) for h in notice_hits]
    found.notices = len({h.text for h in notice_hits})
    conditionals = [h.start for h in hits if any(p.kind == "conditional" for p in h.payloads)]
    has_regulation = False
    seen: dict[tuple[str, str], int] = {}

    def in_notice(start: int) -> bool:
        return any(a <= start < b for a, b in notices)

    def count(right: str, weight: float, key: tuple[str, str], start: int, end: int, text_cue: str) -> None:
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > MAX_COUNT_PER_CUE:
            return
        weighted = weight * (LEAD_BONUS if start < lead_end else 1.0)
        found.scores[right] = found.scores.get(right, 0.0) + weighted
        found.first_at.setdefault(right, start)
        if weight >= STRONG:
            found.strong.add(right)
            if start < lead_end:
                found.lead_strong.add(right)
        if not _is_hypothetical(text, start, end, conditionals):
            found.further[right] = found.further.get(right, 0.0) + weighted
        if seen[key] == 1:
            found.cues.append((weighted, text_cue))

    for hit in hits:
        kinds = {p.kind for p in hit.payloads}
        if "regulation" in kinds:
            has_regulation = True
        if in_notice(hit.start):
            continue
        if kinds & {"context", "regulation"}:
            found.context = True
        if "service" in kinds:
            found.service = True
        rights_seen: set[str] = set()
        for payload in hit.payloads:
            if payload.kind != "right" or payload.right in rights_seen:
                continue
            rights_seen.add(payload.right)
            count(payload.right, payload.weight, ("phrase", payload.phrase), hit.start, hit.end,
                  cue("phrase", phrase=payload.phrase, language=payload.language, right=payload.right))
    if has_regulation:
        for match in lexicons.article_re.finditer(text):
            number = int(match.group(1))
            paragraph = int(match.group(2)) if match.group(2) else 0
            right = Right.WITHDRAW_CONSENT if (number, paragraph) == (7, 3) else ARTICLES.get(number)
            if right is None or in_notice(match.start()):
                continue
            count(str(right), STRONG, ("article", str(number)), match.start(), match.end(),
                  cue("article", article=number if number != 7 else "7(3)", right=str(right)))
    return found
