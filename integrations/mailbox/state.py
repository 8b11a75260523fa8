"""What the mailbox channel remembers in the store: where it is, what keeps failing, what it set aside.

- `kv` "mailbox:<account>:<folder>": the folder's UIDVALIDITY, the last UID handed to intake, and
  the UIDs that failed intake with their error counters (retried at every poll);
- `quarantine`: messages that failed `max_failures` times, with the reason and an encrypted copy
  in the vault, for an agent to see (never dropped);
- `kv` "mailbox-status:<account>": the last connection outcome (ok, auth_failed, not_ready,
  misconfigured) with a sentence saying what to do, for the desk and the startup checks.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from bot.attachments import content_key
from bot.store import Store
from bot.vault import Vault

log = logging.getLogger(__name__)

KV = "kv"
QUARANTINE = "quarantine"
QUARANTINE_FOLDER = "quarantine"


@dataclass
class FolderState:
    uidvalidity: int
    last_uid: int = 0
    failing: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> {count, error, at, vault_path}

    def to_doc(self, folder: str) -> dict[str, Any]:
        return {"folder": folder, "uidvalidity": self.uidvalidity, "last_uid": self.last_uid,
                "failing": self.failing}


class MailboxState:
    def __init__(self, store: Store, vault: Vault, account: str, folder: str, now: Callable[[], datetime]) -> None:
        self.store = store
        self.vault = vault
        self.account = account
        self.folder = folder
        self.now = now
        self.key = f"mailbox:{account}:{folder}"

    def load(self, uidvalidity: int) -> FolderState:
        """The folder's state; a new UIDVALIDITY means UIDs were renumbered: scan from the start
        (intake's dedupe turns the messages already done into duplicates)."""
        doc = self.store.get(KV, self.key)
        if doc is None:
            return FolderState(uidvalidity)
        if doc.get("uidvalidity") != uidvalidity:
            log.warning("mailbox folder %s: UIDVALIDITY changed (%s -> %s); rescanning it",
                        self.folder, doc.get("uidvalidity"), uidvalidity)
            return FolderState(uidvalidity)
        return FolderState(uidvalidity, int(doc.get("last_uid", 0)), dict(doc.get("failing", {})))

    def save(self, state: FolderState) -> None:
        self.store.put(KV, self.key, state.to_doc(self.folder))

    def failed(self, state: FolderState, uid: int | str, error: str, raw: bytes | None, max_failures: int,
               message_id: str = "") -> bool:
        """Count one failure of `uid`; True when it has now gone to quarantine. Call `save` after."""
        entry = state.failing.get(str(uid)) or {"count": 0, "first_at": self.now().isoformat(), "vault_path": ""}
        entry.update(count=entry["count"] + 1, error=error[:500], at=self.now().isoformat())
        if raw is not None and not entry["vault_path"]:
            # a copy at the first failure: the message is never lost, even if someone deletes it upstream
            entry["vault_path"] = f"{QUARANTINE_FOLDER}/{content_key(raw)}.eml"
            self.vault.write(entry["vault_path"], raw)
            entry["size"] = len(raw)
        if message_id:
            entry["message_id"] = message_id
        state.failing[str(uid)] = entry
        if entry["count"] < max_failures:
            log.warning("mailbox %s uid %s failed intake (%d/%d): %s", self.folder, uid, entry["count"],
                        max_failures, error[:200])
            return False
        self.quarantine(state, uid, entry["error"], entry)
        return True

    def quarantine(self, state: FolderState, uid: int | str, reason: str, entry: dict[str, Any]) -> None:
        key = entry["vault_path"].rsplit("/", 1)[-1].removesuffix(".eml") if entry.get("vault_path") else \
            f"{state.uidvalidity}-{uid}"
        self.store.put(QUARANTINE, key, {
            "account": self.account, "folder": self.folder, "uidvalidity": state.uidvalidity, "uid": uid,
            "reason": reason, "failures": entry.get("count", 0), "first_failed_at": entry.get("first_at", ""),
            "at": self.now().isoformat(), "vault_path": entry.get("vault_path", ""), "size": entry.get("size", 0),
            "message_id": entry.get("message_id", ""), "status": "open",
        })
        state.failing.pop(str(uid), None)
        log.error("mailbox %s uid %s quarantined after %s failures (see the quarantine list)",
                  self.folder, uid, entry.get("count", 0))

    def set_status(self, outcome: str, detail: str = "", mode: str = "") -> None:
        key = f"mailbox-status:{self.account}"
        previous = self.store.get(KV, key) or {}
        mode = mode or previous.get("mode", "")
        if (previous.get("state"), previous.get("detail"), previous.get("mode")) == (outcome, detail, mode):
            return  # unchanged: spare the store a write at every poll
        self.store.put(KV, key, {"state": outcome, "detail": detail, "mode": mode, "at": self.now().isoformat()})

    def status(self) -> dict[str, Any]:
        return self.store.get(KV, f"mailbox-status:{self.account}") or {}
