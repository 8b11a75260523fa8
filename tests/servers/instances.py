"""Several `dsarbot serve` processes on one PostgreSQL database, for tests and benches.

Each instance gets its own data dir (its webhook inbox lives there) and port on 127.0.0.1, and
shares with the others what several instances must share: the store URL, `[service] secret_key`
and `[service] vault_key` (all from the environment, as in production), the fake Zendesk as helpdesk and,
optionally, one IMAP mailbox. `tally()` reads what they did: cases, tickets, outbox effects, audit.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Instance:
    name: str
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None

    def healthy(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as a process manager stops it: waitress closes, the scheduler finishes its job."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Cluster:
    """What the instances share. `settings`: extra TOML sections, e.g. {"reminders": {"digest_hour": 0}}."""

    base: Path
    store_url: str
    zendesk_url: str
    mailbox: Any = None  # a tests.servers.dovecot.Account, or None
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    secret_key: str = field(default_factory=lambda: os.urandom(32).hex())
    vault_key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    instances: list[Instance] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        from tests.fakes import zendesk as zd

        env = {**os.environ, "PYTHONPATH": str(REPO), "DSARBOT_STORE__URL": self.store_url,
               "DSARBOT_SERVICE__SECRET_KEY": self.secret_key, "DSARBOT_SERVICE__VAULT_KEY": self.vault_key,
               "DSARBOT_ZENDESK__API_TOKEN": zd.TOKEN, "DSARBOT_ZENDESK__WEBHOOK_SECRET": zd.SECRET}
        if self.mailbox is not None:
            env["DSARBOT_MAILBOX__PASSWORD"] = self.mailbox.password
        return env

    def config_text(self, name: str, port: int) -> str:
        from tests.fakes import zendesk as zd

        sections: dict[str, dict[str, Any]] = {
            "service": {"data_dir": str(self.base / name / "data"), "host": "127.0.0.1", "port": port,
                        "base_url": f"http://127.0.0.1:{port}", "log_level": "WARNING"},
            "helpdesk": {"kind": "zendesk"},
            "zendesk": {"base_url": self.zendesk_url, "email": zd.EMAIL, "field_ids": zd.FIELD_IDS},
        }
        if self.mailbox is not None:
            sections["mailbox"] = {"enabled": True, "host": self.mailbox.host, "port": self.mailbox.port,
                                   "ssl": False, "username": self.mailbox.username, "poll_seconds": 5}
        for section, values in self.settings.items():
            sections.setdefault(section, {}).update(values)
        return "\n".join(f"[{section}]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in values.items())
                         for section, values in sections.items())

    def start(self, count: int, timeout: float = 60) -> list[Instance]:
        """Start `count` more instances and wait until each answers /healthz."""
        started = []
        for _ in range(count):
            name = f"instance{len(self.instances) + 1}"
            port = free_port()
            home = self.base / name
            home.mkdir(parents=True, exist_ok=True)
            config = home / "dsarbot.toml"
            config.write_text(self.config_text(name, port))
            log_path = home / "service.log"
            with open(log_path, "ab") as log:
                process = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "serve"],
                                           cwd=REPO, env=self.environment(), stdout=log, stderr=subprocess.STDOUT)
            instance = Instance(name, port, home / "data", log_path, process)
            self.instances.append(instance)
            started.append(instance)
        deadline = time.monotonic() + timeout
        for instance in started:
            while not instance.healthy():
                if not instance.alive():
                    raise RuntimeError(f"{instance.name} exited ({instance.process.returncode}):\n{instance.log()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{instance.name} did not answer within {timeout}s:\n{instance.log()}")
                time.sleep(0.1)
        return started

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()

    def inbox_backlog(self) -> int:
        from bot.inbox import Inbox

        total = 0
        for instance in self.instances:
            inbox = Inbox(instance.data_dir / "inbox", lambda: datetime.now(timezone.utc))
            try:
                total += inbox.backlog()
            finally:
                inbox.close()
        return total


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # strings, numbers, booleans and lists read the same in TOML


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> float:
    """Poll `predicate` until truthy; returns the seconds it took, fails after `timeout`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(every)
    return time.monotonic() - start


def due_effects(store: Any) -> list[dict[str, Any]]:
    """Outbox effects that are due now and not done yet (running ones included)."""
    now = datetime.now(timezone.utc).isoformat()
    return [e for e in store.find("outbox", {"status": "pending"}) if e["due_at"] <= now]


def tally(store: Any, audit: Any, zendesk: Any) -> dict[str, Any]:
    """What the instances did, with every way of doing something twice counted."""
    cases = store.find("cases")
    channels = Counter(c["channel"] for c in cases)
    linked = Counter(c["ticket"]["id"] for c in cases if c.get("ticket", {}).get("id"))
    opened_at_fake = Counter(t["external_id"] for t in zendesk.tickets.values() if t.get("external_id"))
    creations = [r.headers.get("idempotency-key", "") for r in zendesk.calls("POST", "/api/v2/tickets.json")]
    effects = store.find("outbox")
    done = [e for e in effects if e["status"] == "done"]
    events = list(audit.events())
    opens = Counter(e["case"] for e in events if e["action"] == "open")
    reminders = Counter((e["case"], e["detail"].get("kind")) for e in events if e["action"] == "reminder")
    verified = audit.verify()
    return {
        "cases": len(cases), "by_channel": dict(channels),
        "tickets_linked": len(linked), "tickets_with_two_cases": sum(1 for n in linked.values() if n > 1),
        "tickets_opened": sum(opened_at_fake.values()),
        "cases_with_two_tickets": sum(1 for n in opened_at_fake.values() if n > 1),
        "ticket_create_requests": len(creations),
        "ticket_creations_repeated": sum(n - 1 for n in Counter(creations).values() if n > 1),
        "effects": len(effects), "effects_done": len(done),
        "effects_later": sum(1 for e in effects if e["status"] == "pending"
                             and e["due_at"] > datetime.now(timezone.utc).isoformat()),
        "effects_failed": sum(1 for e in effects if e["status"] == "failed"),
        "effects_attempted_twice": sum(1 for e in done if e.get("attempts", 0) > 1),
        "effects_by_kind": dict(Counter(e["kind"] for e in done)),
        "effects_by_worker": dict(Counter(e.get("lease_worker", "") for e in done)),
        "audit_ok": verified.ok, "audit_events": verified.lines,
        "cases_opened_twice": sum(1 for n in opens.values() if n > 1),
        "reminders_sent": sum(reminders.values()), "reminders_twice": sum(1 for n in reminders.values() if n > 1),
        "digests": sum(1 for e in done if e["kind"] == "notify.digest"),
    }
