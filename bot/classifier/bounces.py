"""Bounces and delivery reports: multipart/report, mail-system senders, null return path."""
from __future__ import annotations

import re

from bot.classifier.automatic import Evidence, report_type
from bot.classifier.cues import cue
from bot.classifier.headers import Headers, address_of, local_part
from bot.classifier.lexicon import HitIndex
from bot.classifier.rights import shown

MAIL_SYSTEM_LOCALS = frozenset({"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "postmaster",
                                "mail.daemon", "mdaemon", "bounce", "bounces"})
NO_REPLY_RE = re.compile(r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|noresponse)", re.I)
_SMTP_STATUS_RE = re.compile(r"\b(?:[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}|[45]\.\d\.\d{1,3} |(?:550|551|552|553|554) )")


def has_null_return_path(headers: Headers) -> bool:
    value = headers.first("Return-Path")
    return bool(value) and value.replace(" ", "") in ("<>", "<<>>")


def bounce_evidence(headers: Headers, sender: str, sender_name: str, text: str, subject_hits: HitIndex,
                    body_hits: HitIndex, reply_subject: bool) -> Evidence:
    evidence = Evidence()
    kind = report_type(headers)
    if kind == "delivery-status":
        evidence.decisive.append(cue("report", type=kind))
    if "X-Failed-Recipients" in headers:
        evidence.decisive.append(cue("header", name="X-Failed-Recipients", value="…"))
    address = address_of(sender)
    display = (sender_name + " " + sender).lower()
    local = local_part(address)
    if local in MAIL_SYSTEM_LOCALS or "mailer-daemon" in display or "mail delivery s" in display:
        evidence.decisive.append(cue("mail_system_sender", local=local or "mailer-daemon"))
    elif NO_REPLY_RE.match(local):
        evidence.weak.append(cue("noreply_sender"))
    if not reply_subject:
        for hit, found in subject_hits.get("bounce_subject", ()):
            if not found.anchored or hit.start == 0:
                evidence.weak.append(cue("subject_bounce", phrase=shown(found.phrase, hit.text),
                                         language=found.language))
                break
    for hit, found in body_hits.get("bounce_body", ())[:1]:
        evidence.weak.append(cue("body_bounce", phrase=shown(found.phrase, hit.text), language=found.language))
    if evidence.weak and _SMTP_STATUS_RE.search(text[:20_000]):  # only ever decides together with another sign
        evidence.weak.append(cue("smtp_status"))
    return evidence
