"""Desk agents: password checks against `[desk.agents]` and server-side login sessions in `kv`.

The Flask cookie only carries a random session id; the session itself (who, since when, last seen)
lives in the store, so logging out really ends it, a removed agent is locked out at the next click,
and expiry follows the injected clock.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Callable

from werkzeug.security import check_password_hash, generate_password_hash

from bot.config import AGENT_LOGIN
from bot.store import Store

PREFIX = "desk_session:"
#: Writing "last seen" on every click would rewrite the store on every page view; once a minute is enough.
SEEN_RESOLUTION = timedelta(minutes=1)


def normalise_login(login: str) -> str:
    return (login or "").strip().lower()


@lru_cache(maxsize=8)
def _dummy_hash(method: str) -> str:
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def check_password(agents: dict[str, str], login: str, password: str) -> bool:
    """True when `login` is an agent and `password` matches.

    An unknown login is checked against a dummy hash made the same way as the agents' (same
    method and cost), so the time taken does not tell which logins exist.
    """
    known = agents.get(login) if AGENT_LOGIN.fullmatch(login) else None
    if known is None:
        sample = next(iter(agents.values()), "scrypt")
        check_password_hash(_dummy_hash(sample.split("$", 1)[0]), password or "")
        return False
    return check_password_hash(known, password or "")


@dataclass(frozen=True)
class AgentSession:
    id: str
    login: str
    started: datetime


class AgentSessions:
    """Login sessions with an idle timeout and a maximum age."""

    def __init__(self, store: Store, now: Callable[[], datetime], idle: timedelta, max_age: timedelta) -> None:
        self.store = store
        self.now = now
        self.idle = idle
        self.max_age = max_age

    def start(self, login: str) -> AgentSession:
        self.prune()
        now = self.now()
        session_id = secrets.token_urlsafe(32)
        self.store.put("kv", PREFIX + session_id, {"login": login, "started": now.isoformat(),
                                                   "seen": now.isoformat()})
        return AgentSession(session_id, login, now)

    def _expired(self, doc: dict, now: datetime) -> bool:
        return (now - datetime.fromisoformat(doc["started"]) >= self.max_age
                or now - datetime.fromisoformat(doc["seen"]) >= self.idle)

    def check(self, session_id: str, agents: dict[str, str]) -> AgentSession | None:
        """The live session for this id, or None (unknown, expired, or its agent was removed)."""
        if not session_id:
            return None
        doc = self.store.get("kv", PREFIX + session_id)
        if doc is None:
            return None
        now = self.now()
        if self._expired(doc, now) or doc["login"] not in agents:
            self.store.delete("kv", PREFIX + session_id)
            return None
        if now - datetime.fromisoformat(doc["seen"]) >= SEEN_RESOLUTION:
            self.store.put("kv", PREFIX + session_id, {**doc, "seen": now.isoformat()})
        return AgentSession(session_id, doc["login"], datetime.fromisoformat(doc["started"]))

    def end(self, session_id: str) -> None:
        if session_id:
            self.store.delete("kv", PREFIX + session_id)

    def prune(self) -> int:
        """Forget expired sessions (called at each login, so they never pile up)."""
        now, removed = self.now(), 0
        for key in self.store.keys("kv"):
            if key.startswith(PREFIX):
                doc = self.store.get("kv", key)
                if doc and self._expired(doc, now):
                    self.store.delete("kv", key)
                    removed += 1
        return removed
