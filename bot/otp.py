"""One-time codes and link tokens: random, short-lived, single use, stored hashed, checked in constant time.

A code is bound to a "challenge" (one address, one purpose) and counted against an attempts budget
shared by every code of the same `budget` (a case's verification, a delivery link), so asking for a
new code never buys more guesses. Neither codes nor tokens are ever stored in clear: the store keeps
an HMAC keyed with the service secret, so a copy of the store does not let anyone in.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Callable

from bot.store import Store

CODES = "codes"  # challenge id -> {"budget", "purpose", "digest", "expires_at", "used"}
TOKENS = "links"  # token digest -> {"purpose", "expires_at", ...what the link points at}
BUDGETS = "code_budgets"  # budget -> {"wrong": n, "locked": bool}


class Check(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"  # also: used, replaced by a newer code, or unknown
    LOCKED = "locked"  # too many wrong codes: an agent must look


@dataclass(frozen=True)
class Issued:
    challenge_id: str
    code: str  # shown once, in the mail; never stored
    expires_at: datetime


class Codes:
    """Issues and checks one-time codes. `secret` is the service secret; `now` is injected."""

    def __init__(self, store: Store, secret: str, now: Callable[[], datetime], *, digits: int = 6,
                 ttl_minutes: int = 10, max_attempts: int = 5) -> None:
        if digits < 6:
            raise ValueError("one-time codes have at least 6 digits")
        self.store = store
        self._key = hmac.new(secret.encode(), b"dsarbot one-time codes", hashlib.sha256).digest()
        self.now = now
        self.digits = digits
        self.ttl = timedelta(minutes=ttl_minutes)
        self.max_attempts = max_attempts

    def _digest(self, challenge_id: str, code: str) -> str:
        return hmac.new(self._key, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()

    def issue(self, budget: str, purpose: str, *, replaces: str = "") -> Issued:
        """A fresh code. `replaces` names an earlier challenge that stops working now."""
        challenge_id = uuid.uuid4().hex
        code = f"{secrets.randbelow(10 ** self.digits):0{self.digits}d}"
        expires = self.now() + self.ttl
        with self.store.transaction():
            if replaces:
                self.store.update(CODES, replaces, lambda d: {**d, "used": True} if d else None)
            self.store.put(CODES, challenge_id, {"budget": budget, "purpose": purpose,
                                                 "digest": self._digest(challenge_id, code),
                                                 "expires_at": expires.isoformat(), "used": False})
        return Issued(challenge_id, code, expires)

    def check(self, challenge_id: str, code: str, purpose: str) -> Check:
        """Consume the code when right; count a wrong one against the budget. Constant-time compare."""
        doc = self.store.get(CODES, challenge_id)
        if doc is None or doc.get("purpose") != purpose:
            return Check.EXPIRED
        budget = doc["budget"]
        if self.is_locked(budget):
            return Check.LOCKED
        if doc["used"] or self.now() >= _at(doc["expires_at"]):
            return Check.EXPIRED
        candidate = "".join(ch for ch in (code or "") if not ch.isspace())[:32]
        right = hmac.compare_digest(self._digest(challenge_id, candidate), doc["digest"])
        if right:
            outcome: dict[str, Check] = {}

            def consume(current: dict[str, Any] | None) -> dict[str, Any] | None:
                # Inside the store's atomic update: two parallel submissions cannot both succeed.
                if current is None or current["used"] or self.now() >= _at(current["expires_at"]):
                    outcome["result"] = Check.EXPIRED
                    return current
                outcome["result"] = Check.OK
                return {**current, "used": True, "used_at": self.now().isoformat()}

            self.store.update(CODES, challenge_id, consume)
            return outcome["result"]
        return Check.LOCKED if self._count_wrong(budget) else Check.WRONG

    def _count_wrong(self, budget: str) -> bool:
        """Count one wrong code; True when the budget is now exhausted."""
        def bump(doc: dict[str, Any] | None) -> dict[str, Any]:
            wrong = (doc or {}).get("wrong", 0) + 1
            return {"wrong": wrong, "locked": wrong >= self.max_attempts}

        return bool(self.store.update(BUDGETS, budget, bump)["locked"])

    def is_locked(self, budget: str) -> bool:
        return bool((self.store.get(BUDGETS, budget) or {}).get("locked"))

    def wrong_count(self, budget: str) -> int:
        return int((self.store.get(BUDGETS, budget) or {}).get("wrong", 0))

    def unlock(self, budget: str) -> None:
        """An agent lifts a lockout (after looking at the case)."""
        self.store.delete(BUDGETS, budget)


class Tokens:
    """Unguessable link tokens (for `/verify/<token>`, `/portal/<token>`), stored as digests only."""

    def __init__(self, store: Store, secret: str, now: Callable[[], datetime]) -> None:
        self.store = store
        self._key = hmac.new(secret.encode(), b"dsarbot link tokens", hashlib.sha256).digest()
        self.now = now

    def digest(self, token: str) -> str:
        return hmac.new(self._key, token.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def create(self, purpose: str, expires_at: datetime, **data: Any) -> str:
        """A random token: shown once (in the mail that carries it), then only its digest exists."""
        token = secrets.token_urlsafe(32)
        self._keep(token, purpose, expires_at, data)
        return token

    def derive(self, purpose: str, name: str, expires_at: datetime, **data: Any) -> str:
        """A token recomputable from the secret alone (so a resent mail can carry the same link
        without the link ever being stored in clear). `name` must be unique per link."""
        raw = hmac.new(self._key, f"derive:{purpose}:{name}".encode(), hashlib.sha256).digest()
        token = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        if self.store.get(TOKENS, self.digest(token)) is None:
            self._keep(token, purpose, expires_at, data)
        return token

    def _keep(self, token: str, purpose: str, expires_at: datetime, data: dict[str, Any]) -> None:
        self.store.put(TOKENS, self.digest(token), {"purpose": purpose, "expires_at": expires_at.isoformat(),
                                                    "created_at": self.now().isoformat(), **data})

    def resolve(self, token: str, purpose: str) -> dict[str, Any] | None:
        """What the token points at, or None when unknown, for another purpose, expired or revoked."""
        if not token or len(token) > 128:
            return None
        doc = self.store.get(TOKENS, self.digest(token))
        if doc is None or doc.get("purpose") != purpose or doc.get("revoked"):
            return None
        if self.now() >= _at(doc["expires_at"]):
            return None
        return {**doc, "digest": self.digest(token)}

    def update(self, digest: str, **changes: Any) -> None:
        self.store.update(TOKENS, digest, lambda d: {**d, **changes} if d else None)

    def revoke_where(self, **match: Any) -> int:
        """Revoke every token whose fields equal `match` (e.g. all links of a case)."""
        found = 0
        for key in self.store.keys(TOKENS):
            doc = self.store.get(TOKENS, key)
            if doc and not doc.get("revoked") and all(doc.get(k) == v for k, v in match.items()):
                self.update(key, revoked=True)
                found += 1
        return found


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)
