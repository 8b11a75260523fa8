"""Outages: SMTP, Slack and Zendesk down, refusing or rate limiting for a while, and the database
restarting under the service. Afterwards nothing is lost or doubled and every case is legal (the
same checks as after kills: tests/faults/checks.py, with no kill to excuse any duplicate mail).

The whole flow runs in this process on an injected clock: retries and Retry-After waits are moves
of the clock to the next due effect, never sleeps, and outages start and end at clock times.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg

from bot.demo_shop import seed_demo_shop
from bot.models import parse_datetime
from bot.service import Service, build_service
from bot.store import StoreError
from tests.fakes.slack import FakeSlack
from tests.fakes.zendesk import FakeZendesk
from tests.faults.campaign import Kill
from tests.faults.checks import Findings, check_round
from tests.faults.runner import DONE, Runner
from tests.faults.scenario import Spec, request_mail, runner_config
from tests.servers.dovecot import Account, dovecot  # noqa: F401 - fixture
from tests.servers.postgres import ADMIN_URL, pg_url  # noqa: F401 - fixture
from tests.servers.smtp import SmtpSink, running_sink

SENDERS = [4, 5, 3]  # a newsletter subscriber, a stranger, a customer with a loyalty account


class Clock:
    def __init__(self) -> None:
        self.value = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.value

    def minutes(self, since: datetime) -> float:
        return (self.value - since).total_seconds() / 60


@dataclass
class World:
    spec: Spec
    account: Account
    sink: SmtpSink
    slack: FakeSlack
    zendesk: FakeZendesk
    clock: Clock
    service: Service
    started: datetime

    def skip_to_next_due(self) -> None:
        """Nothing to do now: the clock jumps to the next effect due (what waiting would do)."""
        dues = [parse_datetime(e["due_at"]) for e in self.service.store.find("outbox", {"status": "pending"})]
        later = [d for d in dues if d > self.clock.value]
        self.clock.value = min(later) if later and min(later) - self.clock.value < timedelta(hours=3) \
            else self.clock.value + timedelta(seconds=1)

    def run(self, tick: Callable[[], None], tolerate: tuple[type[BaseException], ...] = ()) -> Runner:
        runner = Runner(self.service, self.spec, idle=self.skip_to_next_due, tick=tick, tolerate=tolerate)
        assert runner.loop() == DONE, runner.errors[-5:]
        return runner

    def check(self) -> Findings:
        findings = Findings()
        check_round(self.spec, self.account, self.slack, self.sink, [], findings, self.zendesk)
        return findings

    def effects(self, prefix: str) -> list[dict[str, Any]]:
        return [e for e in self.service.store.find("outbox") if e["kind"].startswith(prefix)]


@contextmanager
def world(tmp_path: Path, dovecot, store_url: str = "") -> Iterator[World]:  # noqa: F811 - the fixture's value
    spool = tmp_path / "spool"
    spool.mkdir()
    account = dovecot.add_user()
    message_ids = []
    for index, sender in enumerate(SENDERS):
        message_id, raw = request_mail(sender, f"{tmp_path.name}-{index}", datetime.now(timezone.utc))
        account.append(raw)
        message_ids.append(message_id)
    seed_demo_shop(tmp_path / "shop", datetime.now(timezone.utc))
    clock = Clock()
    with ExitStack() as stack:
        sink = stack.enter_context(running_sink(spool))
        slack = FakeSlack().start()
        stack.callback(slack.stop)
        zendesk = stack.enter_context(FakeZendesk())
        spec = Spec(data_dir=str(tmp_path / "data"), shop_dir=str(tmp_path / "shop"), spool=str(spool),
                    imap={"host": account.host, "port": account.port, "username": account.username,
                          "password": account.password}, smtp_port=sink.port, slack_url=slack.base_url,
                    message_ids=message_ids, store_url=store_url, zendesk={"base_url": zendesk.url},
                    timeout_seconds=240)
        service = build_service(runner_config(spec), now=clock)
        try:
            yield World(spec, account, sink, slack, zendesk, clock, service, clock())
        finally:
            service.close()


def test_smtp_slack_and_zendesk_down_then_back_lose_nothing_and_double_nothing(tmp_path, dovecot):
    with world(tmp_path, dovecot) as w:
        w.sink.busy = True  # 0-2 min: 421 to every MAIL FROM; 2-4 min: 451 to every RCPT; 4-6 min: port closed
        w.slack.api.fail(4, 429, {"Retry-After": "30"})  # Slack rate limits, then errors, then loses answers
        w.slack.api.fail(4, 503)
        w.slack.api.lose(2, path=r"chat\.postMessage")
        w.zendesk.down()  # 0-5 min: every request dropped
        phase = {"smtp": 0, "zendesk": 0}

        def tick() -> None:
            minutes = w.clock.minutes(w.started)
            if phase["smtp"] == 0 and minutes >= 2:
                w.sink.busy, w.sink.temp_fail, phase["smtp"] = False, True, 1
            elif phase["smtp"] == 1 and minutes >= 4:
                w.sink.temp_fail, phase["smtp"] = False, 2
                w.sink.stop_listening()
            elif phase["smtp"] == 2 and minutes >= 6:
                w.sink.start_listening()
                phase["smtp"] = 3
            if phase["zendesk"] == 0 and minutes >= 5:
                w.zendesk.up()  # back, rate limiting, and losing answers to creations and notes
                w.zendesk.fail(3, 429, {"Retry-After": "20"})
                w.zendesk.lose(2, path=r"/api/v2/tickets\.json", method="POST")
                w.zendesk.lose(1, path=r"/api/v2/tickets/\d+\.json", method="PUT",
                               when=lambda seen: b"dsarbot_ref" in seen.body)
                phase["zendesk"] = 1

        w.run(tick)
        findings = w.check()
        assert findings.problems == [], "\n".join(findings.problems)
        assert findings.lost == 0 and sum(findings.duplicates.values()) == 0, findings.duplicates
        # the outages did happen, and were got through by retrying
        assert phase == {"smtp": 3, "zendesk": 1}
        assert w.sink.refused >= 4
        assert all(f.remaining == 0 for f in w.slack.api._faults + w.zendesk._faults)  # noqa: SLF001
        for family in ("mail.", "slack.", "helpdesk."):
            assert max(e["attempts"] for e in w.effects(family)) > 1, family


def test_smtp_down_for_two_hours_still_loses_nothing(tmp_path, dovecot):
    """Longer than the outbox's retry budget (8 attempts, about 10 minutes): mail keeps trying, the
    cases are flagged meanwhile, and the flags go once the mail went out."""
    with world(tmp_path, dovecot) as w:
        w.sink.stop_listening()
        flagged: set[str] = set()

        def tick() -> None:
            for case in w.service.cases.all():
                flagged.update(f.code for f in case.open_flags if f.code.startswith("effect_failed:"))
            if w.sink._controller is None and w.clock.minutes(w.started) >= 120:  # noqa: SLF001
                w.sink.start_listening()

        w.run(tick)
        findings = w.check()
        assert findings.problems == [], "\n".join(findings.problems)
        assert findings.lost == 0 and sum(findings.duplicates.values()) == 0, findings.duplicates
        assert "effect_failed:mail.send" in flagged  # agents were told while it lasted


def _terminate_backends(url: str) -> int:
    """What a database restart does to the service's connections (without restarting a server that
    other tests share): every backend of this database is terminated."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchall()
    return len(rows)


def test_the_database_restarting_again_and_again_loses_nothing(tmp_path, dovecot, pg_url):
    """At every other pass the database 'restarts' between operations (all its connections are cut),
    and at every tenth case change, and the first delivery, in the middle of the change's transaction.
    That delivery's mail was sent and the record of it fails: it is sent again on retry (the same
    Message-ID), the one duplicate allowed here, as after a kill at the same point."""
    with world(tmp_path, dovecot, store_url=pg_url) as w:
        passes = {"n": 0, "restarts": 0, "changes": 0}
        cut: list[Kill] = []  # restarts inside a transaction, described as the kill they amount to

        def tick() -> None:
            passes["n"] += 1
            if passes["n"] % 2 == 0:
                passes["restarts"] += bool(_terminate_backends(pg_url))

        def restart_mid_transaction(change) -> list:
            passes["changes"] += 1
            first_delivery = change.action == "deliver" and not any(k.checkpoint == "deliver.mailed" for k in cut)
            if (passes["changes"] % 10 == 0 or first_delivery) and _terminate_backends(pg_url):
                # `deliver` records a delivery mail already sent: failing it is a kill at deliver.mailed
                where = "deliver.mailed" if change.action == "deliver" else "store.case_committed"
                cut.append(Kill(f"{where}:{passes['changes']}", 0, len(w.sink.envelopes)))
            return []

        w.service.cases.planners.insert(0, restart_mid_transaction)
        runner = w.run(tick, tolerate=(psycopg.Error, StoreError))
        findings = Findings()
        check_round(w.spec, w.account, w.slack, w.sink, cut, findings, w.zendesk)
        assert findings.problems == [], "\n".join(findings.problems)
        assert findings.lost == 0 and findings.unexplained == 0
        assert {kind: n for kind, n in findings.duplicates.items() if kind != "emails"} == {}
        assert passes["restarts"] >= 3 and len(cut) >= 4
        assert findings.duplicates["emails"] <= sum(k.checkpoint == "deliver.mailed" for k in cut) == 1
        # a restart between operations is not even seen; one in a transaction fails that step only
        assert len(runner.errors) <= len(cut), runner.errors
