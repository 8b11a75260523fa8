"""What must hold after any number of kills, once a life has finished the work.

- the store opens; no request lost: every APPENDed mail has exactly one case, and no other case exists;
- every case is closed (the work completed) and legal: its audit events follow each other
  (`before` = the previous `after`), every change of state is an allowed transition, the last
  `after` is the case's state, no audit event is written twice, none is left parked, and
  `dsarbot audit verify` passes; no outbox effect failed, no case flagged for one;
- every request's mail is flagged \\Seen on the IMAP server;
- nothing duplicated: one Slack post per effect key (counted at the fake Slack), one Zendesk ticket
  per case and one note per note effect (counted at the fake Zendesk), one mail per
  effect that sent one (counted at the SMTP sink, by case and template). SMTP has no idempotency
  key, so a kill after the server accepted a mail and before the outbox marked its effect done
  sends it again: such a duplicate is counted, and it must be explained by a kill in that window
  between its two arrivals (`unexplained` otherwise, a failure).
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from imapclient import SEEN

from bot.cases import TRANSITIONS
from bot.models import State
from bot.service import open_audit
from bot.store import open_store
from integrations.helpdesk_fields import posted_marker
from tests.faults.mails import Spool, subject_line, templates
from tests.faults.scenario import Spec, runner_config
from tests.shared import REPO

#: Checkpoints that can fall after an SMTP server accepted a mail and before its effect is marked done.
MAIL_WINDOW = frozenset({"outbox.mail_sent", "deliver.mailed", "outbox.handled", "store.audit_line"})
#: Effects that send a mail carrying a secret, by the template, and how their result says they sent it.
#: (`delivery.send` is counted by the case's `deliver` transitions: a retry after the transition
#: finds the case delivered and says "skipped", yet its mail went out in the attempt before.)
SENDS = {
    "verification.send_code": ("verification_code", "sent"),
    "delivery.portal_code": ("portal_code", "sent"),
}


@dataclass
class Findings:
    lost: int = 0  # requests without exactly one case
    duplicates: Counter = field(default_factory=Counter)  # kind -> extra copies (cases, slack_posts, emails...)
    unexplained: int = 0  # duplicate mails no kill explains
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(text)


def check_round(spec: Spec, account: Any, slack: Any, sink: Any, kills: list[Any], findings: Findings,
                zendesk: Any = None) -> None:
    config = runner_config(spec)
    store = open_store(spec.store_url, spec.data_dir)
    try:
        cases = _requests(spec, store, findings)
        for case in cases:
            _legal(case, store, findings)
        history = _audit(config, store, cases, spec, findings)
        _imap(spec, account, findings)
        _slack(cases, slack, findings)
        if zendesk is not None:
            _helpdesk(cases, store, zendesk, findings)
        _mails(config, cases, history, store, spec, kills, findings)
    finally:
        store.close()


def _requests(spec: Spec, store: Any, findings: Findings) -> list[dict[str, Any]]:
    case_ids = []
    for message_id in spec.message_ids:
        marker = store.get("refs", "dedupe:msgid:" + message_id.strip("<>").lower())
        case = store.get("cases", (marker or {}).get("case_id", "") or "-")
        if not marker or marker.get("status") != "done" or case is None:
            findings.lost += 1
            findings.problem(f"request {message_id}: no case (marker {marker})")
            continue
        case_ids.append(case["id"])
        message = store.get("messages", case["message_ids"][0]) if case["message_ids"] else None
        if len(case["message_ids"]) != 1 or (message or {}).get("message_id", "").strip("<>") != message_id.strip("<>"):
            findings.problem(f"case {case['ref']}: messages {case['message_ids']} are not just {message_id}")
    all_cases = store.find("cases")
    extra = len(all_cases) - len(set(case_ids))
    if extra or len(set(case_ids)) != len(case_ids):
        findings.duplicates["cases"] += max(extra, len(case_ids) - len(set(case_ids)))
        findings.problem(f"{len(all_cases)} cases for {len(spec.message_ids)} requests")
    return [store.get("cases", case_id) for case_id in dict.fromkeys(case_ids)]


def _legal(case: dict[str, Any], store: Any, findings: Findings) -> None:
    ref = case["ref"]
    if case["state"] not in set(State):
        findings.problem(f"case {ref}: unknown state {case['state']!r}")
    elif case["state"] != State.CLOSED:
        findings.problem(f"case {ref}: ended in {case['state']}, not closed")
    for flag in case.get("flags", []):
        if flag["code"].startswith("effect_failed") and not flag.get("resolved"):
            findings.problem(f"case {ref}: flagged {flag['code']}: {flag['detail'][:160]}")
    for effect in store.find("outbox", {"case_id": case["id"]}):
        if effect["status"] == "failed":
            findings.problem(f"case {ref}: effect {effect['kind']} failed: {effect.get('last_error', '')[:160]}")


def _audit(config: Any, store: Any, cases: list[dict[str, Any]], spec: Spec,
           findings: Findings) -> dict[str, list[dict[str, Any]]]:
    """Checks the trail; returns each case's events."""
    if store.keys("audit_pending"):
        findings.problem(f"{len(store.keys('audit_pending'))} audit events still parked")
    audit = open_audit(config, store)
    events = list(audit.events())
    ids = Counter(e["detail"].get("event_id") for e in events if e["detail"].get("event_id"))
    for event_id, count in ids.items():
        if count > 1:
            findings.problem(f"audit event {event_id} written {count} times")
    by_case: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_case[event["case"]].append(event)
    for case in cases:
        _legal_history(case, by_case.get(case["id"], []), findings)
    env = {**os.environ, "PYTHONPATH": str(REPO), "DSARBOT_STORE__URL": spec.store_url}
    verify = subprocess.run([sys.executable, "-m", "bot", "audit", "verify", "--data-dir", spec.data_dir],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if verify.returncode != 0:
        findings.problem(f"dsarbot audit verify: exit {verify.returncode}: {verify.stdout.strip()} "
                         f"{verify.stderr.strip()[-300:]}")
    return by_case


def _legal_history(case: dict[str, Any], events: list[dict[str, Any]], findings: Findings) -> None:
    ref = case["ref"]
    if not events or events[0]["action"] != "open":
        findings.problem(f"case {ref}: its audit trail does not start with 'open'")
        return
    state = events[0]["after"]
    for event in events[1:]:
        action, before, after = event["action"], event["before"], event["after"]
        if before != state:
            findings.problem(f"case {ref}: audit '{action}' starts from {before} but the case was {state}")
        if action in TRANSITIONS:
            sources, target = TRANSITIONS[action]
            if before not in sources or (after != target and action != "clarified"):
                findings.problem(f"case {ref}: audit '{action}' {before} -> {after} is not an allowed transition")
        elif before != after:
            findings.problem(f"case {ref}: '{action}' changed the state {before} -> {after}")
        state = after
    if state != case["state"]:
        findings.problem(f"case {ref}: state {case['state']} but its last audit event says {state}")


def _imap(spec: Spec, account: Any, findings: Findings) -> None:
    with account.client() as client:
        client.select_folder("INBOX", readonly=True)
        fetched = client.fetch(client.search("ALL"), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    seen = {}
    for data in fetched.values():
        header = data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split(":", 1)[-1].strip()
        seen[header] = SEEN in data[b"FLAGS"]
    for message_id in spec.message_ids:
        if not seen.get(message_id):
            findings.problem(f"request {message_id} is not flagged \\Seen on the IMAP server")


def _slack(cases: list[dict[str, Any]], slack: Any, findings: Findings) -> None:
    posted: Counter = Counter()
    for messages in slack.channels.values():
        for message in messages:
            key = ((message.get("metadata") or {}).get("event_payload") or {}).get("key", "")
            if key:
                posted[key] += 1
    for case in cases:
        mine = {k: n for k, n in posted.items() if k.startswith(case["id"] + ":")}
        for key, count in mine.items():
            if count > 1:
                findings.duplicates["slack_posts"] += count - 1
                findings.problem(f"case {case['ref']}: Slack post {key.split(':', 1)[1]} made {count} times")
        if not case.get("slack", {}).get("ts") or f"{case['id']}:slack:post" not in mine:
            findings.problem(f"case {case['ref']}: never posted to Slack")
    slack.api.assert_clean()


def _helpdesk(cases: list[dict[str, Any]], store: Any, zendesk: Any, findings: Findings) -> None:
    """One Zendesk ticket per case (its external_id is the case id), linked; one note per note effect."""
    for case in cases:
        ref = case["ref"]
        tickets = [tid for tid, t in zendesk.tickets.items() if t["external_id"] == case["id"]]
        if len(tickets) != 1:
            findings.duplicates["tickets"] += max(0, len(tickets) - 1)
            findings.problem(f"case {ref}: {len(tickets)} Zendesk tickets")
        if not tickets or case.get("ticket", {}).get("id") != str(tickets[0]):
            findings.problem(f"case {ref}: linked to ticket {case.get('ticket')}, Zendesk has {tickets}")
            continue
        markers = Counter(((a.get("metadata") or {}).get("custom") or {}).get("dsarbot_ref")
                          for a in zendesk.audits[tickets[0]])
        for effect in store.find("outbox", {"case_id": case["id"], "kind": "helpdesk.note"}):
            count = markers.get(posted_marker(effect["key"]), 0)
            if effect["status"] == "done" and count == 0:
                findings.problem(f"case {ref}: note {effect['key']} done but not on the ticket")
            if count > 1:
                findings.duplicates["notes"] += count - 1
                findings.problem(f"case {ref}: note {effect['key']} posted {count} times")
    zendesk.assert_clean()


def _mails(config: Any, cases: list[dict[str, Any]], history: dict[str, list[dict[str, Any]]], store: Any,
           spec: Spec, kills: list[Any], findings: Findings) -> None:
    spool = Spool(spec.spool)
    mails = spool.mails()
    delivery_template = "delivery_encrypted" if config.delivery.method == "encrypted_email" else "delivery_link"
    for case in cases:
        expected: Counter = Counter()
        for effect in store.find("outbox", {"case_id": case["id"]}):
            if effect["status"] != "done":
                continue
            result = effect.get("result") or {}
            if effect["kind"] == "mail.send":
                expected[effect["payload"]["template"]] += 1
            elif effect["kind"] in SENDS and result.get(SENDS[effect["kind"]][1]):
                expected[SENDS[effect["kind"]][0]] += 1
        expected[delivery_template] += sum(1 for e in history.get(case["id"], []) if e["action"] == "deliver")
        subjects = {subject_line(t, case["language"], case["ref"]): t for t in templates()}
        got: dict[str, list[Any]] = defaultdict(list)
        for mail in mails:
            if mail.subject in subjects:
                got[subjects[mail.subject]].append(mail)
            elif f"[{case['ref']}]" in mail.subject:
                findings.problem(f"case {case['ref']}: a mail no template explains: {mail.subject!r}")
        for template in set(expected) | set(got):
            sent, arrived = expected[template], got[template]
            if len(arrived) < sent:
                findings.problem(f"case {case['ref']}: {sent} {template} mail(s) sent, {len(arrived)} arrived")
            extra = len(arrived) - sent
            if extra > 0:
                findings.duplicates["emails"] += extra
                if _explained(arrived, kills) < extra:
                    findings.unexplained += extra - _explained(arrived, kills)
                    findings.problem(f"case {case['ref']}: {len(arrived)} {template} mails for {sent} sends, "
                                     "not explained by kills between them")


def _explained(arrived: Iterable[Any], kills: list[Any]) -> int:
    """Kills in the SMTP window that fell between two arrivals of the same mail (each explains one copy)."""
    indexes = sorted(m.index for m in arrived)
    return sum(1 for k in kills if k.checkpoint in MAIL_WINDOW and indexes[0] <= k.sink_count < indexes[-1])
