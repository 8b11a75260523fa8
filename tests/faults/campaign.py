"""The kill campaign: rounds of requests driven to the end by runner lives killed at sampled checkpoints.

One round: a fresh data dir and IMAP account, `requests` mails APPENDed, then runner lives
(tests/faults/runner.py) on that data dir. Each life but the last gets a kill point
`DSARBOT_FAULT_KILL_AT=<checkpoint>:<n>`; a life that ends without being killed has finished the
work, and the round is checked (tests/faults/checks.py). Kill points are (checkpoint, n) pairs
drawn with a seeded RNG from a census: an uninterrupted round counts how often each checkpoint is
passed, which bounds n. A pair is used once per campaign; a drawn pair that the life never reaches
is put back and not counted as tried.

The servers live in this process for the whole campaign: Dovecot, the SMTP sink (spooling what it
accepts for the runner's requester), the fake Slack, the fake Zendesk (`helpdesk`); with `postgres`,
each round's store is its own PostgreSQL database (dropped at the end).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from bot.demo_shop import seed_demo_shop
from bot.faults import CHECKPOINTS
from bot.models import utcnow
from tests.fakes.slack import FakeSlack
from tests.fakes.zendesk import FakeZendesk
from tests.faults.checks import Findings, check_round
from tests.faults.scenario import SENDERS, Spec, request_mail
from tests.servers.dovecot import running_dovecot
from tests.servers.postgres import fresh_database
from tests.servers.smtp import running_sink
from tests.shared import REPO

KILLED = -9
STAGES = ("intake", "gather", "draft", "deliver", "outbox", "store")


class Zygote:
    """A process that has imported the service once and forks one runner life per request."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.faults.runner", "--zygote"], cwd=REPO,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONPATH": str(REPO)})
        ready = self.process.stdout.readline()
        if not ready.strip():
            raise RuntimeError("the runner zygote did not start (see its stderr above)")

    def run(self, spec: Path, env: dict[str, str], log: Path, timeout: float) -> int:
        self.process.stdin.write(json.dumps({"spec": str(spec), "env": env, "log": str(log)}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()  # the life has its own timeout (Spec.timeout_seconds)
        if not line:
            raise RuntimeError("the runner zygote died")
        return int(json.loads(line)["status"])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Kill:
    point: str  # "<checkpoint>:<n>"
    round: int
    sink_count: int  # mails the SMTP sink had accepted when the life died

    @property
    def checkpoint(self) -> str:
        return self.point.rpartition(":")[0]


@dataclass
class Report:
    seed: int
    rounds: int = 0
    requests: int = 0
    lives: int = 0
    kills: list[Kill] = field(default_factory=list)
    not_reached: int = 0  # drawn kill points the life never reached (put back, not counted)
    census: dict[str, int] = field(default_factory=dict)
    findings: Findings = field(default_factory=Findings)
    wall_seconds: float = 0.0

    @property
    def distinct_points(self) -> int:
        return len({k.point for k in self.kills})

    def by_stage(self) -> dict[str, int]:
        return dict(sorted(Counter(k.checkpoint.split(".")[0] for k in self.kills).items()))

    def summary(self) -> dict[str, Any]:
        return {"seed": self.seed, "rounds": self.rounds, "requests": self.requests, "lives": self.lives,
                "kill_points_tried": self.distinct_points, "kills": len(self.kills),
                "kills_by_stage": self.by_stage(), "not_reached": self.not_reached,
                "requests_lost": self.findings.lost, "duplicates": dict(self.findings.duplicates),
                "unexplained_duplicates": self.findings.unexplained, "problems": self.findings.problems[:20],
                "wall_seconds": round(self.wall_seconds, 1)}


class Sampler:
    """Draws unused (checkpoint, n) pairs that the next life is likely to reach.

    What is left of a round's work is estimated from the census minus the hits its earlier lives
    traced: n is drawn within that (retries make the estimate a little short, never wrong), small
    n more often, so that a round is killed several times before its work is done."""

    def __init__(self, census: dict[str, int], seed: int) -> None:
        self.census = {name: count for name, count in census.items() if count > 0}
        self.rng = random.Random(seed)
        self.used: set[str] = set()

    def draw(self, passed: Counter, stage: str = "") -> str | None:
        """A stage first (so that the few gather and draft points get their share), then a point in it.
        `stage` chooses it (a round's first life, the only one that reads all its mail, takes turns)."""
        left = {name: count - passed[name] for name, count in self.census.items() if count > passed[name]}
        stages = sorted({name.split(".")[0] for name in left})
        for attempt in range(200):
            if not stages:
                return None
            chosen = stage if stage in stages and attempt < 20 else self.rng.choice(stages)
            name = self.rng.choice(sorted(n for n in left if n.startswith(chosen + ".")))
            point = f"{name}:{1 + int(left[name] * self.rng.random() ** 2)}"  # early kills leave more to kill
            if point not in self.used:
                return point
        return None


class Campaign:
    def __init__(self, workdir: Path, *, seed: int, requests_per_round: int = 4, kills_per_round: int = 6,
                 senders: list[int] | None = None, postgres: bool = False, helpdesk: bool = True,
                 life_timeout: float = 240.0, log: Callable[[str], None] = lambda line: None) -> None:
        self.workdir = workdir
        self.senders = senders or list(range(len(SENDERS)))
        self.seed = seed
        self.requests_per_round = requests_per_round
        self.kills_per_round = kills_per_round
        self.postgres = postgres
        self.helpdesk = helpdesk
        self.life_timeout = life_timeout
        self.log = log
        self.report = Report(seed)
        self._stack = ExitStack()

    # --- servers ----------------------------------------------------------------------------------
    def __enter__(self) -> "Campaign":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.spool = self.workdir / "spool"
        self.spool.mkdir(exist_ok=True)
        self.dovecot = self._stack.enter_context(running_dovecot())  # in /tmp: its own users must reach it
        self.sink = self._stack.enter_context(running_sink(self.spool))
        self.slack = FakeSlack().start()
        self._stack.callback(self.slack.stop)
        self.zendesk = self._stack.enter_context(FakeZendesk()) if self.helpdesk else None
        self.zygote = Zygote()
        self._stack.callback(self.zygote.close)
        self.fault_log = self.workdir / "faults.log"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    # --- rounds -----------------------------------------------------------------------------------
    def new_round(self, number: int) -> tuple[Spec, Path, Any]:
        base = self.workdir / f"round-{number}"
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        account = self.dovecot.add_user()
        now = utcnow()
        tag = f"{self.seed}-{number}-{uuid.uuid4().hex[:6]}"
        message_ids = []
        for index in range(self.requests_per_round):
            sender = self.senders[(index + number) % len(self.senders)]
            message_id, raw = request_mail(sender, f"{tag}-{index}", now - timedelta(hours=1))
            account.append(raw)
            message_ids.append(message_id)
        seed_demo_shop(base / "shop", now)
        spec = Spec(data_dir=str(base / "data"), shop_dir=str(base / "shop"), spool=str(self.spool),
                    imap={"host": account.host, "port": account.port, "username": account.username,
                          "password": account.password},
                    smtp_port=self.sink.port, slack_url=self.slack.base_url, message_ids=message_ids,
                    store_url=self._database() if self.postgres else "", timeout_seconds=self.life_timeout,
                    zendesk={"base_url": self.zendesk.url} if self.zendesk else {})
        self.report.rounds += 1
        self.report.requests += len(message_ids)
        return spec, spec.write(base / "spec.json"), account

    def _database(self) -> str:
        return self._stack.enter_context(fresh_database(prefix="dsarbot_faults_"))

    def life(self, spec_path: Path, env: dict[str, str], log: Path) -> int:
        self.report.lives += 1
        return self.zygote.run(spec_path, env, log, self.life_timeout)

    def census(self) -> dict[str, int]:
        """An uninterrupted round, traced: how often each checkpoint is passed. Checked like any round."""
        spec, spec_path, account = self.new_round(0)
        trace = self.workdir / "census.trace"
        trace.unlink(missing_ok=True)
        status = self.life(spec_path, {"DSARBOT_FAULT_TRACE": str(trace)}, Path(spec.data_dir).parent / "life.log")
        if status != 0:
            raise AssertionError(f"the uninterrupted round did not finish (exit {status}); see "
                                 f"{Path(spec.data_dir).parent / 'life.log'}")
        counts = Counter(trace.read_text().split())
        self.report.census = {name: counts.get(name, 0) for name in CHECKPOINTS}
        self.check(spec, account, [])
        return self.report.census

    def kill_round(self, number: int, sampler: Sampler, budget: int) -> int:
        """One round with up to `budget` kills; returns how many kills happened."""
        spec, spec_path, account = self.new_round(number)
        life_log = Path(spec.data_dir).parent / "life.log"
        trace = Path(spec.data_dir).parent / "passed.trace"  # every life of the round adds its hits
        kills: list[Kill] = []
        while True:
            passed = Counter(trace.read_text().split()) if trace.exists() else Counter()
            first = STAGES[(number - 1) % len(STAGES)] if not kills else ""
            point = sampler.draw(passed, first) if len(kills) < budget else None
            env = {"DSARBOT_FAULT_LOG": str(self.fault_log), "DSARBOT_FAULT_TRACE": str(trace)}
            if point:
                env["DSARBOT_FAULT_KILL_AT"] = point
            fired_before = self._fired()
            status = self.life(spec_path, env, life_log)
            if status == KILLED:
                fired = self._fired()[len(fired_before):]
                if fired != [point]:
                    raise AssertionError(f"round {number}: the life died by SIGKILL at {fired}, planned {point}")
                sampler.used.add(point)
                kill = Kill(point, number, len(self.sink.envelopes))
                kills.append(kill)
                self.report.kills.append(kill)
                self.log(f"round {number}: killed at {point} ({len(self.report.kills)} kills, "
                         f"{self.report.distinct_points} distinct)")
                continue
            if status != 0:
                raise AssertionError(f"round {number}: a life ended with status {status} (not killed, not done); "
                                     f"see {life_log}")
            if point:
                self.report.not_reached += 1
            break
        self.check(spec, account, kills)
        return len(kills)

    def check(self, spec: Spec, account: Any, kills: list[Kill]) -> None:
        check_round(spec, account, self.slack, self.sink, kills, self.report.findings, self.zendesk)

    def _fired(self) -> list[str]:
        return self.fault_log.read_text().split() if self.fault_log.exists() else []

    def run(self, kill_points: int) -> Report:
        """Rounds until `kill_points` distinct points have killed a life."""
        started = time.monotonic()
        census = self.census()
        self.log(f"census: {census}")
        sampler = Sampler(census, self.seed)
        number = 1
        stalled = 0
        while self.report.distinct_points < kill_points:
            budget = min(self.kills_per_round, kill_points - self.report.distinct_points)
            killed = self.kill_round(number, sampler, budget)
            stalled = 0 if killed else stalled + 1
            if stalled >= 5:
                raise AssertionError("five rounds in a row without reaching any drawn kill point")
            number += 1
        self.report.wall_seconds = time.monotonic() - started
        return self.report


def run_campaign(kill_points: int, seed: int, workdir: Path | None = None, **options: Any) -> Report:
    own = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="dsarbot-faults-"))
    try:
        with Campaign(workdir, seed=seed, **options) as campaign:
            return campaign.run(kill_points)
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
