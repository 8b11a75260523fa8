"""Gathering: run a right's playbook against the sources and return every record found, with provenance.

Identity resolution starts from the verified e-mails (and verified identifiers) only; sources then
publish identifiers they found from those (customer id, visitor id ...) for the steps after them.
Names and phones are never search keys (bot.identity). Sources run concurrently, each within its
time limit; one that is down, slow or refuses credentials makes the result incomplete, says why,
and can be retried alone. Records are personal data: they are returned, never stored or logged here.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from bot.config import ConfigError, PlaybooksConfig
from bot.identity import check_kind, merge, normalise_email, seeds
from bot.models import utcnow
from bot.playbooks import PlannedStep, Playbooks
from bot.register import Register, RegisterError, load_register
from integrations.base import (AuthFailed, IntegrationError, Misconfigured, NotReady, OnFileContact, Record, Source,
                               SourceResult, SubjectQuery)
from integrations.sources import SourceContext, build_sources

log = logging.getLogger(__name__)

OK, FAILED, TIMEOUT, AUTH_FAILED = "ok", "failed", "timeout", "auth_failed"
VERIFIED = "verified"


@dataclass
class GatherResult:
    """What the sources hold about the subject, and whether every source answered."""

    query: SubjectQuery
    rights: list[str]
    records: list[Record]
    sources: dict[str, dict[str, Any]]  # name -> {status, error, count, duration_ms, system, searched_with, ...}
    identifiers: dict[str, list[str]]  # every identifier known at the end (verified + discovered)
    found_by: dict[str, dict[str, str]]  # kind -> value -> "verified" or the source that discovered it
    started_at: str
    finished_at: str
    portable: list[int] = field(default_factory=list)  # indexes of records Art. 20 covers

    @property
    def complete(self) -> bool:
        return all(s["status"] == OK for s in self.sources.values())

    @property
    def failures(self) -> dict[str, str]:
        """Source -> why it is missing (or partial); empty when complete."""
        return {name: f"{s['status']}: {s['error']}" if s["error"] else s["status"]
                for name, s in self.sources.items() if s["status"] != OK}

    @property
    def matched(self) -> dict[str, dict[str, list[str]]]:
        """Source -> entity -> the identifiers that matched there (e.g. "customer_id via ps_customer")."""
        out: dict[str, dict[str, set[str]]] = {}
        for record in self.records:
            out.setdefault(record.source, {}).setdefault(record.entity, set()).update(record.matched_on)
        return {s: {e: sorted(m) for e, m in ents.items()} for s, ents in out.items()}

    def records_for(self, right: str) -> list[Record]:
        """The records that belong in the answer to `right` (portability keeps what Art. 20 covers)."""
        if right == "portability":
            return [self.records[i] for i in self.portable]
        return list(self.records)

    def summary(self) -> dict[str, Any]:
        """Without personal data: fit for the case, the audit trail and logs."""
        return {"complete": self.complete, "rights": self.rights, "sources": self.sources,
                "failures": self.failures, "records": len(self.records),
                "identifier_kinds": sorted(self.identifiers), "started_at": self.started_at,
                "finished_at": self.finished_at}


def _error_status(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, AuthFailed):
        return AUTH_FAILED, str(exc)
    if isinstance(exc, (NotReady, Misconfigured, IntegrationError, RegisterError)):
        return FAILED, str(exc)
    # Other exceptions' messages may quote the data they choked on: keep only the type.
    return FAILED, f"unexpected {type(exc).__name__} in the source"


class Gatherer:
    def __init__(self, sources: Mapping[str, Source], playbooks: Playbooks, register: Register,
                 now: Callable[[], datetime] = utcnow, max_workers: int = 8) -> None:
        self.sources = dict(sources)
        self.playbooks = playbooks
        self.register = register
        self.now = now
        self.max_workers = max(1, max_workers)

    # --- gathering -----------------------------------------------------------------------------
    def gather(self, query: SubjectQuery, rights: list[str]) -> GatherResult:
        known = seeds(query.emails, query.identifiers)
        if not known:
            raise ValueError("a gathering needs at least one verified e-mail or identifier")
        found_by = {kind: {v: VERIFIED for v in values} for kind, values in known.items()}
        steps = self.playbooks.plan(rights)
        started = self.now().isoformat()
        records, status = self._run(steps, set(steps), known, found_by, query.case_id)
        return self._result(query, rights, records, status, known, found_by, started)

    def retry(self, previous: GatherResult, source_name: str) -> GatherResult:
        """Run one source again, and every source that used identifiers it publishes."""
        steps = self.playbooks.plan(previous.rights)
        if source_name not in steps:
            raise KeyError(f"{source_name!r} is not part of this gathering (sources: {', '.join(sorted(steps))})")
        rerun = {source_name}
        while True:
            more = {n for n, s in steps.items() if s.deps & rerun} - rerun
            if not more:
                break
            rerun |= more
        found_by = {kind: {v: origin for v, origin in values.items() if origin not in rerun}
                    for kind, values in previous.found_by.items()}
        found_by = {k: v for k, v in found_by.items() if v}
        known = {kind: list(values) for kind, values in found_by.items()}
        kept = [r for r in previous.records if r.source not in rerun]
        earlier = {n: s for n, s in previous.sources.items() if n not in rerun}
        records, status = self._run(steps, rerun, known, found_by, previous.query.case_id, earlier)
        merged_status = {**earlier, **status}
        return self._result(previous.query, previous.rights, kept + records, merged_status, known, found_by,
                            previous.started_at)

    def _result(self, query: SubjectQuery, rights: list[str], records: list[Record],
                status: dict[str, dict[str, Any]], known: dict[str, list[str]],
                found_by: dict[str, dict[str, str]], started: str) -> GatherResult:
        described: dict[tuple[str, str], bool] = {}
        for record in records:
            key = (record.source, record.entity)
            if key not in described:
                described[key] = self.register.describe(*key).portable
        portable = [i for i, r in enumerate(records) if described[(r.source, r.entity)]]
        return GatherResult(query=query, rights=list(rights), records=records, sources=status,
                            identifiers={k: list(v) for k, v in known.items()}, found_by=found_by,
                            started_at=started, finished_at=self.now().isoformat(), portable=portable)

    def _run(self, steps: dict[str, PlannedStep], to_run: set[str], known: dict[str, list[str]],
             found_by: dict[str, dict[str, str]], case_id: str, earlier: dict[str, dict[str, Any]] | None = None
             ) -> tuple[list[Record], dict[str, dict[str, Any]]]:
        """Run `to_run` (a subset of `steps`) in dependency order, concurrently, each within its time limit.

        `earlier`: the statuses of steps not run again (a retry), so a step knows which inputs failed.
        """
        records: list[Record] = []
        status: dict[str, dict[str, Any]] = {}
        pending = set(to_run)
        running: dict[Future, tuple[str, float, float]] = {}  # future -> (name, started, deadline)
        pool = ThreadPoolExecutor(max_workers=min(self.max_workers, len(to_run)) or 1,
                                  thread_name_prefix="gather")
        try:
            while pending or running:
                for name in sorted(pending):
                    step = steps[name]
                    if step.deps & (pending | {n for n, _, _ in running.values()}):
                        continue
                    pending.discard(name)
                    query = self._query_for(step, known, found_by, case_id)
                    started = time.monotonic()
                    status[name] = {"status": OK, "error": "", "count": 0, "duration_ms": 0,
                                    "system": step.source.system,
                                    "searched_with": sorted([*(["email"] if query.emails else []),
                                                             *query.identifiers]),
                                    "incomplete_inputs": sorted(
                                        d for d in step.deps
                                        if {**(earlier or {}), **status}.get(d, {}).get("status", OK) != OK)}
                    if not status[name]["searched_with"]:
                        continue  # nothing to search with: nothing this source can hold about the subject
                    running[pool.submit(step.source.find, query)] = (name, started, started + step.timeout)
                if not running:
                    continue
                nearest = min(deadline for _, _, deadline in running.values())
                done, _ = wait(list(running), timeout=max(0.0, nearest - time.monotonic()),
                               return_when=FIRST_COMPLETED)
                now = time.monotonic()
                for future in list(running):
                    name, started, deadline = running[future]
                    if future in done:
                        del running[future]
                        status[name]["duration_ms"] = int((now - started) * 1000)
                        self._collect(steps[name], future, status[name], records, known, found_by, case_id)
                    elif now >= deadline:
                        del running[future]  # the thread is abandoned; the source's own limits end it
                        status[name].update(status=TIMEOUT, duration_ms=int((now - started) * 1000),
                                            error=f"no answer within {steps[name].timeout:g} s")
                        log.warning("case %s: source %s timed out", case_id or "-", name)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return records, status

    @staticmethod
    def _query_for(step: PlannedStep, known: dict[str, list[str]], found_by: dict[str, dict[str, str]],
                   case_id: str) -> SubjectQuery:
        """What a step may search with: for kinds it publishes itself, only the verified values."""
        def usable(kind: str) -> list[str]:
            values = known.get(kind, [])
            if kind in step.publishes:
                values = [v for v in values if found_by.get(kind, {}).get(v) == VERIFIED]
            return list(values)

        identifiers = {k: usable(k) for k in known if k != "email" and k in step.accepts}
        return SubjectQuery(emails=usable("email") if "email" in step.accepts else [],
                            identifiers={k: v for k, v in identifiers.items() if v}, case_id=case_id)

    def _collect(self, step: PlannedStep, future: Future, status: dict[str, Any], records: list[Record],
                 known: dict[str, list[str]], found_by: dict[str, dict[str, str]], case_id: str) -> None:
        try:
            result: SourceResult = future.result()
            found = [self._provenance(step, r, found_by) for r in result.records]
        except Exception as exc:  # noqa: BLE001 - every failure becomes a visible status, never a crash
            status["status"], status["error"] = _error_status(exc)
            log.warning("case %s: source %s %s (%s)", case_id or "-", step.name, status["status"],
                        type(exc).__name__)
            return
        records.extend(found)
        status["count"] = len(found)
        if result.error:
            # SaaS sources prefix the outcome ("auth_failed: ...", integrations.sources.api_source).
            refused = result.error.startswith("auth_failed:")
            status["status"] = AUTH_FAILED if refused else FAILED
            status["error"] = result.error.split(":", 1)[1].strip() if refused else f"partial answer: {result.error}"
        for kind, values in result.discovered.items():
            if kind not in step.publishes:
                continue  # a source only feeds the kinds it declared, so the plan's order stays right
            check_kind(kind, f"source {step.name!r} discovered")
            for value in merge(known, kind, values):
                found_by.setdefault(kind, {})[value] = step.name
        log.info("case %s: source %s answered %s record(s) in %d ms", case_id or "-", step.name, len(found),
                 status["duration_ms"])

    def _provenance(self, step: PlannedStep, record: Record, found_by: dict[str, dict[str, str]]) -> Record:
        """Every record says where it came from, how it was matched, and what the register calls it."""
        processing = self.register.describe(step.name, record.entity)
        matched = []
        for label in record.matched_on:
            # A kind another source discovered: say which ("visitor_id via consent").
            origins = sorted(set((found_by.get(label) or {}).values()) - {VERIFIED})
            matched.append(f"{label} via {', '.join(origins)}" if " " not in label and origins else label)
        return replace(record, source=step.name, system=record.system or step.source.system,
                       fetched_at=record.fetched_at or self.now().isoformat(), matched_on=matched,
                       category=record.category or processing.category_code)

    # --- identity verification support -----------------------------------------------------------
    def contacts_on_file(self, email: str | None,
                         identifiers: Mapping[str, str | Iterable[str]]) -> list[OnFileContact]:
        """Addresses on file for a claimed e-mail or identifiers (e.g. an order reference in the message).

        For identity verification only (SECURITY.md rules 1-2): a code goes to these addresses, and
        the requester is never told what was found. Sources that fail are logged and skipped; when
        nothing was found and some source failed, NotReady: "not on file" is not known yet (retry later).
        """
        asked: dict[str, list[str]] = {}
        if email:
            asked["email"] = [normalise_email(email)]
        for kind, value in identifiers.items():
            check_kind(kind, "contacts_on_file identifiers")
            merge(asked, kind, [value] if isinstance(value, str) else list(value))
        if not any(asked.values()):
            return []
        sources = list(self.sources.values())
        found: list[OnFileContact] = []
        failed: list[str] = []
        pool = ThreadPoolExecutor(max_workers=min(self.max_workers, len(sources)) or 1, thread_name_prefix="contacts")
        try:
            futures = {pool.submit(s.contacts, asked): s for s in sources}
            limit = max((self.playbooks.timeout_of(s.name) for s in sources), default=30.0)
            done, late = wait(futures, timeout=limit)
            for future in done:
                try:
                    found.extend(future.result())
                except Exception as exc:  # noqa: BLE001 - one system down must not stop the others
                    failed.append(futures[future].name)
                    log.warning("contacts lookup in %s failed (%s)", futures[future].name, type(exc).__name__)
            for future in late:
                failed.append(futures[future].name)
                log.warning("contacts lookup in %s timed out", futures[future].name)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # a hung source must not hold the caller
        if failed and not found:
            raise NotReady(f"addresses on file unknown: {', '.join(sorted(failed))} did not answer")
        return list(dict.fromkeys(found))

    # --- start-up ------------------------------------------------------------------------------
    def check(self) -> dict[str, str | None]:
        """Each source's cheap test (credentials, network, schema): None when fine."""
        problems: dict[str, str | None] = {}
        for name, source in self.sources.items():
            try:
                problems[name] = source.check()
            except Exception as exc:  # noqa: BLE001 - a check reports, it never stops the service
                problems[name] = _error_status(exc)[1]
        return problems


def _resolve(value: str, base_dir: Path) -> Path:
    """Relative paths: from the working directory, else from the project (where config/ and playbooks/ ship)."""
    path = Path(value).expanduser()
    if path.is_absolute() or (base_dir / path).exists():
        return path if path.is_absolute() else base_dir / path
    return Path(__file__).resolve().parents[1] / path


def build_gatherer(cfg: PlaybooksConfig, data_dir: Path, now: Callable[[], datetime],
                   base_dir: Path) -> Gatherer:
    """Register, playbooks and sources from the [playbooks] section, all validated (ConfigError if not)."""
    register = load_register(_resolve(cfg.register, base_dir))
    playbooks = Playbooks(_resolve(cfg.directory, base_dir))
    context = SourceContext(now=now, data_dir=data_dir, base_dir=base_dir, playbook_dir=playbooks.directory,
                            timeout=float(cfg.timeout_seconds))
    try:
        configured = build_sources(cfg.sources, context)
        scripts = build_sources(playbooks.script_settings(), context)
    except Misconfigured as exc:
        raise ConfigError(str(exc)) from None
    clash = sorted(set(configured) & set(scripts))
    if clash:
        raise ConfigError(f"[playbooks] the script step {clash[0]!r} has the name of a configured source; "
                          "rename one of them (name: in the playbook step)")
    sources = {**configured, **scripts}
    settings = {s["name"]: s for s in [*cfg.sources, *playbooks.script_settings()] if isinstance(s, dict)}
    playbooks.bind(sources, {name: context.timeout_for(settings[name]) for name in sources})
    problems = register.coverage_problems({name: source.entities() for name, source in sources.items()})
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RegisterError(problems[0] + more)
    return Gatherer(sources, playbooks, register, now=now, max_workers=cfg.max_workers)


def setup(service: Any) -> None:
    """Build the Gatherer from [playbooks] and register it, with one start-up check per source."""
    cfg = service.config.playbooks
    if not cfg.sources:
        log.info("no data sources configured ([playbooks] sources): gathering is off")
        return
    gatherer = build_gatherer(cfg, service.data_dir, service.now, Path.cwd())
    service.components["gatherer"] = gatherer
    service.components["register"] = gatherer.register
    for name in gatherer.sources:
        service.startup_checks.append(_source_check(gatherer, name))


def _source_check(gatherer: Gatherer, name: str) -> Callable[[], str | None]:
    def check() -> str | None:
        source = gatherer.sources[name]
        try:
            problem = source.check()
        except Exception as exc:  # noqa: BLE001
            problem = _error_status(exc)[1]
        return f"source {name!r} ({source.system}): {problem}" if problem else None

    check.__qualname__ = f"source_check[{name}]"
    return check
