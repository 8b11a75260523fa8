"""Failure counters in the store's `kv` collection: lock out a key after too many failures in a window.

Used for desk logins (per login name and per client address); fits any guessing target (codes,
links). Keys are hashed before they are stored, so what an attacker types never lands in the store
as written, and several processes sharing the store share the counters.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Callable

from bot.store import Store

COLLECTION = "kv"


class Throttle:
    """At most `limit` failures per key within `window`; older failures no longer count."""

    def __init__(self, store: Store, now: Callable[[], datetime], name: str, limit: int, window: timedelta) -> None:
        self.store = store
        self.now = now
        self.name = name
        self.limit = limit
        self.window = window

    def _key(self, key: str) -> str:
        return f"throttle:{self.name}:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"

    def _recent(self, failures: list[str], now: datetime) -> list[str]:
        since = now - self.window
        return [at for at in failures if datetime.fromisoformat(at) > since]

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again (0: it may try now)."""
        doc = self.store.get(COLLECTION, self._key(key))
        if not doc:
            return 0
        now = self.now()
        recent = sorted(self._recent(doc.get("failures", []), now))
        if len(recent) < self.limit:
            return 0
        # Allowed again once enough of the oldest failures have left the window.
        frees_at = datetime.fromisoformat(recent[len(recent) - self.limit]) + self.window
        return max(1, int((frees_at - now).total_seconds() + 0.999))

    def fail(self, key: str) -> None:
        now = self.now()

        def add(doc: dict | None) -> dict:
            # Keep no more than the limit: what lies beyond it cannot change the answer.
            recent = sorted(self._recent((doc or {}).get("failures", []), now) + [now.isoformat()])
            return {"failures": recent[-self.limit:]}

        self.store.update(COLLECTION, self._key(key), add)

    def clear(self, key: str) -> None:
        self.store.delete(COLLECTION, self._key(key))
