"""The draft's files and the hash that binds an approval to them (SECURITY.md rule 4).

The draft hash is SHA-256 over every file in a canonical order (by name): for each file its name,
its size and the SHA-256 of its bytes. Approval records that hash; delivery calls
`verify_draft_files` to re-read and re-hash what it is about to send, so it ships exactly what
was approved or nothing.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

from bot.vault import Vault, VaultError, safe_name

DRAFTS = "drafts"
PREFIX_LENGTH = 16


@dataclass(frozen=True)
class DraftFile:
    name: str
    data: bytes
    content_type: str
    role: str  # letter_html (desk), letter_text (mail body), pdf, html, json, csv

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def draft_hash(entries: Iterable[tuple[str, int, str]]) -> str:
    """Hash of (name, size, sha256) triples in canonical order."""
    digest = hashlib.sha256(b"dsarbot-draft-v1\n")
    for name, size, sha in sorted(entries):
        digest.update(f"{name}\t{size}\t{sha}\n".encode("utf-8"))
    return digest.hexdigest()


def draft_folder(case_id: str, hash_: str) -> str:
    return f"{DRAFTS}/{safe_name(case_id)}/{hash_[:PREFIX_LENGTH]}"


def write_draft(vault: Vault, case_id: str, files: list[DraftFile]) -> tuple[str, list[dict[str, Any]]]:
    """Encrypt every file into the vault under drafts/<case>/<hash prefix>/; return (hash, file entries)."""
    names = [f.name for f in files]
    if len(set(names)) != len(names) or any(safe_name(n) != n for n in names):
        raise ValueError("draft file names must be unique and safe")
    hash_ = draft_hash((f.name, len(f.data), f.sha256) for f in files)
    folder = draft_folder(case_id, hash_)
    entries = []
    for f in sorted(files, key=lambda f: f.name):
        path = f"{folder}/{f.name}"
        vault.write(path, f.data)
        entries.append({"name": f.name, "vault_path": path, "sha256": f.sha256, "content_type": f.content_type,
                        "size": len(f.data), "role": f.role})
    return hash_, entries


def _read_checked(vault: Vault, draft: dict[str, Any]) -> dict[str, bytes] | None:
    files = draft.get("files") or []
    if not files or not draft.get("hash"):
        return None
    contents: dict[str, bytes] = {}
    entries = []
    for entry in files:
        try:
            data = vault.read(entry["vault_path"])
        except (VaultError, OSError, KeyError):
            return None
        sha = hashlib.sha256(data).hexdigest()
        if sha != entry.get("sha256") or len(data) != entry.get("size") or entry["name"] in contents:
            return None
        contents[entry["name"]] = data
        entries.append((entry["name"], len(data), sha))
    return contents if draft_hash(entries) == draft["hash"] else None


def verify_draft_files(vault: Vault, draft: dict[str, Any]) -> bool:
    """True only when every file of `draft` decrypts, matches its recorded size and SHA-256, and the
    files together give `draft["hash"]`."""
    return _read_checked(vault, draft) is not None


def read_verified(vault: Vault, draft: dict[str, Any]) -> dict[str, bytes]:
    """The draft's files by name: the very bytes that were checked against the hash (read once)."""
    contents = _read_checked(vault, draft)
    if contents is None:
        raise VaultError("the draft's files do not match its hash: draft again and have it approved")
    return contents
