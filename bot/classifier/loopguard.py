"""Our own mail coming back (copies, forwards, loops between autoresponders) is never a request."""
from __future__ import annotations

from bot.classifier.cues import cue
from bot.classifier.headers import Headers, address_of

#: Stamped on every mail dsarbot sends (with the case reference as value).
REF_HEADER = "X-Dsarbot-Ref"
#: Prefix of the Message-IDs dsarbot gives its mail (bot.mailing.message_id_for).
OWN_MESSAGE_ID_PREFIX = "<dsarbot."


def own_list_ids(own_addresses: tuple[str, ...]) -> tuple[str, ...]:
    """List-Id forms of our addresses (`privacy.shop.example`), for a group relaying to us."""
    return tuple(a.replace("@", ".") for a in own_addresses) + own_addresses


def loop_evidence(headers: Headers, sender: str, message_id: str, own_addresses: tuple[str, ...]) -> list[str]:
    found = []
    if REF_HEADER in headers:
        found.append(cue("loop_header", header=REF_HEADER))
    if own_addresses and address_of(sender) in own_addresses:
        found.append(cue("loop_address"))
    if message_id.strip().lower().startswith(OWN_MESSAGE_ID_PREFIX):
        found.append(cue("loop_message_id"))
    return found
