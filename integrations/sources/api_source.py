"""What every SaaS source shares: settings parsing, exact email matching, provenance and failures.

A subclass implements `_find(emails, out)` (and `_erase`, `_check` when it can) and appends
records with `self.record(...)`; this class turns the three failure outcomes into a clear
`SourceResult.error` ("auth_failed: ...", "not_ready: ...", "misconfigured: ...") so that a
source that is down never yields a silently incomplete answer. Records found before a failure
are kept: they belong to the subject, and the error says the answer is incomplete.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

from integrations.base import (AuthFailed, IntegrationError, Misconfigured, NotReady, Record, Source,
                               SourceResult, SubjectQuery)
from integrations.sources.http import HttpClient, check_base_url

#: Settings every SaaS source understands (besides its own credentials and options).
COMMON_SETTINGS = {"base_url", "timeout_seconds", "max_retries", "max_retry_wait_seconds", "page_size",
                   "max_pages"}
#: Keys the source register may carry for its own use; sources ignore them.
REGISTER_KEYS = {"type", "name", "enabled", "description"}

_PAN_RE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def failure_text(exc: IntegrationError) -> str:
    """The one-line reason shown to agents; the prefix tells which of the three outcomes it is."""
    kind = {AuthFailed: "auth_failed", NotReady: "not_ready", Misconfigured: "misconfigured"}.get(type(exc),
                                                                                                 "failed")
    return f"{kind}: {exc}"


def mask_card_numbers(value: Any) -> Any:
    """Defence in depth: mask any 13-19 digit run (a possible card number) anywhere in a value."""
    if isinstance(value, str):
        return _PAN_RE.sub(lambda m: "•" * 4 + re.sub(r"\D", "", m.group())[-4:], value)
    if isinstance(value, dict):
        return {k: mask_card_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_card_numbers(v) for v in value]
    return value


def pick(data: Mapping[str, Any] | None, keys: Iterable[str]) -> dict[str, Any]:
    """Only the named keys that are present: records carry what the register describes, no more."""
    data = data or {}
    return {k: data[k] for k in keys if k in data}


def same_email(found: Any, wanted: str) -> bool:
    """Exact, case-insensitive comparison of what the API returned with a verified email."""
    return isinstance(found, str) and found.strip().casefold() == wanted.casefold()


@dataclass
class SourceSettings:
    """Parsed settings of one source; unknown keys are refused so that typos surface at start."""

    name: str
    kind: str
    values: Mapping[str, Any]
    allowed: set[str] = field(default_factory=set)
    environ: Mapping[str, str] | None = None  # tests inject; default: the process environment

    def __post_init__(self) -> None:
        if self.environ is None:
            self.environ = os.environ
        known = COMMON_SETTINGS | REGISTER_KEYS | self.allowed | {f"{k}_env" for k in self.allowed}
        unknown = sorted(set(self.values) - known)
        if unknown:
            raise Misconfigured(f"source {self.name!r} ({self.kind}): unknown setting {unknown[0]!r}; "
                                f"known: {', '.join(sorted(known - REGISTER_KEYS))}")

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def number(self, key: str, default: float) -> float:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise Misconfigured(f"source {self.name!r}: {key} must be a positive number, got {value!r}")
        return float(value)

    def secret(self, key: str) -> str:
        """`key` itself, or the environment variable named by `key_env` (keep secrets out of files)."""
        value = self.values.get(key)
        env_name = self.values.get(f"{key}_env")
        if not value and env_name:
            value = (self.environ or {}).get(str(env_name), "")
            if not value:
                raise Misconfigured(f"source {self.name!r} ({self.kind}): environment variable {env_name} "
                                    f"(named by {key}_env) is empty or unset")
        if not value:
            raise Misconfigured(f"source {self.name!r} ({self.kind}): {key} is required "
                                f"(or {key}_env naming an environment variable)")
        return str(value)

    def base_url(self, default: str = "") -> str:
        return check_base_url(self.values.get("base_url") or default, f"source {self.name!r} ({self.kind})")

    def client(self, base_url: str, *, system: str, session: Any = None,
               sleep: Callable[[float], None] | None = None, now: Callable[[], datetime] | None = None,
               **options: Any) -> HttpClient:
        extra: dict[str, Any] = {}
        if sleep is not None:
            extra["sleep"] = sleep
        if now is not None:
            extra["now"] = now
        return HttpClient(base_url, system=system, session=session,
                          timeout=self.number("timeout_seconds", 10.0),
                          max_retries=int(self.number("max_retries", 3)),
                          max_retry_wait=self.number("max_retry_wait_seconds", 30.0),
                          max_pages=int(self.number("max_pages", 200)), **extra, **options)

    def page_size(self, default: int, maximum: int) -> int:
        size = int(self.number("page_size", default))
        if not 1 <= size <= maximum:
            raise Misconfigured(f"source {self.name!r}: page_size must be between 1 and {maximum}")
        return size


def injected(context: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Session, sleep and clock from keyword arguments, else from the context (the Service's `now`)."""
    now = kwargs.get("now") or getattr(context, "now", None)
    return {"session": kwargs.get("session"), "sleep": kwargs.get("sleep"), "now": now}


class ApiSource(Source):
    """A Source backed by one HTTP API; subclasses say how to find (and maybe erase) a subject."""

    def __init__(self, name: str, client: HttpClient) -> None:
        self.name = name
        self.client = client

    # --- the Source interface ------------------------------------------------------------------
    def find(self, query: SubjectQuery) -> SourceResult:
        return self._run(query, self._find)

    def erase(self, query: SubjectQuery) -> SourceResult:
        return self._run(query, self._erase)

    def check(self) -> str | None:
        try:
            self._check()
        except IntegrationError as exc:
            return failure_text(exc)
        return None

    # --- for subclasses ------------------------------------------------------------------------
    def _find(self, emails: list[str], out: SourceResult) -> None:
        raise NotImplementedError

    def _erase(self, emails: list[str], out: SourceResult) -> None:
        raise NotImplementedError(f"{self.system} cannot erase")

    def _check(self) -> None:
        raise NotImplementedError

    def record(self, out: SourceResult, entity: str, record_id: Any, fields: dict[str, Any], category: str,
               matched_on: list[str]) -> Record:
        record = Record(source=self.name, system=self.system, entity=entity, record_id=str(record_id),
                        fields=fields, fetched_at=self.client.now().astimezone(timezone.utc).isoformat(),
                        category=category, matched_on=list(matched_on))
        out.records.append(record)
        return record

    def discover(self, out: SourceResult, identifier: str, value: Any) -> None:
        values = out.discovered.setdefault(identifier, [])
        if str(value) not in values:
            values.append(str(value))

    def _run(self, query: SubjectQuery, step: Callable[[list[str], SourceResult], None]) -> SourceResult:
        out = SourceResult(source=self.name, records=[])
        # one entry per address (case-insensitive), in the form it was verified: Stripe's filter is
        # case-sensitive and needs the original spelling too
        seen: dict[str, str] = {}
        for email in query.emails:
            if email and email.strip():
                seen.setdefault(email.strip().casefold(), email.strip())
        emails = list(seen.values())
        if not emails:
            out.error = "misconfigured: no verified email in the query; this source matches on email only"
            return out
        try:
            step(emails, out)
        except IntegrationError as exc:
            out.error = failure_text(exc)
        return out
