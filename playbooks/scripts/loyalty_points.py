"""Playbook script: the loyalty programme's points, kept in a CSV export of the loyalty tool (no connector yet).

Configured as a source of type `script` (options: path to the CSV with columns member_id, email,
customer_id, points, tier, joined_on, last_earned_on). Matches on the verified e-mail or the shop's
customer id, never on a name.
"""
from __future__ import annotations

import csv

from integrations.base import Record, SubjectQuery

ENTITY = "loyalty_accounts"


def check(options: dict) -> str | None:
    from pathlib import Path

    path = Path(str(options.get("path", "")))
    return None if path.is_file() else f"loyalty export {path} not found; set options.path"


def find(subject: SubjectQuery, context) -> list[Record]:
    emails = {e.lower() for e in subject.emails}
    customer_ids = set(subject.identifiers.get("customer_id", []))
    records = []
    with context.path(context.options["path"]).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            matched = []
            if row.get("email", "").strip().lower() in emails:
                matched.append("email")
            if row.get("customer_id", "").strip() in customer_ids:
                matched.append("customer_id")
            if matched:
                records.append(context.record(ENTITY, row["member_id"], dict(row), matched))
    return records
