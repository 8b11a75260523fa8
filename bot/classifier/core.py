"""The classifier: automatic mail first (loop, bounce, auto-reply, list), then request and rights."""
from __future__ import annotations

import math
from typing import Callable, Iterable

from bot.classifier.automatic import auto_reply_evidence, mailing_list_evidence
from bot.classifier.bounces import bounce_evidence, has_null_return_path
from bot.classifier.cues import cue
from bot.classifier.headers import Headers, is_reply_subject
from bot.classifier.language import SAMPLE_CHARS, detect, phrase_votes
from bot.classifier.lexicon import index_hits, load
from bot.classifier.loopguard import loop_evidence, own_list_ids
from bot.classifier.rights import LEAD_CHARS, find_rights
from bot.classifier.textnorm import normalise
from bot.intake import Classification
from bot.models import Message

MAX_CUES = 10
#: A request needs an explicit cue, or this much weight, or half of it in a privacy context.
REQUEST_SCORE = 4.0
CONTEXT_REQUEST_SCORE = 2.0
#: A further right needs at least one strong cue's worth of weight outside hypothetical clauses.
FURTHER_RIGHT_SCORE = 3.0
#: A message of at most this many words (subject and body) with a request phrase is a command.
COMMAND_WORDS = 5
#: Distinct footer/notice phrases ("click here", "to unsubscribe") that make a text read as bulk mail.
BULK_NOTICES = 2


def _request_confidence(score: float, context: bool) -> float:
    return min(0.99, 1.0 - 0.5 * math.exp(-score / 4.0) + (0.04 if context else 0.0))


def make_classifier(own_addresses: Iterable[str] = ()) -> Callable[[Message], Classification]:
    """A classifier that also recognises our own mail: `own_addresses` are the addresses we send from."""
    own = tuple(sorted({a.strip().lower() for a in own_addresses if a and a.strip()}))
    list_ids = own_list_ids(own)
    lexicons = load()

    def classify(message: Message) -> Classification:
        headers = Headers(message.headers)
        subject = message.subject or ""
        text = message.text or ""
        if not text.strip() and message.html:
            from bot.mailtext import html_to_text  # only for channels that hand over HTML alone
            text = html_to_text(message.html)
        norm_subject = normalise(subject)
        norm_body = normalise(text)
        joined = norm_subject + " | " + norm_body
        subject_hits = index_hits(lexicons.subjects.find(norm_subject))
        hits = lexicons.body.find(joined)
        index = index_hits(hits)
        body_start = len(norm_subject) + 3
        body_index = {kind: [(h, c) for h, c in found if h.start >= body_start]  # the subject has its own rules
                      for kind, found in index.items() if kind in ("auto_reply_body", "bounce_body")}
        language = detect(subject, text, lexicons, phrase_votes(hits), joined[:SAMPLE_CHARS])
        language_cue = cue("language", language=language.language, detail=language.detail)
        reply_subject = is_reply_subject(subject)

        def automatic(kind: str, confidence: float, reasons: list[str]) -> Classification:
            return Classification(kind, [], language.language, confidence, (reasons + [language_cue])[:MAX_CUES])

        loop = loop_evidence(headers, message.sender or "", message.message_id or "", own)
        if loop:
            return automatic("auto_reply", 0.99, loop)
        bounce = bounce_evidence(headers, message.sender or "", message.sender_name or "", text, subject_hits,
                                 body_index, reply_subject)
        if bounce.decisive:
            return automatic("bounce", 0.99, bounce.decisive + bounce.weak)
        auto = auto_reply_evidence(headers, subject_hits, body_index, reply_subject)
        if auto.decisive:
            return automatic("auto_reply", 0.97, auto.decisive + auto.weak)
        if len(bounce.weak) >= 2:
            return automatic("bounce", 0.85, bounce.weak)
        if has_null_return_path(headers):  # only automatic mail has an empty envelope sender
            if auto.weak:
                return automatic("auto_reply", 0.85, [cue("null_return_path")] + auto.weak)
            return automatic("bounce", 0.8, [cue("null_return_path")] + bounce.weak)
        if len(auto.weak) >= 2:
            return automatic("auto_reply", 0.8, auto.weak)
        listed = mailing_list_evidence(headers, list_ids)
        if listed:
            return automatic("other", 0.95, listed)

        finding = find_rights(joined, index, lexicons, body_start + LEAD_CHARS)
        ranked = sorted(finding.scores, key=lambda r: (-finding.scores[r], finding.first_at[r], r))
        cues = [cue(key, **values) for _, key, values in sorted(finding.cues, key=lambda c: -c[0])[:MAX_CUES]]
        if not ranked:
            return Classification("other", [], language.language, 0.9, [cue("no_request_cue"), language_cue])
        main = ranked[0]
        top = finding.scores[main]
        if finding.notices >= BULK_NOTICES:
            # newsletter-like text: only a request written at the top (a customer forwarding one) counts
            is_request = main in finding.lead_strong
        else:
            is_request = (main in finding.strong or top >= REQUEST_SCORE
                          or (top >= CONTEXT_REQUEST_SCORE and finding.context and not finding.service)
                          # "Unsubscribe", "Delete account": a message of a few words is a command
                          or (top >= CONTEXT_REQUEST_SCORE and not finding.service
                              and joined.count(" ") < COMMAND_WORDS + 2))
        if not is_request:
            reasons = cues[:MAX_CUES - 2] + [cue("too_weak"), language_cue]
            return Classification("other", [], language.language, max(0.5, 0.9 - 0.1 * top), reasons)
        rights = [main] + [r for r in ranked[1:] if finding.further.get(r, 0.0) >= FURTHER_RIGHT_SCORE]
        reasons = cues[:MAX_CUES - 1] + [language_cue]
        return Classification("request", rights, language.language, _request_confidence(top, finding.context),
                               reasons)

    return classify


def own_addresses_of(config) -> list[str]:  # noqa: ANN001 - bot.config.Config, imported lazily by callers
    """The addresses dsarbot sends from or receives at: the loop guard ignores mail from them."""
    return [config.service.privacy_address, config.smtp.from_address]
