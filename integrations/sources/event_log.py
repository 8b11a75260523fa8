"""Event and clickstream logs (JSON lines or CSV files, possibly gzipped, possibly several GB each).

Settings: `path` (a file or a glob such as `/var/log/shop/events-*.jsonl.gz`), `format` (jsonl or
csv; guessed from the extension), `match` (identifier kind -> field path, e.g.
`{email = "user.email", customer_id = "customer_id"}`), `entity` (the name the register describes),
`id_field` (else the record id is file:offset), `include`/`exclude` fields, `mask`, and `publish`
(identifier kind -> field path, read from matched lines for later sources).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bot.identity import check_kind, merge
from integrations.base import Misconfigured, NotReady, Record, Source, SourceResult, SubjectQuery
from integrations.sources import SourceContext, settings_reader
from integrations.sources.filelog import (FORMATS, Hit, Matcher, ScanStats, decode_line, expand_paths, field_value,
                                          open_log, scan)
from integrations.sources.masking import MASKS, clean_fields

SETTINGS = {"path", "format", "delimiter", "match", "entity", "id_field", "include", "exclude", "mask", "publish",
            "system"}


class FileLogSource(Source):
    """Records from log files; subclasses fix the defaults (entity name, system, field map)."""

    default_entity = "events"
    default_system = "Event log"

    def __init__(self, name: str, settings: dict[str, Any], context: SourceContext, known: set[str]) -> None:
        read = settings_reader(name, settings, known)
        self.name = name
        self.system = read("system", self.default_system)
        self._context = context
        self._timeout = context.timeout
        if not read("path"):
            raise Misconfigured(f"source {name!r}: path (a file or a glob of log files) is required")
        self._pattern = context.path(str(read("path")))
        self.format = read("format") or self.guess_format(str(self._pattern))
        if self.format not in self.formats():
            raise Misconfigured(f"source {name!r}: format must be one of {', '.join(self.formats())}")
        self._delimiter = read("delimiter", "\t" if str(self._pattern).lower().endswith(".tsv") else ",")
        match = read("match") or {}
        if not isinstance(match, dict) or not match:
            raise Misconfigured(f"source {name!r}: match must map identifier kinds to fields, e.g. "
                                "{email = \"email\"}")
        self.matcher = Matcher({k: str(v) for k, v in match.items()}, "jsonl" if self.format == "json" else self.format)
        self.entity = str(read("entity", self.default_entity))
        self._id_field = read("id_field")
        self._include = read("include")
        self._exclude = set(read("exclude") or [])
        self._mask = dict(read("mask") or {})
        for field, mask in self._mask.items():
            if mask not in MASKS:
                raise Misconfigured(f"source {name!r}: mask for {field!r} must be one of {MASKS}")
        self._publish = {check_kind(k, f"source {name!r} publish"): str(v) for k, v in (read("publish") or {}).items()}

    def formats(self) -> tuple[str, ...]:
        return FORMATS

    def guess_format(self, path: str) -> str:
        name = path.lower().removesuffix(".gz")
        return "csv" if name.endswith((".csv", ".tsv")) else "jsonl"

    # --- Source interface ----------------------------------------------------------------------
    def accepts(self) -> list[str]:
        return list(self.matcher.match)

    def publishes(self) -> list[str]:
        return list(self._publish)

    def entities(self) -> list[str]:
        return [self.entity]

    def paths(self) -> list[Path]:
        return expand_paths(self._pattern)

    def check(self) -> str | None:
        paths = self.paths()
        if not paths or not all(p.is_file() for p in paths):
            return f"no log file at {self._pattern}; check path"
        for path in paths:
            try:
                with path.open("rb"):
                    pass
            except PermissionError:
                return f"{path} is not readable by the service user"
        return self._check_fields(paths[0])

    def _check_fields(self, path: Path) -> str | None:
        with open_log(path) as handle:
            first = handle.readline().strip()
        if not first:
            return None  # an empty log is a valid log
        if self.format == "csv":
            header = first.decode("utf-8-sig").split(self._delimiter)
            header = [h.strip().strip('"') for h in header]
            missing = [f for f in self.matcher.match.values() if f not in header]
            return f"{path.name} has no column {missing[0]!r} (named in match)" if missing else None
        if decode_line(first, "jsonl", None, ",") is None:
            return f"{path.name} does not start with a JSON object per line; set format"
        return None

    def find(self, query: SubjectQuery) -> SourceResult:
        known: dict[str, list[str]] = {}
        for kind in self.matcher.match:
            merge(known, kind, query.emails if kind == "email" else query.identifiers.get(kind, []))
        if not any(known.values()):
            return SourceResult(self.name, [])
        paths = self.paths()
        if not paths or not all(p.is_file() for p in paths):
            raise NotReady(f"no log file at {self._pattern}")
        stats = ScanStats()
        fetched_at = self._context.now().isoformat()
        records, discovered = [], {}
        for hit in self.hits(paths, known, stats):
            records.append(self._record(hit, fetched_at))
            for kind, path in self._publish.items():
                merge(discovered, kind, [field_value(hit.fields, path)])
        error = (f"{stats.undecodable} line(s) mentioning the subject could not be decoded; check the file "
                 "format") if stats.undecodable else ""
        return SourceResult(self.name, records, {k: v for k, v in discovered.items() if v}, error)

    def hits(self, paths: list[Path], known: dict[str, list[str]], stats: ScanStats):
        return scan(paths, self.format, self.matcher, known, stats, delimiter=self._delimiter,
                    deadline=time.monotonic() + self._timeout)

    def _record(self, hit: Hit, fetched_at: str) -> Record:
        fields = {k: v for k, v in hit.fields.items()
                  if k not in self._exclude and (self._include is None or k in self._include)}
        record_id = field_value(hit.fields, self._id_field) if self._id_field else None
        return Record(source=self.name, system=self.system, entity=self.entity,
                      record_id=str(record_id) if record_id not in (None, "") else f"{hit.path.name}:{hit.offset}",
                      fields=clean_fields(fields, self._mask), fetched_at=fetched_at, matched_on=hit.matched_on)


class EventLogSource(FileLogSource):
    default_entity = "events"
    default_system = "Event log"


def build(name: str, settings: dict[str, Any], context: SourceContext) -> EventLogSource:
    return EventLogSource(name, settings, context, SETTINGS)
