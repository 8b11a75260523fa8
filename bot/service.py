"""The service container: builds the core from the configuration and lets integrations plug in.

Each integration module under `integrations/` exposes `setup(service)`; it reads its own config
section, and when enabled registers what it brings: outbox handlers, case planners, Flask
blueprints and scheduled jobs. Adding a system is one module plus one line in INTEGRATIONS.
"""
from __future__ import annotations

import hashlib
import importlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from bot.audit import AuditLog, FileAuditLog
from bot.cases import CaseBook
from bot.config import Config, ConfigError, jurisdiction_of
from bot.keyfiles import key_file
from bot.logs import quiet_libraries
from bot.models import utcnow
from bot.outbox import Outbox
from bot.store import Store, open_store
from bot.vault import Vault

log = logging.getLogger(__name__)

#: Audit events parked longer than this were left by a process that died (or another instance's
#: writer is not done yet, if younger): the "audit.flush" job writes them.
AUDIT_FLUSH_AFTER = timedelta(minutes=2)
SHARED_KEYS = "instance_keys"  # kv: hashes of the keys every instance on the database must share

#: Integration modules, set up in this order. Each has `setup(service: Service) -> None`.
INTEGRATIONS: list[str] = [
    "bot.classifier",  # the `classifier` component every channel's intake uses
    "bot.intake_setup",  # first: every channel hands its messages to service.components["intake"]
    "integrations.smtp",  # early: service.components["mailer"] and the "mail.send" outbox handler
    "bot.gathering",  # playbooks, register and data sources ([playbooks])
    "bot.drafting",  # the drafter the pipeline uses
    "bot.pipeline",
    "bot.reminders",
    "bot.web.desk",
    "bot.verification",
    "bot.identity_review",
    "bot.web.form",
    "bot.delivery",
    "integrations.slack",
    "bot.acknowledgement",
    "integrations.mailbox",
    "integrations.helpdesk_sync",  # [helpdesk] kind = zendesk | freshdesk: tickets, notes, webhooks
    "integrations.maildir",  # a Maildir folder as the privacy mailbox (and the demo's inbox)
]


@dataclass
class Job:
    """A recurring job for the scheduler (bot.scheduler)."""

    id: str
    func: Callable[[], Any]
    seconds: float
    single: bool = False  # one instance at a time (bot.scheduler)


@dataclass
class Service:
    config: Config
    store: Store
    audit: AuditLog
    cases: CaseBook
    outbox: Outbox
    now: Callable[[], datetime]
    blueprints: list[Any] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    components: dict[str, Any] = field(default_factory=dict)  # named parts: "mailer", "helpdesk", ...
    startup_checks: list[Callable[[], str | None]] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)  # run by close(), before the store closes

    @property
    def data_dir(self) -> Path:
        return self.config.data_path

    def component(self, name: str) -> Any:
        return self.components.get(name)

    def shared(self, name: str, build: Callable[[], Any]) -> Any:
        """The one `name` component, built on first use (parts that need each other ask for it here)."""
        if self.components.get(name) is None:
            self.components[name] = build()
        return self.components[name]

    def add_job(self, job_id: str, func: Callable[[], Any], seconds: float, *, single: bool = False) -> None:
        """`single`: never run by two instances at once (a purge); leave it off for work whose items
        are claimed one by one (the outbox), so that every instance helps."""
        self.jobs.append(Job(job_id, func, seconds, single))

    def run_startup_checks(self) -> list[str]:
        """Each check returns None when fine, or a sentence saying what is wrong and how to fix it."""
        problems = []
        for check in self.startup_checks:
            try:
                problem = check()
            except Exception as exc:  # noqa: BLE001 - a check must never stop the service
                problem = f"{getattr(check, '__qualname__', check)} raised {type(exc).__name__}: {exc}"
            if problem:
                log.warning("startup check: %s", problem)
                problems.append(problem)
        return problems

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:  # noqa: BLE001 - closing the store matters more
                log.exception("closing %s failed", getattr(closer, "__qualname__", closer))
        self.store.close()


def secret_key(config: Config) -> str:
    """The configured secret, or one generated once into the data dir (mode 600)."""
    if config.service.secret_key:
        return config.service.secret_key
    return key_file(config.data_path / "secret.key", lambda: secrets.token_hex(32).encode()).decode()


def _on_postgres(config: Config) -> bool:
    return config.store.url.startswith(("postgresql:", "postgres:"))


def open_vault(config: Config, store: Store) -> Vault:
    """The vault beside the store: files in the data dir, or the database that all instances share."""
    if _on_postgres(config):
        from bot.store.postgres_store import PostgresBlobs

        return Vault(config.data_path, config.service.vault_key, PostgresBlobs(store))  # type: ignore[arg-type]
    return Vault(config.data_path, config.service.vault_key)


def _fingerprint(secret: str | bytes) -> str:
    data = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(b"dsarbot key check\x00" + data).hexdigest()[:16]


def check_shared_keys(config: Config, store: Store, vault: Vault) -> None:
    """Instances on one database must share the service secret (sessions, links, codes) and the
    vault key (files any instance wrote). Each instance's were generated into its own data dir
    unless configured: refuse to start with other keys than the database was first used with.
    Only a hash is kept, never a key."""
    mine = {"secret_key": _fingerprint(secret_key(config)), "vault_key": _fingerprint(vault.key_id)}
    if store.insert_new("kv", SHARED_KEYS, mine):
        return
    known = store.get("kv", SHARED_KEYS) or {}
    wrong = [name for name in ("secret_key", "vault_key") if known.get(name) != mine[name]]
    if wrong:
        names = {"secret_key": "[service] secret_key (DSARBOT_SERVICE__SECRET_KEY)",
                 "vault_key": "[service] vault_key (DSARBOT_SERVICE__VAULT_KEY)"}
        raise ConfigError(f"{' and '.join(names[w] for w in wrong)} differ from the ones this database was first "
                          "used with: every instance on one database must have the same; copy them from the first "
                          "instance (its data dir's secret.key and vault.key, or its environment)")


def open_audit(config: Config, store: Store) -> AuditLog:
    """The audit trail beside the store: a file with the embedded store, a table with PostgreSQL."""
    key = config.audit.key.encode() or None
    if _on_postgres(config):
        from bot.audit import PostgresAuditLog

        return PostgresAuditLog(store, key=key)
    return FileAuditLog(config.data_path, key=key)


def build_service(config: Config, now: Callable[[], datetime] = utcnow,
                  integrations: list[str] | None = None) -> Service:
    """Build the core, then let each integration plug itself in."""
    quiet_libraries()
    config.data_path.mkdir(parents=True, exist_ok=True)
    store = open_store(config.store.url, config.data_path)
    vault = open_vault(config, store)
    if _on_postgres(config):
        try:
            check_shared_keys(config, store, vault)
        except ConfigError:
            store.close()
            raise
    audit = open_audit(config, store)
    cases = CaseBook(store, audit, now, jurisdiction_of(config))
    outbox = Outbox(store, now)
    service = Service(config=config, store=store, audit=audit, cases=cases, outbox=outbox, now=now,
                      components={"vault": vault})

    def flag_failed_effect(effect: dict[str, Any]) -> None:
        if effect.get("case_id"):
            still = " (still retrying)" if effect.get("status") == "pending" else ""
            cases.flag(effect["case_id"], f"effect_failed:{effect['kind']}",
                       f"{effect['kind']} failed after {effect['attempts']} attempts{still}: "
                       f"{effect['last_error'][:200]}")

    def resolve_recovered_effect(effect: dict[str, Any]) -> None:
        if effect.get("case_id"):
            cases.resolve_flag(effect["case_id"], f"effect_failed:{effect['kind']}", "system")

    outbox.on_failure = flag_failed_effect
    outbox.on_recovered = resolve_recovered_effect
    # a restart after a crash: mend the audit file, write the events this host's dead processes left
    # parked (before anything newer about their cases), and resume the effects they held
    audit.recover()
    cases.flush_orphaned_audit()
    outbox.release_dead_leases()
    service.add_job("audit.flush", lambda: cases.flush_pending_audit(older_than=AUDIT_FLUSH_AFTER), seconds=60,
                    single=True)
    service.add_job("outbox", outbox.run_backlog, seconds=2)
    for name in INTEGRATIONS if integrations is None else integrations:
        importlib.import_module(name).setup(service)
    return service
