"""Slack's requests to dsarbot: approval buttons, reason modals, "Assign to me" and `/dsar`.

A slack-bolt App behind the service's Flask app (`/slack/events`, `/slack/interactions`,
`/slack/commands`). Each request's signature (v0 scheme, 5-minute window) is verified on the raw
bytes before anything is parsed, and bolt gets a clean body with only the fields we use
(integrations.slack_requests); `ReplayGuard` then refuses a signature seen before. Listeners
acknowledge at once and do the work in lazy listeners (Slack wants an answer within 3 s).
Decisions are bound to the case, the draft hash and the case version that the message showed, and
only allow-listed approvers may take them (SECURITY.md rule 4); every decision and every refused
attempt is audited with the actor `slack:<user id>`.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any, Callable

from flask import Blueprint, request
from slack_bolt import App, BoltResponse
from slack_bolt.adapter.flask.handler import to_flask_response
from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest

from bot.cases import OPEN_STATES, CaseNotFound, IllegalTransition
from bot.models import CASE_REF_PATTERN, Case
from bot.outbox import PermanentFailure, RetryLater
from bot.service import Service
from integrations.slack import SlackNotifier
from integrations.slack_approval import APPROVAL_ACTIONS, REASON_CALLBACK, approval_outcome, approval_status, \
    reason_modal
from integrations.slack_blocks import ACTION_PREFIX, Binding, case_summary, week_message
from integrations.slack_requests import SIGNATURE_WINDOW, clean_body, verified

log = logging.getLogger(__name__)

WEEK_DAYS = 7
COMMAND = "/dsar"


class ReplayGuard(Middleware):
    """Refuses a request whose signature and timestamp were already seen (kept in `kv` until expiry)."""

    def __init__(self, store: Any, wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.wall = wall

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        timestamp = req.headers.get("x-slack-request-timestamp", ["0"])[0]
        signature = req.headers.get("x-slack-signature", [""])[0]
        key = "slack:seen:" + hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()
        try:
            expires = int(timestamp) + SIGNATURE_WINDOW + 60
        except ValueError:
            expires = 0
        if not self.store.insert_new("kv", key, {"kind": "slack_seen", "key": key, "expires_at": expires}):
            log.warning("slack request replayed (timestamp %s): refused", timestamp)
            return BoltResponse(status=401, body={"error": "invalid request"})
        return next()

    def purge(self) -> int:
        """Forget signatures old enough that bolt refuses them anyway (a scheduled job)."""
        now = self.wall()
        expired = [d["key"] for d in self.store.find("kv", {"kind": "slack_seen"}) if d.get("expires_at", 0) < now]
        for key in expired:
            self.store.delete("kv", key)
        return len(expired)


class TrackedExecutor(ThreadPoolExecutor):
    """Runs bolt's listeners and remembers what is running, so tests and shutdown can wait for it."""

    def __init__(self, max_workers: int = 8) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="slack-listener")
        self._running: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._running.discard(future)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once nothing runs; False if work is still running after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                running = set(self._running)
            if not running:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            wait(running, timeout=remaining)


def _bolt_logger() -> logging.Logger:
    # Bolt logs request bodies at INFO and DEBUG: bot.logs keeps this logger at WARNING.
    return logging.getLogger("integrations.slack_app.bolt")


def _ack(ack: Callable[..., None]) -> None:
    ack()


def _logged(listener: Callable[..., None]) -> Callable[..., None]:
    """A lazy listener whose Slack API failures are logged (nobody waits for its answer)."""
    @functools.wraps(listener)  # bolt reads the wrapped listener's argument names
    def run(**kwargs: Any) -> None:
        try:
            listener(**kwargs)
        except (RetryLater, PermanentFailure) as exc:
            log.warning("slack %s stopped: %s", listener.__name__, exc)

    return run


class SlackInteractions:
    """The bolt App and its listeners; `blueprint()` mounts it in the service's Flask app."""

    def __init__(self, service: Service, notifier: SlackNotifier) -> None:
        self.service = service
        self.cases = service.cases
        self.notifier = notifier
        self.api = notifier.api
        self.render = notifier.render
        self.settings = service.config.slack
        self.executor = TrackedExecutor()
        self.guard = ReplayGuard(service.store, self.api.wall)
        # The signature is checked before bolt sees the request (blueprint), on the raw bytes; bolt then
        # gets a rebuilt body, which its own check could not verify. The token rides in the client.
        self.app = App(name="dsarbot", signing_secret=self.settings.signing_secret, request_verification_enabled=False,
                       client=self.api.client, token_verification_enabled=False, before_authorize=self.guard,
                       listener_executor=self.executor, logger=_bolt_logger())
        actions = "|".join((*APPROVAL_ACTIONS, "assign"))
        self.actions = re.compile(f"^{ACTION_PREFIX}({actions})$")
        self.app.action(self.actions)(ack=_ack, lazy=[_logged(self.on_button)])
        self.app.view(REASON_CALLBACK)(ack=self.ack_reason, lazy=[_logged(self.on_reason)])
        self.app.command(COMMAND)(ack=_ack, lazy=[_logged(self.on_command)])

    def handles(self, body: dict[str, Any]) -> bool:
        """One of our listeners takes this (clean) body. Bolt logs the others with their body: they stop here."""
        kind = body.get("type")
        if kind == "block_actions":
            return bool(self.actions.match(body["actions"][0]["action_id"]))
        if kind == "view_submission":
            return body["view"]["callback_id"] == REASON_CALLBACK
        if "command" in body:
            return body["command"] == COMMAND
        return kind in ("url_verification", "ssl_check")

    def blueprint(self) -> Blueprint:
        blueprint = Blueprint("slack", __name__)

        def endpoint():  # noqa: ANN202 - a Flask view
            raw = request.get_data()
            if not verified(raw, request.headers, self.settings.signing_secret, self.api.wall):
                log.debug("slack request refused: missing, stale or wrong signature")
                return {"error": "invalid request"}, 401
            body = clean_body(request.path.rsplit("/", 1)[1], raw)
            if body is None:
                log.debug("slack request refused: signed, but not a request dsarbot handles")
                return {"error": "malformed request"}, 400
            if not self.handles(body):
                return {"error": "not handled"}, 404
            headers = {name: value for name, value in request.headers.items() if name.lower() != "content-type"}
            bolt_request = BoltRequest(body=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
            return to_flask_response(self.app.dispatch(bolt_request))

        for path in ("/slack/events", "/slack/interactions", "/slack/commands"):
            blueprint.add_url_rule(path, path.rsplit("/", 1)[1], endpoint, methods=["POST"])
        return blueprint

    def wait_idle(self, timeout: float = 10.0) -> bool:
        return self.executor.wait_idle(timeout)

    # --- who may do what ---------------------------------------------------------------------
    def may_decide(self, user: str) -> bool:
        return user in self.settings.approvers

    def is_member(self, team_id: str, user: str) -> bool:
        """A full member of our workspace: not a guest, a bot, a deactivated or an outside user."""
        ours = self.api.identity().get("team_id", "")
        if not user or (team_id and ours and team_id != ours):
            return False
        profile = self.api.call("users_info", user=user).get("user") or {}
        if any(profile.get(flag) for flag in ("deleted", "is_bot", "is_restricted", "is_ultra_restricted",
                                               "is_stranger")):
            return False
        return not ours or profile.get("team_id", ours) == ours

    def refused(self, case: Case, user: str, kind: str, outcome: str) -> None:
        self.cases.log_event("slack_refused", f"slack:{user}", case, {"kind": kind, "outcome": outcome})
        log.info("case %s: slack %s by %s refused (%s)", case.ref, kind, user, outcome)

    def _say(self, channel: str, user: str) -> Callable[[str], None]:
        def say(text: str) -> None:
            if channel and user:
                try:
                    self.api.ephemeral(channel, user, text)
                except (RetryLater, PermanentFailure) as exc:
                    log.warning("slack ephemeral message not sent: %s", exc)

        return say

    # --- listeners (lazy: run after the 3-second acknowledgement) -------------------------------
    def on_button(self, body: dict[str, Any]) -> None:
        action = (body.get("actions") or [{}])[0]
        kind = str(action.get("action_id", "")).removeprefix(ACTION_PREFIX)
        user = (body.get("user") or {}).get("id", "")
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
        say = self._say(channel, user)
        binding = Binding.decode(action.get("value"))
        case = self._case(binding)
        if binding is None or case is None:
            say(self.render.tr("slack.error.bad_button"))
            return
        if kind == "assign":
            self.assign(case, user, (body.get("team") or {}).get("id", ""), say)
            return
        if not self._may_decide_now(case, binding, user, kind, say, (channel, container.get("message_ts", ""))):
            return
        if kind == "approve":
            self.decide(case, kind, user, binding, "", say)
        else:
            view = reason_modal(kind, case, binding, channel, container.get("message_ts", ""), self.render)
            self.api.call("views_open", trigger_id=body.get("trigger_id", ""), view=view)

    def ack_reason(self, ack: Callable[..., None], view: dict[str, Any]) -> None:
        if not _reason(view):
            ack(response_action="errors", errors={"reason": self.render.tr("slack.error.reason_required")})
        else:
            ack()

    def on_reason(self, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            return
        binding, kind = Binding.decode(meta), meta.get("a")
        reason = _reason(view)
        user = (body.get("user") or {}).get("id", "")
        say = self._say(str(meta.get("ch", "")), user)
        case = self._case(binding)
        if kind not in APPROVAL_ACTIONS or not reason or binding is None or case is None:
            return
        if self._may_decide_now(case, binding, user, kind, say, (str(meta.get("ch", "")), str(meta.get("ts", "")))):
            self.decide(case, kind, user, binding, reason, say)

    def on_command(self, body: dict[str, Any], respond: Callable[..., Any]) -> None:
        user, text = body.get("user_id", ""), (body.get("text") or "").strip()
        if not self.is_member(body.get("team_id", ""), user):
            respond(text=self.render.tr("slack.error.workspace_only"), response_type="ephemeral")
            return
        today = self.notifier.today()
        if text.lower() in ("", "week", "semaine"):
            open_cases = [c for c in self.cases.all() if c.state in OPEN_STATES]
            message = week_message(open_cases, today, today + timedelta(days=WEEK_DAYS), self.render)
        elif re.fullmatch(CASE_REF_PATTERN, text.upper()):
            try:
                case = self.cases.by_ref(text.upper())
            except CaseNotFound:
                message = (self.render.tr("slack.error.not_found", ref=text), [])
            else:
                self.cases.log_event("slack_lookup", f"slack:{user}", case)
                message = case_summary(case, today, self.render)
        else:
            message = (self.render.tr("slack.command.usage"), [])
        text_out, blocks_out = message
        respond(text=text_out, blocks=blocks_out or None, response_type="ephemeral", replace_original=False)

    # --- the decisions ---------------------------------------------------------------------------
    def _case(self, binding: Binding | None) -> Case | None:
        if binding is None:
            return None
        try:
            return self.cases.get(binding.case_id)
        except CaseNotFound:
            return None

    def _may_decide_now(self, case: Case, binding: Binding, user: str, kind: str, say: Callable[[str], None],
                        message: tuple[str, str]) -> bool:
        """An allow-listed approver, deciding on the draft that is the case's draft now."""
        if not self.may_decide(user):
            self.refused(case, user, kind, "not_approver")
            say(self.render.tr("slack.error.not_approver", ref=case.ref))
            return False
        if case.draft.get("hash") != binding.draft_hash:
            self.refused(case, user, kind, "stale_draft")
            say(self.render.tr("slack.error.stale_draft", ref=case.ref))
            channel, ts = message
            if channel and ts:  # that message's buttons go: its draft is superseded
                self.notifier.refresh_approval(case, {"channel": channel, "ts": ts, "draft_hash": binding.draft_hash})
            return False
        return True

    def decide(self, case: Case, kind: str, user: str, binding: Binding, reason: str,
               say: Callable[[str], None]) -> None:
        actor = f"slack:{user}"
        detail = {"draft_hash": binding.draft_hash, **({"reason": reason} if reason else {})}
        try:
            if kind == "request_changes":
                self.cases.request_changes(case.id, actor, reason, binding.draft_hash, binding.version)
            else:
                self.cases.transition(case.id, kind, actor, detail=detail, expected_version=binding.version)
        except IllegalTransition as exc:
            current = self.cases.get(case.id)
            self.notifier.refresh_approval(current)
            if approval_status(current, binding.draft_hash).kind == "pending":  # only the version moved
                self.refused(current, user, kind, "case_changed")
                say(self.render.tr("slack.error.changed", ref=case.ref))
            else:
                self.refused(current, user, kind, "not_allowed")
                why = str(exc) if current.version == binding.version else \
                    approval_outcome(current, binding.draft_hash, self.render)
                say(self.render.tr("slack.error.not_possible", why=why))
            return
        self.notifier.refresh_approval(self.cases.get(case.id))

    def assign(self, case: Case, user: str, team_id: str, say: Callable[[str], None]) -> None:
        if not self.is_member(team_id, user):
            self.refused(case, user, "assign", "not_member")
            say(self.render.tr("slack.error.workspace_only"))
            return

        def mutate(c: Case) -> None:
            c.assignee = f"slack:{user}"

        updated = self.cases.record(case.id, "assign", f"slack:{user}", mutate)
        say(self.render.tr("slack.ok.assigned", ref=case.ref))
        self.notifier.refresh_case_post(updated)
        self.notifier.refresh_approval(updated)


def _reason(view: dict[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get("reason") or {}
    return str((values.get("reason") or {}).get("value") or "").strip()
