"""Slack's requests made safe before bolt reads them: the signature is checked on the raw bytes first,
then only the fields dsarbot uses are kept, with their types, in a clean body for bolt.

Bolt parses a request's body before it verifies the signature, and its helpers assume Slack's
shapes (`body["actions"][0]`, `"id" in body["team"]`): anyone could make it answer 500 with a
malformed body, and a signed but odd one crashed the listeners (found by tests/fuzz). Here an
unsigned, stale or malformed-signature request is refused with 401 before anything is parsed
(SECURITY.md: verify webhook signatures before parsing); a signed one that is not one of the
shapes we handle gets 400.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl

SIGNATURE_WINDOW = 300  # seconds either side of now (Slack's documented 5 minutes)
ID_FIELDS = ("user", "team", "channel")


def verified(raw: bytes, headers: Mapping[str, str], secret: str, now: Callable[[], float]) -> bool:
    """Slack's v0 scheme: `v0=` + HMAC-SHA256(secret, `v0:{timestamp}:{raw body}`), within the window
    (https://docs.slack.dev/authentication/verifying-requests-from-slack)."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not secret or not timestamp.isascii() or not timestamp.isdigit() or not signature.isascii():
        return False
    if abs(now() - int(timestamp)) > SIGNATURE_WINDOW:
        return False
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ids(payload: dict[str, Any]) -> dict[str, Any] | None:
    """`user`, `team`, `channel` as Slack sends them in interactions: objects with a string id."""
    out: dict[str, Any] = {}
    for name in ID_FIELDS:
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            return None
        out[name] = {"id": value["id"], **({"team_id": value["team_id"]} if isinstance(value.get("team_id"), str)
                                           else {})}
    return out if "user" in out else None


def _block_actions(payload: dict[str, Any]) -> dict[str, Any] | None:
    ids = _ids(payload)
    actions = payload.get("actions")
    if ids is None or not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return None
    action = actions[0]
    if _str(action.get("action_id")) is None or not isinstance(action.get("value", ""), str):
        return None
    container = _obj(payload.get("container"))
    return {"type": "block_actions", **ids, "trigger_id": _str(payload.get("trigger_id")) or "",
            "response_url": _str(payload.get("response_url")) or "",
            "container": {k: container[k] for k in ("type", "message_ts", "channel_id")
                          if isinstance(container.get(k), str)},
            "actions": [{"action_id": action["action_id"], "value": action.get("value", ""),
                         "block_id": _str(action.get("block_id")) or "", "type": _str(action.get("type")) or ""}]}


def _view_submission(payload: dict[str, Any]) -> dict[str, Any] | None:
    ids = _ids(payload)
    view = payload.get("view")
    if ids is None or not isinstance(view, dict) or _str(view.get("callback_id")) is None:
        return None
    values = {block: {action: {"value": field["value"]} for action, field in _obj(actions).items()
                      if isinstance(field, dict) and isinstance(field.get("value"), str)}
              for block, actions in _obj(_obj(view.get("state")).get("values")).items()}
    return {"type": "view_submission", **ids, "trigger_id": _str(payload.get("trigger_id")) or "",
            "view": {"id": _str(view.get("id")) or "", "type": _str(view.get("type")) or "modal",
                     "callback_id": view["callback_id"],
                     "private_metadata": _str(view.get("private_metadata")) or "", "state": {"values": values}}}


COMMAND_FIELDS = ("command", "text", "user_id", "user_name", "team_id", "channel_id", "response_url", "trigger_id",
                  "api_app_id")


def clean_body(kind: str, raw: bytes) -> dict[str, Any] | None:
    """The body bolt gets for an `interactions`, `commands` or `events` request; None when malformed."""
    try:
        text = raw.decode("utf-8")
        if kind == "events":
            body = json.loads(text) if text else None
            if not isinstance(body, dict) or body.get("type") not in ("url_verification", "ssl_check"):
                return None
            return {"type": body["type"], "challenge": _str(body.get("challenge")) or "",
                    "token": _str(body.get("token")) or ""}
        form = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    except ValueError:  # not UTF-8, not JSON, not a form
        return None
    if kind == "commands":
        if not form.get("command") or "user_id" not in form:
            return None
        return {name: form[name] for name in COMMAND_FIELDS if name in form}
    try:
        payload = json.loads(form.get("payload", ""))
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    if payload.get("type") == "block_actions":
        return _block_actions(payload)
    if payload.get("type") == "view_submission":
        return _view_submission(payload)
    return None
