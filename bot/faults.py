"""Crash points for the fault-injection suite: `checkpoint(name)` can SIGKILL the process at a chosen hit.

The product calls `checkpoint("stage.point")` at the few places where a crash tests recovery (after a
store commit, between a side effect and the record that it happened, ...). Unarmed, which is always
the case in production, a checkpoint is one global lookup and a return.

Armed by the environment, read at import (and again by `arm()`):
- `DSARBOT_FAULT_KILL_AT=<name>:<n>`: SIGKILL this process at the n-th hit of checkpoint `name`;
- `DSARBOT_FAULT_LOG=<file>`: before the kill, append `<name>:<n>` to this file (fsync'ed), so the
  driver knows which point fired;
- `DSARBOT_FAULT_TRACE=<file>`: append every hit's name (a census of the points a run passes).
Names are `<stage>.<point>` with stage in intake, gather, draft, deliver, outbox, store (CHECKPOINTS).
"""
from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from typing import Mapping

#: Every checkpoint the product calls, and where (tests check the list against the calls).
CHECKPOINTS: dict[str, str] = {
    "intake.fetched": "mailbox: a message's bytes fetched, before intake",
    "intake.stored": "intake: the message and its dedupe marker stored, before a case is opened",
    "intake.received": "mailbox: intake returned (case committed), before the IMAP flag",
    "intake.acked": "mailbox: messages flagged/moved on the server, before the folder state is saved",
    "gather.started": "pipeline: the case is in 'gathering', before the sources are asked",
    "gather.done": "pipeline: every source answered, before drafting",
    "draft.written": "pipeline: the draft files are in the vault, before the case records them",
    "deliver.mailed": "delivery: the link or archive was mailed, before the case is 'delivered'",
    "outbox.claimed": "outbox: an effect is leased to this process, before its handler runs",
    "outbox.handled": "outbox: the handler returned (its side effect done), before the effect is marked done",
    "outbox.mail_sent": "mail: the SMTP server accepted the message, before anything is recorded",
    "outbox.slack_posted": "Slack: chat.postMessage answered, before the post is remembered",
    "outbox.ticket_opened": "helpdesk: the ticket was created, before the case links it",
    "store.case_committed": "cases: a case change and its effects committed, before the audit event",
    "store.audit_line": "audit file: the event line written, before the head file",
    "store.audit_appended": "cases: the audit event written, before its parked copy is removed",
}

_plan: tuple[str, int] | None = None
_log_path = ""
_trace_path = ""
_hits: Counter[str] = Counter()
_lock = threading.Lock()


def arm(environ: Mapping[str, str] | None = None) -> None:
    """(Re)read the environment; resets the hit counters. Called at import."""
    global _plan, _log_path, _trace_path
    environ = os.environ if environ is None else environ
    spec = environ.get("DSARBOT_FAULT_KILL_AT", "").strip()
    _plan = None
    if spec:
        name, _, n = spec.rpartition(":")
        if name not in CHECKPOINTS or not n.isdigit() or int(n) < 1:
            raise ValueError(f"DSARBOT_FAULT_KILL_AT={spec!r}: expected <checkpoint>:<n>, n >= 1, "
                             f"checkpoint one of {', '.join(CHECKPOINTS)}")
        _plan = (name, int(n))
    _log_path = environ.get("DSARBOT_FAULT_LOG", "")
    _trace_path = environ.get("DSARBOT_FAULT_TRACE", "")
    _hits.clear()


def armed() -> bool:
    return _plan is not None or bool(_trace_path)


def checkpoint(name: str) -> None:
    """A point where the process may be killed (fault-injection runs only)."""
    if _plan is None and not _trace_path:
        return
    _hit(name)


def _hit(name: str) -> None:
    with _lock:
        _hits[name] += 1
        n = _hits[name]
        if _trace_path:
            _append(_trace_path, f"{name}\n", sync=False)  # a census run is never killed
        if _plan is not None and _plan == (name, n):
            if _log_path:
                _append(_log_path, f"{name}:{n}\n")
            os.kill(os.getpid(), signal.SIGKILL)


def _append(path: str, line: str, sync: bool = True) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


arm()
