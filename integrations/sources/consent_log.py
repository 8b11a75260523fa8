"""Consent logs exported by the shop's consent management platform (CSV, JSON lines or a JSON array).

The proof of consent (Art. 7(1)) is part of what a person may see: which choices they made, when,
on which version of the notice. Same settings as `event_log`, plus `preset`: `generic` (a CSV with
consent_id, email, visitor_id, purpose, choice, given_at ...) or `didomi` (Didomi's batch export
of users: newline-delimited JSON, gzipped, keyed by `organization_user_id`; see
https://developers.didomi.io/integrations/generic-integrations/batch-export). A consent log may
publish the visitor (cookie) id it links to the e-mail, so that browsing events can be found.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from integrations.base import Misconfigured
from integrations.sources import SourceContext
from integrations.sources.event_log import SETTINGS as LOG_SETTINGS, FileLogSource
from integrations.sources.filelog import Hit, ScanStats, open_log

MAX_JSON_ARRAY = 256 * 1024 * 1024  # a JSON array must be parsed whole; bigger exports must be JSON lines

PRESETS: dict[str, dict[str, Any]] = {
    "generic": {"match": {"email": "email", "visitor_id": "visitor_id"},
                "id_field": "consent_id", "publish": {"visitor_id": "visitor_id"}},
    "didomi": {"format": "jsonl", "match": {"email": "organization_user_id"}, "id_field": "id",
               "system": "Didomi"},
}


class ConsentLogSource(FileLogSource):
    default_entity = "consents"
    default_system = "Consent management platform"

    def formats(self) -> tuple[str, ...]:
        return ("jsonl", "csv", "json")

    def guess_format(self, path: str) -> str:
        name = path.lower().removesuffix(".gz")
        return "json" if name.endswith(".json") else super().guess_format(path)

    def hits(self, paths: list[Path], known: dict[str, list[str]], stats: ScanStats) -> Iterator[Hit]:
        if self.format != "json":
            return super().hits(paths, known, stats)
        return self._array_hits(paths, known)

    def _array_hits(self, paths: list[Path], known: dict[str, list[str]]) -> Iterator[Hit]:
        for path in paths:
            if path.stat().st_size > MAX_JSON_ARRAY:
                raise Misconfigured(f"{path.name} is a JSON array over 256 MB; export JSON lines instead")
            with open_log(path) as handle:
                try:
                    items = json.load(handle)
                except json.JSONDecodeError:
                    raise Misconfigured(f"{path.name} is not a JSON array (set format)") from None
            if isinstance(items, dict):  # {"data": [...]} as several platforms' APIs return
                items = next((v for v in items.values() if isinstance(v, list)), [])
            for index, item in enumerate(items):
                if isinstance(item, dict):
                    kinds = self.matcher.check(item, known)
                    if kinds:
                        yield Hit(path, index, item, kinds)

    def _check_fields(self, path: Path) -> str | None:
        return None if self.format == "json" else super()._check_fields(path)


def build(name: str, settings: dict[str, Any], context: SourceContext) -> ConsentLogSource:
    preset_name = settings.get("preset", "generic")
    if preset_name not in PRESETS:
        raise Misconfigured(f"source {name!r}: preset must be one of {', '.join(PRESETS)}")
    merged = {**PRESETS[preset_name], **{k: v for k, v in settings.items() if k != "preset"}}
    return ConsentLogSource(name, merged, context, LOG_SETTINGS)
