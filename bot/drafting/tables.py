"""Records as tables: one table per system and table/endpoint, shared by the annex, the CSV files and JSON."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from integrations.base import Record

PROVENANCE_COLUMNS = ("record_id", "source", "system", "entity", "category", "fetched_at", "matched_on")
WIDE_TABLE_MAX_FIELDS = 5  # more fields than this: one small table per record (readable on A4)


def cell_text(value: Any, yes: str = "true", no: str = "false") -> str:
    """How a value reads in a table or a CSV cell (nested values as compact JSON)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return yes if value else no
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    return str(value)


def flatten(fields: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted keys; lists stay whole (one cell)."""
    flat: dict[str, Any] = {}
    for key, value in fields.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


@dataclass
class Table:
    system: str
    source: str
    entity: str
    category: str
    columns: list[str] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    @property
    def wide(self) -> bool:
        return len(self.columns) <= WIDE_TABLE_MAX_FIELDS

    def rows(self) -> list[dict[str, Any]]:
        return [flatten(r.fields) for r in self.records]


def tables(records: Iterable[Record], category_of) -> list[Table]:
    """Group records by (system, source, entity), in a stable order; `category_of(record)` names the category."""
    grouped: dict[tuple[str, str, str], Table] = {}
    for record in records:
        key = (record.system, record.source, record.entity)
        table = grouped.get(key)
        if table is None:
            table = grouped[key] = Table(record.system, record.source, record.entity, category_of(record))
        table.records.append(record)
        for column in flatten(record.fields):
            if column not in table.columns:
                table.columns.append(column)
    for table in grouped.values():
        table.records.sort(key=lambda r: (r.record_id.zfill(20) if r.record_id.isdigit() else r.record_id))
    return [grouped[k] for k in sorted(grouped)]


def annex_view(grouped: list[Table], yes: str, no: str, max_rows: int = 0) -> list[dict[str, Any]]:
    """What annex.html shows: per system, each table with its provenance and its rows as text.

    A table longer than `max_rows` (e.g. years of browsing events) shows its first rows and says how
    many more are in the JSON and CSV files: PDF layout time grows with every row.
    """
    systems: dict[str, list[dict[str, Any]]] = {}
    for table in grouped:
        matched = sorted({m for r in table.records for m in r.matched_on})
        fetched = sorted({r.fetched_at[:10] for r in table.records if r.fetched_at})
        shown = table.records[:max_rows] if max_rows else table.records
        rows = []
        for record, flat in zip(shown, table.rows()):
            cells = [cell_text(flat.get(c), yes, no) for c in table.columns]
            rows.append({"id": record.record_id, "cells": cells,
                         "pairs": [(c, v) for c, v in zip(table.columns, cells) if v != ""]})
        systems.setdefault(table.system, []).append({
            "category": table.category, "entity": table.entity, "source": table.source, "wide": table.wide,
            "columns": table.columns, "rows": rows, "omitted": len(table.records) - len(shown),
            "count": len(table.records), "matched_on": ", ".join(matched),
            "fetched": " – ".join(dict.fromkeys([fetched[0], fetched[-1]])) if fetched else "",
        })
    return [{"system": name, "tables": items} for name, items in systems.items()]
