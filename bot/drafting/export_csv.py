"""The CSV export: one file per table (system and table/endpoint), zipped; every cell formula-safe."""
from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime

from bot.drafting.tables import PROVENANCE_COLUMNS, Table, cell_text
from bot.exports.csv_safe import safe_cell
from bot.vault import safe_name


def table_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(c) for c in (*PROVENANCE_COLUMNS, *table.columns)])
    for record, flat in zip(table.records, table.rows()):
        provenance = (record.record_id, record.source, record.system, record.entity, table.category,
                      record.fetched_at, "; ".join(record.matched_on))
        writer.writerow([safe_cell(v) for v in provenance] + [safe_cell(cell_text(flat.get(c))) for c in table.columns])
    # utf-8-sig: spreadsheet programs then read accents correctly
    return out.getvalue().encode("utf-8-sig")


def csv_zip(grouped: list[Table], when: datetime) -> bytes:
    """A ZIP whose bytes depend only on the data and `when` (fixed entry times), so re-drafting is stable."""
    buffer = io.BytesIO()
    used: set[str] = set()
    stamp = (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in grouped:
            base = safe_name(f"{table.system}-{table.entity}", default="table", max_length=70)
            name, n = f"{base}.csv", 2
            while name in used:
                name, n = f"{base}-{n}.csv", n + 1
            used.add(name)
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            archive.writestr(info, table_csv(table))
    return buffer.getvalue()
