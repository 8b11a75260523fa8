"""One life of the service for the fault suite: build it on a data dir and drive the flow to the end.

    python -m tests.faults.runner SPEC.json          # one run; exit 0 when all the work is done
    python -m tests.faults.runner --zygote           # fork a run per line read on stdin (see below)

The run is the product's own code driven in one thread, in a fixed order, so that the n-th hit of a
checkpoint is the same step from one run to the next: a mailbox pass (`MailboxChannel.poll_job`),
the outbox until nothing is due (`Outbox.run_due`), then what people do, through the product's
APIs: the requester types the code from the mail the SMTP sink spooled (`Verifier.submit_code`),
opens the portal, asks for a code and downloads (`Deliveries`); an agent approves the draft it sees
and closes delivered cases (`CaseBook.transition`). The clock is the real one.
`DSARBOT_FAULT_KILL_AT` (bot.faults) kills the run at a checkpoint; the driver starts another on
the same data dir until one ends with everything done.

Zygote: the imports (WeasyPrint, SQLAlchemy, the classifier...) cost more than a run's work, so the
driver keeps one process that has imported them and forks a run per request. Each stdin line is
`{"spec": PATH, "env": {...}, "log": PATH}`; the answer on stdout is `{"status": N}` (the exit
code, or minus the signal that ended the run).
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
from typing import Any, Callable

from bot import faults
from bot.cases import CaseNotFound
from bot.delivery import DELIVERIES, PORTAL_CODE, deliveries_of
from bot.models import Case, State
from bot.reminders import DIGEST, REMINDER
from bot.service import INTEGRATIONS, Service, build_service
from bot.verification import Outcome, verifier_of
from tests.faults.mails import Spool
from tests.faults.scenario import Spec, runner_config

AGENT = "agent:faults"
DONE, STUCK = 0, 3
#: Effects that wait for a date by design (deadline reminders, days away): not work left for a run.
SCHEDULED = frozenset({REMINDER, DIGEST})


def dedupe_ref(message_id: str) -> str:
    return "dedupe:msgid:" + message_id.strip().strip("<>").lower()


class Runner:
    """`idle` is called when a pass did nothing (default: a short real sleep; the outage tests move
    their clock to the next due effect instead), `tick` before each pass (the outage tests switch
    outages on and off there), and exceptions of the `tolerate` kinds end a step, not the run, as
    the scheduler's guard does for jobs (they are kept in `errors`)."""

    def __init__(self, service: Service, spec: Spec, *, idle: Callable[[], None] | None = None,
                 tick: Callable[[], None] | None = None, tolerate: tuple[type[BaseException], ...] = ()) -> None:
        self.service = service
        self.spec = spec
        self.idle = idle or (lambda: time.sleep(0.05))
        self.tick = tick or (lambda: None)
        self.tolerate = tolerate
        self.errors: list[str] = []
        self.store = service.store
        self.cases = service.cases
        self.spool = Spool(spec.spool)
        self.verifier = verifier_of(service)
        self.deliveries = deliveries_of(service)
        self.tried: set[int] = set()  # spooled mails whose code this life already typed

    # --- what is left ---------------------------------------------------------------------------
    def case_ids(self) -> dict[str, str]:
        """Message-ID -> case id, for the requests intake has finished."""
        found = {}
        for message_id in self.spec.message_ids:
            marker = self.store.get("refs", dedupe_ref(message_id))
            if marker and marker.get("status") == "done":
                found[message_id] = marker.get("case_id", "")
        return found

    def open_cases(self) -> list[Case]:
        cases = []
        for case_id in self.case_ids().values():
            try:
                case = self.cases.get(case_id)
            except CaseNotFound:
                continue
            if case.state != State.CLOSED:
                cases.append(case)
        return cases

    def unfinished(self) -> list[dict[str, Any]]:
        """Effects still to run, however long their backoff (reminders wait for their date)."""
        return [e for e in self.store.find("outbox", {"status": "pending"}) if e["kind"] not in SCHEDULED]

    def done(self) -> bool:
        return (len(self.case_ids()) == len(self.spec.message_ids) and not self.open_cases()
                and not self.unfinished() and not self.store.keys("audit_pending"))

    # --- the loop ---------------------------------------------------------------------------------
    def loop(self) -> int:
        channel = self.service.component("mailbox")
        deadline = time.monotonic() + self.spec.timeout_seconds
        acked_all = False
        while time.monotonic() < deadline:
            self.tick()
            busy = False
            if not acked_all:
                everything_in = self.step(lambda: len(self.case_ids()) == len(self.spec.message_ids))
                polled = self.step(lambda: channel.poll_job() or True)
                acked_all = bool(everything_in and polled)  # that pass saw every request in: it acked any replay
            busy = bool(self.step(self.run_outbox)) or busy
            busy = bool(self.step(self.requester)) or busy
            busy = bool(self.step(self.agent)) or busy
            if acked_all and self.step(self.done):
                return DONE
            if not busy:
                self.idle()
        self.report_stuck()
        return STUCK

    def step(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except self.tolerate as exc:
            self.errors.append(f"{getattr(action, '__name__', 'step')}: {type(exc).__name__}: {exc}"[:300])
            return None

    def run_outbox(self) -> bool:
        ran = False
        while self.service.outbox.run_due():
            ran = True
        return ran

    # --- people -----------------------------------------------------------------------------------
    def requester(self) -> bool:
        acted = False
        for case in self.open_cases():
            if case.state == State.AWAITING_IDENTITY:
                acted = self.type_verification_code(case) or acted
            elif case.state == State.DELIVERED:
                acted = self.download(case) or acted
        return acted

    def type_verification_code(self, case: Case) -> bool:
        latest: dict[str, Any] = {}
        for mail in self.spool.of(case.ref, "verification_code", case.language):
            latest[mail.to] = mail
        for mail in latest.values():
            if mail.index in self.tried:
                continue
            self.tried.add(mail.index)
            if self.verifier.submit_code(mail.link("verify"), mail.code()) == Outcome.VERIFIED:
                return True
        return False

    def download(self, case: Case) -> bool:
        delivery = self.store.get(DELIVERIES, case.delivery.get("id", ""))
        links = self.spool.of(case.ref, "delivery_link", case.language)
        if delivery is None or delivery.get("downloads") or not links:
            return False
        token = links[-1].link("portal")
        codes = self.spool.of(case.ref, "portal_code", case.language)
        if codes and codes[-1].index not in self.tried:
            self.tried.add(codes[-1].index)
            outcome, grant = self.deliveries.unlock(token, codes[-1].code())
            if outcome == Outcome.VERIFIED:
                got = self.deliveries.download(token, grant)
                if got is None or not got.data:
                    raise AssertionError(f"case {case.ref}: the portal gave nothing after a right code")
            return True
        asked = [e for e in self.store.find("outbox", {"kind": PORTAL_CODE, "case_id": case.id})
                 if e["status"] == "pending"]
        if asked:
            return False
        outcome = self.deliveries.request_code(token)
        if outcome != Outcome.SENT:
            raise AssertionError(f"case {case.ref}: asking for a portal code gave {outcome}")
        return True

    def agent(self) -> bool:
        acted = False
        for case in self.open_cases():
            if case.state == State.DRAFTED and not any(f.code == "changes_requested" for f in case.open_flags):
                self.cases.transition(case.id, "approve", AGENT, detail={"draft_hash": case.draft["hash"]},
                                      expected_version=case.version)
                acted = True
            elif case.state == State.DELIVERED:
                delivery = self.store.get(DELIVERIES, case.delivery.get("id", "")) or {}
                if delivery.get("downloads"):
                    self.cases.transition(case.id, "close", AGENT, expected_version=case.version)
                    acted = True
        return acted

    def report_stuck(self) -> None:
        print(f"runner: not done after {self.spec.timeout_seconds}s", file=sys.stderr)
        print(f"  requests in: {len(self.case_ids())}/{len(self.spec.message_ids)}", file=sys.stderr)
        for case in self.open_cases():
            print(f"  {case.ref} {case.state} flags={[f.code for f in case.open_flags]}", file=sys.stderr)
        for effect in self.unfinished():
            print(f"  pending {effect['kind']} attempts={effect.get('attempts')} due={effect['due_at']} "
                  f"lease={effect.get('lease_until')} error={effect.get('last_error', '')[:120]}", file=sys.stderr)


def run(spec_path: str) -> int:
    spec = Spec.read(spec_path)
    service = build_service(runner_config(spec))
    try:
        return Runner(service, spec).loop()
    finally:
        service.close()


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    for noisy in ("weasyprint", "fontTools", "fontTools.subset"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --- the zygote --------------------------------------------------------------------------------
WARM = [*INTEGRATIONS, "bot.drafting.drafter", "bot.drafting.pdf", "weasyprint", "sqlalchemy",
        "integrations.sources.sql", "integrations.sources.event_log", "integrations.sources.consent_log",
        "integrations.sources.script", "integrations.slack_app", "bot.web.app", "psycopg", "psycopg_pool"]


def warm() -> None:
    """What every life would redo: imports, the classifier's compiled lexicons (cached), fonts."""
    for name in WARM:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # a module renamed meanwhile only costs time, never correctness
            print(f"zygote: could not pre-import {name}: {exc}", file=sys.stderr)
    from bot.classifier.lexicon import load
    from bot.drafting.pdf import html_to_pdf

    load()
    html_to_pdf("<p>warm</p>")


def zygote() -> None:
    warm()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(job)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"status": code}), flush=True)


def _child(job: dict[str, Any]) -> None:
    code = 1
    try:
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.update(job.get("env", {}))
        faults.arm()
        configure_logging()
        code = run(job["spec"])
    except BaseException:  # noqa: BLE001 - reported in the run's log, the driver sees the exit code
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        zygote()
    else:
        configure_logging()
        sys.exit(run(sys.argv[1]))
