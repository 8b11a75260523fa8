"""Slack as the agents' notifier: a post and a thread per case, reminders, escalations, the digest.

Everything that posts runs as an outbox effect (planned here on case changes) or from a reminder
effect, so it survives restarts and runs once. Slack has no idempotency key, so each post carries
its effect key in message metadata and is remembered in the store: a retry after a lost answer
finds the message it already posted instead of posting again. The interactive part (buttons,
modals, /dsar) is in `integrations.slack_app`; message building in `integrations.slack_blocks`.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import re
import time
import urllib.error
from datetime import date
from typing import Any, Callable, Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot import clock
from bot.cases import Change
from bot.config import ConfigError, SlackConfig
from bot.faults import checkpoint
from bot.i18n import available_languages
from bot.models import Case, State
from bot.outbox import Effect, PermanentFailure, RetryLater
from bot.service import Service
from integrations import slack_blocks as blocks
from integrations.slack_approval import approval_message
from integrations.base import Notifier

log = logging.getLogger(__name__)

POST_CASE = "slack.post_case"
THREAD_UPDATE = "slack.thread_update"
REQUEST_APPROVAL = "slack.request_approval"
METADATA_EVENT = "dsarbot_post"
#: Record actions worth a line in the case thread (besides every change of state).
THREAD_ACTIONS = frozenset({"extend", "flag", "assign", "request_changes"})
REQUIRED_SCOPES = ("chat:write", "commands", "users:read")
HISTORY_SCOPES = ("channels:history", "groups:history")

# https://docs.slack.dev/apis/web-api/#errors (per-method lists on each method's page)
_TRANSIENT = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
_AUTH = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope",
         "no_permission", "not_allowed_token_type"}


def api_error(exc: Exception, method: str) -> Exception:
    """Map a Slack client failure to what the outbox understands: retry later, or stop and flag."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
        if status == 429:
            after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            return RetryLater(f"slack {method}: rate limited", float(after) if after else None)
        if status >= 500 or error in _TRANSIENT:
            return RetryLater(f"slack {method}: {error or status}")
        if error in _AUTH:
            return PermanentFailure(f"slack {method}: {error}: check [slack] bot_token and the app's scopes")
        return PermanentFailure(f"slack {method}: {error or status}")
    return RetryLater(f"slack {method}: {type(exc).__name__}: {exc}")


class SlackApi:
    """The Web API calls dsarbot makes, with failures mapped and posts made once."""

    def __init__(self, client: WebClient, store: Any, wall: Callable[[], float] = time.time) -> None:
        self.client = client
        self.store = store
        self.wall = wall  # Slack's timestamps are wall-clock epochs, not the service's injected clock
        self._identity: dict[str, str] = {}

    def call(self, method: str, **kwargs: Any) -> SlackResponse:
        try:
            return getattr(self.client, method)(**kwargs)
        except (SlackApiError, urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise api_error(exc, method) from exc

    def identity(self) -> dict[str, str]:
        """Our bot's team, user and bot ids (auth.test), asked once."""
        if not self._identity:
            response = self.call("auth_test")
            self._identity = {"team_id": response.get("team_id", ""), "user_id": response.get("user_id", ""),
                              "bot_id": response.get("bot_id", ""),
                              "scopes": response.headers.get("x-oauth-scopes", "") if response.headers else ""}
        return self._identity

    def post_once(self, key: str, channel: str, text: str, message_blocks: list[dict[str, Any]] | None = None,
                  thread_ts: str = "", broadcast: bool = False) -> dict[str, str]:
        """Post unless this key was posted already; returns {"channel", "ts"} of the one message."""
        marker = "slack:post:" + hashlib.sha256(key.encode()).hexdigest()[:40]
        seen = self.store.get("kv", marker)
        if seen and seen.get("ts"):
            return {"channel": seen["channel"], "ts": seen["ts"]}
        if seen:  # an earlier attempt got no answer: it may have landed
            found = self._find_posted(key, seen["channel"], thread_ts, seen["since"])
            if found:
                self.store.put("kv", marker, {**seen, "ts": found})
                return {"channel": seen["channel"], "ts": found}
        else:
            seen = {"kind": "slack_post", "marker": marker, "channel": channel, "since": f"{self.wall() - 600:.6f}"}
            self.store.put("kv", marker, seen)
        kwargs: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False, "unfurl_media": False,
                                  "metadata": {"event_type": METADATA_EVENT, "event_payload": {"key": key}}}
        if message_blocks:
            kwargs["blocks"] = message_blocks
        if thread_ts:
            kwargs.update(thread_ts=thread_ts, reply_broadcast=broadcast)
        response = self.call("chat_postMessage", **kwargs)
        checkpoint("outbox.slack_posted")
        posted = {"channel": response["channel"], "ts": response["ts"]}
        self.store.put("kv", marker, {**seen, **posted})
        return posted

    def _find_posted(self, key: str, channel: str, thread_ts: str, since: str) -> str:
        """Our message carrying `key` in its metadata, posted since `since` (conversations.history/replies)."""
        bot_id = self.identity().get("bot_id")
        method, args = ("conversations_replies", {"ts": thread_ts}) if thread_ts else ("conversations_history", {})
        cursor = None
        for _ in range(20):  # bounded: a few thousand messages back at most
            response = self.call(method, channel=channel, oldest=since, include_all_metadata=True, limit=200,
                                 cursor=cursor, **args)
            for message in response.get("messages", []):
                payload = (message.get("metadata") or {}).get("event_payload") or {}
                if payload.get("key") == key and (not bot_id or message.get("bot_id") == bot_id):
                    return message["ts"]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return ""
        return ""

    def purge_markers(self, max_age_days: float = 14) -> int:
        """Forget post markers older than any retry of their effect (scheduled)."""
        oldest = self.wall() - max_age_days * 86400
        stale = [d for d in self.store.find("kv", {"kind": "slack_post"}) if float(d.get("since", 0)) < oldest]
        for doc in stale:
            self.store.delete("kv", doc["marker"])
        return len(stale)

    def update(self, channel: str, ts: str, text: str, message_blocks: list[dict[str, Any]]) -> None:
        self.call("chat_update", channel=channel, ts=ts, text=text, blocks=message_blocks)

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        self.call("chat_postEphemeral", channel=channel, user=user, text=text)


class SlackNotifier(Notifier):
    """The Notifier of integrations.base, in the configured channel and each case's thread."""

    name = "slack"

    def __init__(self, service: Service, api: SlackApi) -> None:
        self.service = service
        self.api = api
        self.settings: SlackConfig = service.config.slack
        jurisdiction = service.cases.jurisdiction
        self.render = blocks.Render(self.settings.language, service.config.service.base_url, jurisdiction.tz,
                                    self.settings.show_personal_data)

    def today(self) -> date:
        return clock.receipt_date(self.service.now(), self.service.cases.jurisdiction)

    # --- the Notifier interface -------------------------------------------------------------
    def case_opened(self, case: Case) -> dict[str, str]:
        text, message = blocks.case_post(case, self.render, self._personal(case))
        return self.api.post_once(f"{case.id}:slack:post", self.settings.channel, text, message)

    def case_update(self, case: Case, text: str) -> None:
        line = blocks.tr("slack.update.text", self.render.language, ref=case.ref, text=text)
        self.post_in_thread(case, line, f"{case.id}:update:{hashlib.sha256(text.encode()).hexdigest()[:16]}")

    def reminder(self, case: Case, kind: str, escalate: bool = False) -> None:
        today = self.today()
        received = clock.receipt_date(case.received_at, self.service.cases.jurisdiction)
        text = blocks.reminder_text(case, kind, today, self.render, clock.last_extension_notice_day(received))
        self.post_in_thread(case, text, f"{case.id}:reminder:{kind}:{today.isoformat()}")
        if escalate:  # also at the top of the channel, where the DPO or lead is mentioned
            alert = blocks.escalation_text(case, text, self.settings.escalation_user, self.render)
            self.api.post_once(f"{case.id}:escalation:{kind}:{today.isoformat()}", self.settings.channel, alert)

    def request_approval(self, case: Case) -> None:
        self.post_approval(case, f"{case.id}:slack:approval:{case.draft.get('hash', '')}:{case.version}")

    def digest(self, rows: list[dict[str, Any]]) -> None:
        today = self.today()
        text, message = blocks.digest_message(rows, today, self.render)
        self.api.post_once(f"digest:{today.isoformat()}", self.settings.channel, text, message)

    # --- threads and the messages kept current ---------------------------------------------------
    def post_in_thread(self, case: Case, text: str, key: str) -> None:
        """In the case's thread; at the top of the channel when the case was never posted."""
        self.api.post_once(key, case.slack.get("channel") or self.settings.channel, text,
                           thread_ts=case.slack.get("ts", ""))

    def refresh_case_post(self, case: Case) -> None:
        if case.slack.get("ts"):
            text, message = blocks.case_post(case, self.render, self._personal(case))
            self.api.update(case.slack["channel"], case.slack["ts"], text, message)

    def post_approval(self, case: Case, key: str) -> None:
        previous = self.approval_message(case.id)
        posted = self.api.post_once(key, case.slack.get("channel") or self.settings.channel,
                                    *approval_message(case, case.draft["hash"], self.render),
                                    thread_ts=case.slack.get("ts", ""), broadcast=True)
        if previous and previous["ts"] != posted["ts"]:
            self.refresh_approval(case)  # the earlier draft's buttons go: it is superseded
        self.service.store.put("kv", f"slack:approval:{case.id}", {"kind": "slack_approval", **posted,
                                                                   "draft_hash": case.draft["hash"]})

    def approval_message(self, case_id: str) -> dict[str, Any] | None:
        return self.service.store.get("kv", f"slack:approval:{case_id}")

    def refresh_approval(self, case: Case, message: dict[str, Any] | None = None) -> None:
        """Re-render an approval message from the case: buttons bound to its current version, or the decision."""
        message = message or self.approval_message(case.id)
        if message:
            text, rendered = approval_message(case, message["draft_hash"], self.render)
            self.api.update(message["channel"], message["ts"], text, rendered)

    def _personal(self, case: Case) -> dict[str, str]:
        if not self.settings.show_personal_data:
            return {}
        subject = ""
        if case.message_ids:
            first = self.service.store.get("messages", case.message_ids[0]) or {}
            subject = first.get("subject", "")

        def who(person: Any) -> str:
            return " ".join(part for part in (person.name, f"({person.email})" if person.email else "") if part)

        shown = {"slack.field.requester": who(case.requester), "slack.field.email_subject": subject}
        if case.third_party or case.subject.email != case.requester.email:
            shown["slack.field.data_subject"] = who(case.subject)
        return shown

    def check(self) -> str | None:
        """Startup: the token works (auth.test) and carries the scopes dsarbot needs."""
        try:
            identity = self.api.identity()
        except (RetryLater, PermanentFailure) as exc:
            return f"[slack] auth.test failed ({exc}); check bot_token (DSARBOT_SLACK__BOT_TOKEN) and api_base_url"
        scopes = {s.strip() for s in identity.get("scopes", "").split(",") if s.strip()}
        if scopes:
            missing = [s for s in REQUIRED_SCOPES if s not in scopes]
            if not scopes.intersection(HISTORY_SCOPES):
                missing.append(" or ".join(HISTORY_SCOPES))
            if missing:
                return (f"[slack] the bot token lacks scopes: {', '.join(missing)}; "
                        "add them in the Slack app and reinstall it")
        return None


# --- planning and running the effects ----------------------------------------------------------
def plan(change: Change) -> Iterable[Effect]:
    """New case: a post. Draft ready: approval buttons. Other changes: a line in the thread."""
    case = change.case
    if change.action == "open":
        yield Effect(POST_CASE, key=f"{case.id}:slack:post", case_id=case.id)
    elif change.action == "gathered":
        yield Effect(REQUEST_APPROVAL, key=f"{case.id}:slack:approval:{case.version}", case_id=case.id,
                     payload={"draft_hash": case.draft.get("hash", ""), "version": case.version})
    elif change.before != change.after or change.action in THREAD_ACTIONS:
        if change.action == "flag" and str(change.detail.get("code", "")).startswith("effect_failed:slack."):
            return  # Slack itself failing: said on the case and in the desk, not in a loop through Slack
        payload = {"action": change.action, "before": str(change.before), "after": str(change.after),
                   "actor": change.actor, "version": case.version, "code": change.detail.get("code", ""),
                   "reason": str(change.detail.get("reason", ""))[:500]}
        if change.action == "assign":
            payload["assignee"] = case.assignee
        yield Effect(THREAD_UPDATE, key=f"{case.id}:slack:update:{case.version}", case_id=case.id, payload=payload)


def run_post_case(service: Service, notifier: SlackNotifier, effect: dict[str, Any]) -> dict[str, Any]:
    case = service.cases.get(effect["case_id"])
    if case.slack.get("ts"):
        return dict(case.slack)
    posted = notifier.case_opened(case)

    def link(c: Case) -> None:
        c.slack = dict(posted)

    service.cases.record(case.id, "link_slack", "system", link)
    return posted


def _thread_ready(service: Service, case: Case) -> bool:
    """The case post exists; raises RetryLater while it is still to be made."""
    if case.slack.get("ts"):
        return True
    post = service.store.get("outbox", f"{case.id}:slack:post")
    if post is None or post.get("status") == "failed":
        return False  # never posted (Slack enabled later, or the post failed and was flagged)
    raise RetryLater("the case post is not made yet", after_seconds=15)


def run_thread_update(service: Service, notifier: SlackNotifier, effect: dict[str, Any]) -> dict[str, Any]:
    case = service.cases.get(effect["case_id"])
    if not _thread_ready(service, case):
        return {"skipped": "no case post"}
    notifier.post_in_thread(case, blocks.update_text(case, effect["payload"], notifier.render), effect["key"])
    notifier.refresh_case_post(case)
    notifier.refresh_approval(case)
    return {"posted": True}


def run_request_approval(service: Service, notifier: SlackNotifier, effect: dict[str, Any]) -> dict[str, Any]:
    case = service.cases.get(effect["case_id"])
    if case.state != State.DRAFTED or case.draft.get("hash") != effect["payload"]["draft_hash"]:
        return {"skipped": str(case.state)}  # decided meanwhile, or a newer draft has its own message
    _thread_ready(service, case)  # waits for the case post; without one the message goes to the channel
    notifier.post_approval(case, effect["key"])
    return {"posted": True}


# --- setup -------------------------------------------------------------------------------------
_ID = re.compile(r"[UWS][A-Z0-9]{2,20}")


def check_settings(settings: SlackConfig) -> None:
    bad = [a for a in settings.approvers if not re.fullmatch(r"[UW][A-Z0-9]{2,20}", a)]
    if bad:
        raise ConfigError(f"[slack] approvers: {bad[0]!r} is not a Slack user id (U… or W…; "
                          "copy it from the user's profile, 'Copy member ID')")
    if settings.escalation_user and not _ID.fullmatch(settings.escalation_user):
        raise ConfigError(f"[slack] escalation_user: {settings.escalation_user!r} is not a Slack user id (U…) "
                          "or user group id (S…)")
    if settings.language not in available_languages():
        raise ConfigError(f"[slack] language: no catalogue {settings.language!r}; "
                          f"use one of {', '.join(available_languages())}")


def make_client(settings: SlackConfig) -> WebClient:
    # No retry handlers: the SDK would re-send a POST after a lost answer and post twice; the
    # outbox retries instead, and post_once finds what landed.
    kwargs: dict[str, Any] = {"token": settings.bot_token, "timeout": 10, "retry_handlers": []}
    if settings.api_base_url:
        kwargs["base_url"] = settings.api_base_url.rstrip("/") + "/"
    return WebClient(**kwargs)


def setup(service: Service) -> None:
    settings = service.config.slack
    if not settings.enabled:
        return
    check_settings(settings)
    from integrations.slack_app import SlackInteractions

    api = SlackApi(make_client(settings), service.store)
    notifier = SlackNotifier(service, api)
    interactions = SlackInteractions(service, notifier)
    service.components.setdefault("notifiers", []).append(notifier)
    service.components["slack"] = interactions
    service.blueprints.append(interactions.blueprint())
    service.cases.add_planner(plan)
    # Slack down for hours: the posts come late rather than never (the case is flagged meanwhile)
    service.outbox.register(POST_CASE, lambda effect: run_post_case(service, notifier, effect), keep_trying=True)
    service.outbox.register(THREAD_UPDATE, lambda effect: run_thread_update(service, notifier, effect),
                            keep_trying=True)
    service.outbox.register(REQUEST_APPROVAL, lambda effect: run_request_approval(service, notifier, effect),
                            keep_trying=True)
    service.startup_checks.append(notifier.check)
    service.add_job("slack_purge", lambda: (interactions.guard.purge(), api.purge_markers()), seconds=600,
                    single=True)
