"""The JSON export: the subject's data structured by system and category, each record with its provenance.

Its shape is published as a JSON Schema (`schema/export.schema.json`) so a requester, or another
controller receiving it under Art. 20, can read it without guessing.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.drafting.facts import Facts
from bot.drafting.tables import Table

SCHEMA_PATH = Path(__file__).parent / "schema" / "export.schema.json"
FORMAT_VERSION = 1


def export_document(*, case_ref: str, generated_at: str, language: str, controller: dict[str, Any],
                    subject: dict[str, str], grouped: list[Table], facts: Facts,
                    redactions: list[dict[str, Any]]) -> dict[str, Any]:
    systems: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for table in grouped:
        records = systems.setdefault(table.system, {}).setdefault(table.category, [])
        for record in table.records:
            records.append({"record_id": record.record_id, "source": record.source, "entity": record.entity,
                            "fetched_at": record.fetched_at, "matched_on": list(record.matched_on),
                            "fields": record.fields})
    return {
        "format": "dsarbot-export", "format_version": FORMAT_VERSION, "case_ref": case_ref,
        "generated_at": generated_at, "language": language,
        "controller": {"name": controller["name"], "dpo_email": controller["dpo_email"],
                       "postal_address": controller["postal_address"]},
        "data_subject": subject,
        "summary": {"records": facts.total, "systems": {s.system: s.count for s in facts.systems}},
        "systems": [{"system": system, "categories": [{"category": c, "records": r} for c, r in cats.items()]}
                    for system, cats in systems.items()],
        "processing": facts.processing, "recipients": facts.recipients, "transfers": facts.transfers,
        "sources_of_data": facts.origins, "automated_decisions": facts.automated,
        "redactions": [{k: r[k] for k in ("system", "entity", "record_id", "field", "kind", "count")}
                       for r in redactions],
    }


def to_json_bytes(document: dict[str, Any]) -> bytes:
    # default=str: SQL sources give dates and decimals; their text form is what the person should read
    return json.dumps(document, ensure_ascii=False, indent=2, default=str).encode("utf-8") + b"\n"


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
