"""The automatic part of a case: once identity is verified, gather the data and draft the answer.

It runs as an outbox effect ("pipeline.prepare"), so a crash or a restart resumes it and two
instances never run it twice at once. Parts it uses, registered by their own modules:
- `service.components["gatherer"]`: `gather(query, rights) -> GatherResult` (bot.gathering);
- `service.components["drafter"]`: `draft(case, result) -> dict` with at least `hash` (bot.drafting).
A source that failed never gives a silently incomplete draft: the case goes to `gathering_failed`,
flagged with the sources that failed, and an agent retries or refuses with reasons.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable, Protocol

from bot.cases import Change
from bot.faults import checkpoint
from bot.models import Case, State
from bot.outbox import Effect, PermanentFailure
from bot.service import Service

log = logging.getLogger(__name__)

PREPARE = "pipeline.prepare"


class Drafter(Protocol):
    def draft(self, case: Case, result: Any) -> dict[str, Any]:
        """Write the letter and export files for `case` and return {"hash", "files", ...}."""


def subject_query(case: Case):
    from integrations.base import SubjectQuery

    emails = [e for e in {case.verification.get("verified_email") or case.subject.email} if e]
    identifiers = {k: [v] for k, v in case.subject.identifiers.items() if v}
    return SubjectQuery(emails=emails, identifiers=identifiers, case_id=case.id)


def plan_prepare(change: Change) -> Iterable[Effect]:
    """Verified, or an agent asked to re-run after a failure or on a draft: gather and draft."""
    rerun = change.action == "start_gathering" and change.before in (State.GATHERING_FAILED, State.DRAFTED)
    if (change.after == State.VERIFIED and change.before != State.VERIFIED) or rerun:
        yield Effect(PREPARE, key=f"{change.case.id}:prepare:{change.case.version}", case_id=change.case.id)


def prepare(service: Service, case_id: str) -> dict[str, Any]:
    """Gather from every source the playbook names, then draft. Idempotent per case state."""
    cases = service.cases
    case = cases.get(case_id)
    if case.state == State.VERIFIED:
        case = cases.transition(case.id, "start_gathering", "system")
    if case.state == State.GATHERING_FAILED and case.gathering.get("complete") is False:
        flag_failed_sources(service, case)  # a process killed between the two left it unflagged
    if case.state != State.GATHERING:
        return {"skipped": str(case.state)}
    gatherer = service.component("gatherer")
    drafter = service.component("drafter")
    if gatherer is None or drafter is None:
        raise PermanentFailure("no gatherer or drafter configured")
    checkpoint("gather.started")
    result = gatherer.gather(subject_query(case), case.rights)
    checkpoint("gather.done")
    status = {name: dict(s) for name, s in result.sources.items()}
    if not result.complete:
        failed = sorted(name for name, s in status.items() if s.get("status") != "ok")

        def keep_status(c: Case) -> None:
            c.gathering = {"sources": status, "complete": False, "at": service.now().isoformat()}

        case = cases.transition(case.id, "gathering_failed", "system", mutate=keep_status,
                                detail={"count": len(failed)})
        flag_failed_sources(service, case)
        return {"complete": False, "failed": failed}
    draft = drafter.draft(case, result)
    checkpoint("draft.written")

    def keep_draft(c: Case) -> None:
        c.gathering = {"sources": status, "complete": True, "at": service.now().isoformat(),
                       "records": len(result.records)}
        c.draft = draft
        for flag in c.flags:  # a new, complete draft answers these; the agent reviews it afresh
            if flag.code in ("changes_requested", "sources_failed") and not flag.resolved:
                flag.resolved = True

    cases.transition(case.id, "gathered", "system", mutate=keep_draft, detail={"draft_hash": draft["hash"]})
    log.info("case %s drafted (%d records)", case.ref, len(result.records))
    return {"complete": True, "draft_hash": draft["hash"]}


def flag_failed_sources(service: Service, case: Case) -> None:
    """Tell agents which sources failed this gathering, once (unless a flag since the failure says it)."""
    since = case.gathering.get("at", "")
    if any(f.code == "sources_failed" and f.at >= since for f in case.flags):
        return
    failed = sorted(name for name, s in case.gathering.get("sources", {}).items() if s.get("status") != "ok")
    service.cases.flag(case.id, "sources_failed",
                       "no answer from: " + ", ".join(failed) + " (retry or refuse with reasons)")


def setup(service: Service) -> None:
    service.cases.add_planner(plan_prepare)
    # a case left in `gathering` by a prepare that gave up could never be retried by an agent (start_gathering
    # is not allowed from there): keep trying, the case flagged meanwhile
    service.outbox.register(PREPARE, lambda effect: prepare(service, effect["case_id"]), keep_trying=True)

