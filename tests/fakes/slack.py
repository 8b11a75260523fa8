"""A local Slack: the Web API methods dsarbot calls, and requests signed the way Slack signs them.

Web API shapes from the method reference pages (https://docs.slack.dev/reference/methods/<name>):
chat.postMessage, chat.update, chat.postEphemeral, views.open, auth.test, conversations.history,
conversations.replies, users.info. Errors are HTTP 200 with `{"ok": false, "error": ...}` (bad
token: `invalid_auth`); rate limits are HTTP 429 with Retry-After (https://docs.slack.dev/apis/web-api/rate-limits).
Messages written through the fake are checked against Block Kit's limits; a breach fails the test.

Interaction payloads (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload,
.../view-interactions-payload) and slash commands (https://docs.slack.dev/interactivity/implementing-slash-commands)
are built here and signed with the v0 scheme: `v0=` + HMAC-SHA256(signing secret, `v0:{timestamp}:{body}`)
(https://docs.slack.dev/authentication/verifying-requests-from-slack).
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode

from tests.fakes.http_fake import FakeApi, Reply, Seen

TOKEN = "xoxb-dsarbot-test"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0DSARBOT"
BOT_USER = "U0BOTUSER"
BOT_ID = "B0BOTID"
CHANNEL = "C0CASES"
SCOPES = "chat:write,commands,users:read,channels:history"


def args(seen: Seen) -> dict[str, Any]:
    """A Web API call's arguments, wherever the client put them (query, form or JSON body)."""
    merged: dict[str, Any] = {k: v[0] for k, v in seen.query.items()}
    content_type = seen.headers.get("content-type", "")
    if seen.body and "json" in content_type:
        merged.update(seen.json())
    elif seen.body:
        merged.update({k: v[0] for k, v in parse_qs(seen.body.decode(), keep_blank_values=True).items()})
    for name in ("blocks", "metadata", "view"):
        if isinstance(merged.get(name), str):
            merged[name] = json.loads(merged[name])
    return merged


def _true(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


class FakeSlack:
    """Channels, messages, ephemerals, modals and users of one workspace, behind the Web API."""

    def __init__(self, scopes: str = SCOPES) -> None:
        self.scopes = scopes
        self.api = FakeApi("slack", self._authorized, Reply(200, {"ok": False, "error": "invalid_auth"}))
        self.channels: dict[str, list[dict[str, Any]]] = {CHANNEL: []}
        self.users: dict[str, dict[str, Any]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []  # what was posted to response_url
        self.triggers: set[str] = set()
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        for method, handler in {
            "auth.test": self._auth_test, "chat.postMessage": self._post, "chat.update": self._update,
            "chat.postEphemeral": self._ephemeral, "views.open": self._views_open,
            "conversations.history": self._history, "conversations.replies": self._replies,
            "users.info": self._users_info,
        }.items():
            self.api.route("POST", f"/api/{method}", handler)
        self.api.route("POST", "/respond/{hook}", self._respond)

    # --- set-up and inspection ----------------------------------------------------------------
    def start(self) -> "FakeSlack":
        self.api.start()
        return self

    def stop(self) -> None:
        self.api.stop()

    @property
    def base_url(self) -> str:
        return f"{self.api.url}/api/"

    def add_user(self, user_id: str, **profile: Any) -> None:
        self.users[user_id] = {"id": user_id, "team_id": TEAM, "name": user_id.lower(), "deleted": False,
                               "is_bot": False, "is_restricted": False, "is_ultra_restricted": False, **profile}

    def trigger(self) -> str:
        """A trigger_id as Slack puts in an interaction payload (valid for views.open)."""
        trigger_id = f"{next(self._seq)}.{int(time.time())}.trigger"
        self.triggers.add(trigger_id)
        return trigger_id

    def top_level(self, channel: str = CHANNEL) -> list[dict[str, Any]]:
        return [m for m in self.channels[channel] if "thread_ts" not in m or m["thread_ts"] == m["ts"]]

    def thread(self, ts: str, channel: str = CHANNEL) -> list[dict[str, Any]]:
        return [m for m in self.channels[channel] if m.get("thread_ts") == ts]

    def message(self, ts: str, channel: str = CHANNEL) -> dict[str, Any]:
        return next(m for m in self.channels[channel] if m["ts"] == ts)

    def bodies(self) -> list[str]:
        """Every request body the fake received, decoded (to look for what must never be sent)."""
        return [unquote_plus(s.body.decode("utf-8", "replace")) + " " + json.dumps(s.query, ensure_ascii=False)
                for s in self.api.requests]

    # --- the Web API ---------------------------------------------------------------------------
    def _authorized(self, seen: Seen) -> bool:
        return seen.path.startswith("/respond/") or seen.headers.get("authorization") == f"Bearer {TOKEN}"

    def _ts(self) -> str:
        return f"{time.time():.0f}.{next(self._seq):06d}"

    def _problem(self, what: str) -> None:
        self.api.unexpected.append(what)

    def _auth_test(self, seen: Seen) -> Reply:
        return Reply(200, {"ok": True, "url": "https://dsarbot-test.slack.com/", "team": "DSAR Test", "user": "dsarbot",
                           "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False},
                     {"x-oauth-scopes": self.scopes})

    def _post(self, seen: Seen) -> dict[str, Any]:
        a = args(seen)
        channel = a.get("channel", "")
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if not a.get("text") and not a.get("blocks"):
            return {"ok": False, "error": "no_text"}
        self._check_blocks(a.get("blocks") or [])
        message: dict[str, Any] = {"type": "message", "ts": self._ts(), "text": a.get("text", ""),
                                   "blocks": a.get("blocks") or [], "user": BOT_USER, "bot_id": BOT_ID}
        if a.get("thread_ts"):
            if not any(m["ts"] == a["thread_ts"] for m in self.channels[channel]):
                self._problem(f"chat.postMessage in an unknown thread {a['thread_ts']}")
            message["thread_ts"] = a["thread_ts"]
            message["reply_broadcast"] = _true(a.get("reply_broadcast"))
        if a.get("metadata"):
            message["metadata"] = a["metadata"]
        with self._lock:
            self.channels[channel].append(message)
        return {"ok": True, "channel": channel, "ts": message["ts"],
                "message": {k: v for k, v in message.items() if k != "metadata"}}

    def _update(self, seen: Seen) -> dict[str, Any]:
        a = args(seen)
        messages = self.channels.get(a.get("channel", ""))
        if messages is None:
            return {"ok": False, "error": "channel_not_found"}
        found = next((m for m in messages if m["ts"] == a.get("ts")), None)
        if found is None:
            return {"ok": False, "error": "message_not_found"}
        self._check_blocks(a.get("blocks") or [])
        found.update(text=a.get("text", found["text"]), blocks=a.get("blocks") or [], edited={"user": BOT_USER})
        found["updates"] = found.get("updates", 0) + 1
        return {"ok": True, "channel": a["channel"], "ts": found["ts"], "text": found["text"],
                "message": {k: v for k, v in found.items() if k != "metadata"}}

    def _ephemeral(self, seen: Seen) -> dict[str, Any]:
        a = args(seen)
        if a.get("channel") not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if a.get("user") not in self.users:
            return {"ok": False, "error": "user_not_in_channel"}
        self.ephemerals.append({"channel": a["channel"], "user": a["user"], "text": a.get("text", "")})
        return {"ok": True, "message_ts": self._ts()}

    def _views_open(self, seen: Seen) -> dict[str, Any]:
        a = args(seen)
        if a.get("trigger_id") not in self.triggers:
            return {"ok": False, "error": "invalid_trigger_id"}
        self.triggers.discard(a["trigger_id"])
        view = a.get("view") or {}
        if view.get("type") != "modal" or len(view.get("title", {}).get("text", "")) > 24:
            return {"ok": False, "error": "invalid_arguments"}
        self._check_blocks(view.get("blocks") or [])
        opened = {**view, "id": f"V{next(self._seq):08d}", "team_id": TEAM, "state": {"values": {}},
                  "hash": f"{int(time.time())}.abc", "app_id": "A0DSARBOT", "bot_id": BOT_ID}
        self.views.append(opened)
        return {"ok": True, "view": opened}

    def _page(self, messages: list[dict[str, Any]], a: dict[str, Any], newest_first: bool) -> dict[str, Any]:
        oldest = float(a.get("oldest") or 0)
        chosen = [m for m in messages if float(m["ts"]) > oldest]
        chosen.sort(key=lambda m: float(m["ts"]), reverse=newest_first)
        start = int(a.get("cursor") or 0)
        limit = int(a.get("limit") or 100)
        page = chosen[start:start + limit]
        if not _true(a.get("include_all_metadata")):
            page = [{k: v for k, v in m.items() if k != "metadata"} for m in page]
        more = start + limit < len(chosen)
        return {"ok": True, "messages": page, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _history(self, seen: Seen) -> dict[str, Any]:
        a = args(seen)
        if a.get("channel") not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        return self._page(self.top_level(a["channel"]), a, newest_first=True)

    def _replies(self, seen: Seen) -> dict[str, Any]:
        a = args(seen)
        if a.get("channel") not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        parent = [m for m in self.channels[a["channel"]] if m["ts"] == a.get("ts")]
        if not parent:
            return {"ok": False, "error": "thread_not_found"}
        return self._page(parent + self.thread(a["ts"], a["channel"]), a, newest_first=False)

    def _users_info(self, seen: Seen) -> dict[str, Any]:
        user = self.users.get(args(seen).get("user", ""))
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}

    def _respond(self, seen: Seen, hook: str) -> dict[str, Any]:
        self.responses.append({"hook": hook, **seen.json()})
        return {"ok": True}

    def _check_blocks(self, blocks: list[dict[str, Any]]) -> None:
        """Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks): breaking one fails the test."""
        if len(blocks) > 50:
            self._problem(f"{len(blocks)} blocks in one message (max 50)")
        for block in blocks:
            text = (block.get("text") or {}).get("text", "")
            if block.get("type") == "section" and len(text) > 3000:
                self._problem("a section text over 3000 characters")
            if len(block.get("fields") or []) > 10:
                self._problem("a section with more than 10 fields")
            for element in block.get("elements") or []:
                if element.get("type") == "button":
                    if len(element.get("value", "")) > 2000 or len(element["text"]["text"]) > 75:
                        self._problem("a button over Block Kit's limits")
                    if element["text"].get("type") != "plain_text":
                        self._problem("a button label that is not plain_text")


# --- requests from Slack to the app -------------------------------------------------------------
def signed_headers(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET,
                   content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    """The headers Slack adds: X-Slack-Request-Timestamp and X-Slack-Signature (v0 scheme)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": content_type}


def block_actions(fake: FakeSlack, user: str, action_id: str, value: str, message_ts: str,
                  channel: str = CHANNEL) -> str:
    """The form body of a button click: `payload=<block_actions JSON>`."""
    payload = {
        "type": "block_actions", "team": {"id": TEAM, "domain": "dsarbot-test"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0DSARBOT", "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": fake.trigger(), "channel": {"id": channel, "name": "privacy-requests"},
        "message": fake.message(message_ts, channel), "response_url": f"{fake.api.url}/respond/{next(fake._seq)}",
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value,
                     "text": {"type": "plain_text", "text": action_id}, "action_ts": f"{time.time():.6f}"}],
        "is_enterprise_install": False, "enterprise": None,
    }
    return urlencode({"payload": json.dumps(payload)})


def view_submission(user: str, view: dict[str, Any], reason: str) -> str:
    """The form body of a modal submitted with `reason` typed in its one input."""
    state = {"values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}}
    payload = {"type": "view_submission", "team": {"id": TEAM, "domain": "dsarbot-test"},
               "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
               "api_app_id": "A0DSARBOT", "token": "legacy-verification-token", "trigger_id": "1.2.trigger",
               "view": {**view, "state": state}, "response_urls": [], "is_enterprise_install": False}
    return urlencode({"payload": json.dumps(payload)})


def slash_command(fake: FakeSlack, user: str, text: str, team: str = TEAM) -> str:
    """The form body Slack posts for `/dsar <text>`."""
    return urlencode({"token": "legacy-verification-token", "team_id": team, "team_domain": "dsarbot-test",
                      "channel_id": CHANNEL, "channel_name": "privacy-requests", "user_id": user,
                      "user_name": user.lower(), "command": "/dsar", "text": text, "api_app_id": "A0DSARBOT",
                      "is_enterprise_install": "false", "response_url": f"{fake.api.url}/respond/{next(fake._seq)}",
                      "trigger_id": fake.trigger()})
