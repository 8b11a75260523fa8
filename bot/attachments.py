"""Attachments of incoming messages: kept encrypted in the vault, within size limits.

Every channel (mailbox, helpdesk webhooks, web form) stores the files it receives here and puts
the returned references on `Message.attachments`. The store only ever holds the reference. A file
over the limits is not kept but still listed (name, size, hash; `path` empty), so an agent knows it
existed and can look in the source system. Paths are derived from the content, so a replayed
message writes the same files again instead of new ones.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

from bot.models import Attachment
from bot.vault import Vault, safe_name

FOLDER = "attachments"


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024
    max_count: int = 30


def content_key(raw: bytes) -> str:
    """A folder name for one incoming item: the same bytes always give the same folder."""
    return hashlib.sha256(raw).hexdigest()[:32]


def store_attachments(vault: Vault, key: str, files: Iterable[tuple[str, str, bytes]],
                      limits: Limits = Limits()) -> list[Attachment]:
    """Encrypt each (filename, content type, data) under `attachments/<key>/` and return references."""
    kept: list[Attachment] = []
    for index, (filename, content_type, data) in enumerate(files):
        name = safe_name(filename or "", default=f"attachment-{index + 1}")
        digest = hashlib.sha256(data).hexdigest()
        path = ""
        if len(data) <= limits.max_bytes and sum(1 for a in kept if a.path) < limits.max_count:
            path = f"{FOLDER}/{key}/{index + 1:02d}-{name}"
            vault.write(path, data)
        kept.append(Attachment(filename=(filename or name)[:200], content_type=(content_type or "")[:100],
                               size=len(data), sha256=digest, path=path))
    return kept


def store_original(vault: Vault, key: str, raw: bytes) -> Attachment:
    """Keep the whole original item (a message that could not be read), for an agent to open."""
    path = f"{FOLDER}/{key}/original.eml"
    vault.write(path, raw)
    return Attachment(filename="original.eml", content_type="message/rfc822", size=len(raw),
                      sha256=hashlib.sha256(raw).hexdigest(), path=path)
