"""Hypothesis strategies for what arrives over HTTP: Slack interactions and commands, and the public form.

Each strategy draws a `WebInput`: the route, the body as a structure (so placeholders can be filled
before it is encoded), how it is encoded, and how it is signed. Placeholders the target fills in:
`@@BINDING@@` a real button value (case, draft hash, version), `@@REF@@` a real case reference,
`@@CASE@@` a real case id, `@@HASH@@` its draft hash, `@@TRIGGER@@` a trigger id the fake Slack accepts, `@@RESPOND@@` a
response_url on the fake Slack.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.mailgen import ADDRESSES, DISGUISES, TEXTS, any_text

#: How a request is signed: only "valid" may be accepted; every other one must be refused, storing nothing.
SIGNINGS = ("valid",) * 9 + ("wrong_secret", "stale", "future", "no_signature", "no_timestamp",
            "garbage_signature", "other_body", "v1_scheme", "replay")


@dataclass
class WebInput:
    path: str
    body: Any  # dict (JSON, form fields or a Slack payload) or bytes
    encoding: str  # "payload" (form field `payload` = JSON) | "form" | "json" | "raw"
    signing: str = "valid"
    content_type: str = ""
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # form uploads: name -> (data, file name)
    extra: dict[str, Any] = field(default_factory=dict)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), any_text,
                      st.sampled_from(["@@BINDING@@", "@@REF@@", "@@CASE@@", "U0APPROVER", "dsar_approve"]))
json_value = st.recursive(json_leaf, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.one_of(any_text, st.sampled_from(["c", "h", "v", "a"])),
                                                    children, max_size=4)), max_leaves=12)


def maybe(strategy: st.SearchStrategy, junk: st.SearchStrategy = json_value) -> st.SearchStrategy:
    """Mostly the well-formed value (a request is made of several), one time in 16 anything at all."""
    return st.sampled_from([True] * 15 + [False]).flatmap(lambda good: strategy if good else junk)


# --- Slack ---------------------------------------------------------------------------------------------
USERS = ["U0APPROVER", "U0AGENT", "U0GUEST", "U0NOBODY", "", "W0APPROVER", "U0APPROVER\u200b"]
ACTIONS = ["dsar_approve", "dsar_request_changes", "dsar_refuse", "dsar_assign", "dsar_other", "approve", ""]
binding_value = st.one_of(
    st.just("@@BINDING@@"), st.just("@@BINDING@@"),
    st.builds(lambda c, h, v: {"c": c, "h": h, "v": v}, st.sampled_from(["@@CASE@@", "0" * 32, "zz", ""]),
              st.one_of(st.text(max_size=64), st.just("")), st.one_of(st.integers(-5, 10**20), st.text(max_size=5))),
    any_text, json_value)

_user = st.builds(lambda i, team: {"id": i, "username": "x", "team_id": team},
                  maybe(st.sampled_from(USERS)), maybe(st.sampled_from(["T0DSARBOT", "T0OTHER", ""])))
_team = maybe(st.builds(lambda i: {"id": i}, st.sampled_from(["T0DSARBOT", "T0OTHER", ""])))


@st.composite
def block_actions(draw) -> dict[str, Any]:
    action = draw(maybe(st.builds(lambda a, v: {"action_id": a, "block_id": "b", "type": "button", "value": v},
                                  st.sampled_from(ACTIONS),
                                  binding_value.map(lambda v: v if isinstance(v, str) else json.dumps(v)))))
    return {"type": draw(maybe(st.just("block_actions"))), "user": draw(maybe(_user)), "team": draw(_team),
            "trigger_id": draw(maybe(st.just("@@TRIGGER@@"))), "response_url": "@@RESPOND@@",
            "channel": draw(maybe(st.just({"id": "C0CASES"}))),
            "container": draw(maybe(st.builds(lambda ts: {"type": "message", "message_ts": ts, "channel_id": "C0CASES"},
                                              st.text(max_size=20)))),
            "actions": draw(maybe(st.lists(st.just(action), min_size=1, max_size=2)))}


@st.composite
def view_submission(draw) -> dict[str, Any]:
    meta = draw(maybe(st.builds(lambda b, a, ch: {**b, "a": a, "ch": ch, "ts": "1.2"} if isinstance(b, dict) else b,
                                st.sampled_from([{"c": "@@CASE@@", "h": "@@HASH@@", "v": 0}, {"c": "@@CASE@@"}, {}]),
                                st.sampled_from(["approve", "refuse", "request_changes", "delete", ""]),
                                st.sampled_from(["C0CASES", ""]))))
    reason = draw(maybe(any_text))
    return {"type": draw(maybe(st.just("view_submission"))), "user": draw(maybe(_user)), "team": draw(_team),
            "view": draw(maybe(st.builds(lambda m, cb: {"callback_id": cb, "private_metadata": m,
                                                        "state": {"values": {"reason": {"reason": {"value": reason}}}}},
                                         st.just(json.dumps(meta) if not isinstance(meta, str) else meta),
                                         st.sampled_from(["dsar_reason", "other", ""]))))}


@st.composite
def slash_command(draw) -> dict[str, Any]:
    fields = {"command": draw(maybe(st.sampled_from(["/dsar", "/other"]), any_text)),
              "text": draw(st.one_of(st.sampled_from(["", "week", "semaine", "@@REF@@", "DSR-260302-ABCDE",
                                                      "dsr-260302-abcde", "@@REF@@ extra"]), any_text)),
              "user_id": draw(maybe(st.sampled_from(USERS), any_text)),
              "team_id": draw(maybe(st.sampled_from(["T0DSARBOT", "T0OTHER", ""]), any_text)),
              "channel_id": "C0CASES", "response_url": "@@RESPOND@@", "trigger_id": "@@TRIGGER@@"}
    drop = draw(st.lists(st.sampled_from(sorted(fields)), max_size=3))
    return {k: v for k, v in fields.items() if k not in drop or k == "response_url"}


@st.composite
def slack_request(draw) -> WebInput:
    kind = draw(st.sampled_from(["block_actions", "view_submission", "command", "event", "junk_form", "junk_raw"]))
    signing = draw(st.sampled_from(SIGNINGS))
    if kind == "block_actions":
        return WebInput("/slack/interactions", draw(block_actions()), "payload", signing)
    if kind == "view_submission":
        return WebInput("/slack/interactions", draw(view_submission()), "payload", signing)
    if kind == "command":
        return WebInput("/slack/commands", draw(slash_command()), "form", signing)
    if kind == "event":
        body = draw(st.one_of(st.builds(lambda c: {"type": "url_verification", "challenge": c}, any_text),
                              st.builds(lambda e: {"type": "event_callback", "team_id": "T0DSARBOT", "event": e},
                                        json_value), json_value))
        return WebInput("/slack/events", body, "json", signing, "application/json")
    if kind == "junk_form":
        return WebInput(draw(st.sampled_from(["/slack/interactions", "/slack/commands", "/slack/events"])),
                        {"payload": draw(st.one_of(any_text, st.just("{"), st.just("null"), st.just("[]")))},
                        "form", signing)
    return WebInput(draw(st.sampled_from(["/slack/interactions", "/slack/commands", "/slack/events"])),
                    draw(st.binary(max_size=300)), "raw", signing,
                    draw(st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain", ""])))


# --- the public request form ---------------------------------------------------------------------------
RIGHTS = ["access", "rectification", "erasure", "restriction", "portability", "objection", "withdraw_consent"]
CSRF = ("valid",) * 9 + ("missing", "wrong", "other_session")
form_email = maybe(st.builds(lambda n: f"person{n}@example.org", st.integers(0, 10**6)),
                   st.one_of(st.sampled_from(ADDRESSES), st.sampled_from(DISGUISES), any_text))


@st.composite
def form_post(draw) -> WebInput:
    fields: dict[str, list[str]] = {
        "email": [draw(form_email)], "name": [draw(any_text)], "order": [draw(maybe(st.text(max_size=12), any_text))],
        "rights": draw(maybe(st.lists(st.sampled_from(RIGHTS), min_size=1, max_size=3),
                             st.lists(st.one_of(st.sampled_from(RIGHTS), any_text), max_size=4))),
        "text": [draw(st.one_of(st.sampled_from(TEXTS), any_text,
                                st.sampled_from(["x" * 20_000, "<script>alert(1)</script>", "=cmd|' /C calc'!A0"])))],
        "third_party": [draw(st.sampled_from(["", "yes", "no", "YES", "1"]))],
        "relationship": [draw(st.one_of(st.sampled_from(["parent", "guardian", "mandate", "heir", "lawyer", ""]),
                                        any_text))],
        "subject_name": [draw(any_text)], "subject_email": [draw(form_email)],
        "submission": [draw(st.one_of(st.builds(lambda n: f"sub{n}", st.integers(0, 10**9)), any_text))],
        "lang": [draw(st.sampled_from(["fr", "en", "de", "", "../../etc"]))],
    }
    for name in draw(maybe(st.just([]), st.lists(st.sampled_from(sorted(fields)), max_size=3))):
        fields.pop(name, None)
    for _ in range(draw(st.integers(0, 2))):
        fields[draw(any_text)] = [draw(any_text)]
    files = {}
    if draw(st.integers(0, 4)) == 0:
        data = draw(st.one_of(st.binary(max_size=200), st.just(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + b"x" * 100),
                              st.just(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)))
        names = ["proof.pdf", "../../etc/passwd", "\u202egnp.exe", "", "a" * 300]
        files["proof"] = (data, draw(st.sampled_from(names)))
    return WebInput("/request", fields, "form", draw(st.sampled_from(CSRF)), files=files,
                    extra={"remote_addr": "10.%d.%d.%d" % tuple(draw(st.integers(0, 255)) for _ in range(3))})


# --- helpdesk webhooks ---------------------------------------------------------------------------------
#: Zendesk signs (HMAC of timestamp + body); Freshdesk cannot, so a shared secret header stands in.
ZENDESK_SIGNINGS = ("valid",) * 9 + ("wrong_secret", "stale", "future", "no_signature", "no_timestamp",
                                     "garbage_signature", "other_body", "replay", "bad_timestamp", "naive_timestamp")
FRESHDESK_SIGNINGS = ("valid",) * 9 + ("wrong_secret", "no_signature", "empty_secret", "secret_with_space")
ZENDESK_EVENTS = ["created", "comment_added", "status_changed", "merged", "custom_field_changed", "deleted"]

#: A customer's ticket the target creates in the fake helpdesk before the webhook names it (`@@NEW@@`).
helpdesk_ticket = st.fixed_dictionaries({
    "email": form_email, "name": any_text,
    "subject": st.one_of(st.sampled_from(TEXTS), any_text), "body": st.one_of(st.sampled_from(TEXTS), any_text),
    "comment": st.one_of(st.none(), st.sampled_from(TEXTS), any_text)})
_ticket_id = st.sampled_from(["@@NEW@@", "@@NEW@@", "@@OLD@@", "99999999"])


@st.composite
def zendesk_webhook(draw) -> WebInput:
    """An event delivery; `extra["names_ticket"]` when it is well formed and names a ticket."""
    good = draw(st.lists(st.sampled_from([True] * 15 + [False]), min_size=4, max_size=4))
    ticket = draw(_ticket_id) if good[0] else draw(st.one_of(any_text, st.integers().map(str)))
    kind = draw(st.sampled_from(ZENDESK_EVENTS)) if good[1] else draw(any_text)
    payload = {"type": f"zen:event-type:ticket.{kind}", "account_id": 88888888, "subject": f"zen:ticket:{ticket}",
               "detail": {"id": ticket, "status": draw(st.sampled_from(["NEW", "OPEN", "SOLVED", "CLOSED", "x"]))}
               if good[2] else draw(json_value),
               "event": {"target_ticket_id": draw(_ticket_id)} if draw(st.booleans()) else draw(json_value)}
    body = payload if good[3] else draw(json_value)
    return WebInput("/webhooks/zendesk", body, "json", draw(st.sampled_from(ZENDESK_SIGNINGS)), "application/json",
                    extra={"ticket": draw(helpdesk_ticket), "names_ticket": all(good) and ticket == "@@NEW@@",
                           "invocation": draw(st.one_of(st.integers(1, 10**12).map(str), st.just(""),
                                                         st.text(st.characters(min_codepoint=32, max_codepoint=126))))})


@st.composite
def freshdesk_webhook(draw) -> WebInput:
    good = draw(st.lists(st.sampled_from([True] * 15 + [False]), min_size=2, max_size=2))
    ticket = draw(_ticket_id) if good[0] else draw(st.one_of(any_text, st.integers().map(str), json_value))
    inner = {"ticket_id": ticket, "triggered_event": draw(st.one_of(st.just("{ticket_action:created}"), any_text)),
             "ticket_subject": draw(any_text), "requester_email": draw(form_email)}  # lies: never trusted
    body = {"freshdesk_webhook": inner} if good[1] else draw(json_value)
    return WebInput("/webhooks/freshdesk", body, "json", draw(st.sampled_from(FRESHDESK_SIGNINGS)), "application/json",
                    extra={"ticket": draw(helpdesk_ticket), "names_ticket": all(good) and ticket == "@@NEW@@"})
