"""Documents a requester sends us to prove something (ID document, mandate): checked, bounded, encrypted.

Only PDF, JPEG and PNG are taken, recognised by their first bytes (the declared type and the file
name are the sender's claims); the size is bounded; the file goes to the vault under a name of
ours, and the sender's file name is kept only as cleaned-up metadata.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from bot.vault import Vault, safe_name

MAGIC = {
    b"%PDF-": "application/pdf",
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
}
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


class UploadRejected(ValueError):
    """Why a document was refused, as a catalogue key (shown to the requester in their language)."""

    def __init__(self, reason_key: str) -> None:
        super().__init__(reason_key)
        self.reason_key = reason_key


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def sniff(data: bytes) -> str:
    for magic, content_type in MAGIC.items():
        if data.startswith(magic):
            return content_type
    return ""


def store_document(vault: Vault, folder: str, upload: Upload, max_bytes: int) -> dict[str, Any]:
    """Check and encrypt one document under `folder`; returns its metadata for the case."""
    if not upload.data:
        raise UploadRejected("upload.empty")
    if len(upload.data) > max_bytes:
        raise UploadRejected("upload.too_large")
    content_type = sniff(upload.data)
    if not content_type:
        raise UploadRejected("upload.bad_type")
    path = f"{folder}/{uuid.uuid4().hex}.{EXTENSIONS[content_type]}"
    vault.write(path, upload.data)
    return {"vault_path": path, "sha256": hashlib.sha256(upload.data).hexdigest(), "size": len(upload.data),
            "content_type": content_type, "name": safe_name(upload.filename, default="document")}
