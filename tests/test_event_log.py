"""Event logs: a file of several MB streamed in blocks, prefiltered on raw bytes, matched on the right fields only."""
from __future__ import annotations

import csv
import gzip
import json
import tracemalloc
from datetime import datetime, timezone

import pytest

from integrations.base import NotReady, SubjectQuery
from integrations.sources import SourceContext, build_source, filelog

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
EMAIL = "zoe.lambert@example.fr"
LINES = 60_000


def event(i: int) -> dict:
    e = {"event_id": f"e{i}", "ts": f"2024-05-{1 + i % 28:02d}T10:00:00Z", "type": "page_view",
         "url": f"https://shop.example/p/{i % 977}", "customer_id": 1000 + i % 5000,
         "user": {"email": f"visitor{i % 5000}@example.com"}, "ip": f"198.51.{i % 250}.{i % 200}"}
    if i % 10_000 == 7:  # Zoé's own events: e-mail in a nested field, in any case
        e["user"]["email"] = EMAIL.upper() if i % 20_000 == 7 else EMAIL
    if i % 10_000 == 8:  # Zoé's customer id, without her e-mail
        e["customer_id"] = 42
    if i % 10_000 == 9:  # someone else's event that merely mentions her address in another field
        e["note"] = f"invited {EMAIL}"
    if i % 10_000 == 10:  # ids that contain 42 but are not 42
        e["customer_id"] = 420 if i % 20_000 == 10 else 142
    return e


@pytest.fixture(scope="module")
def jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("logs") / "events.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i in range(LINES):
            handle.write(json.dumps(event(i)) + "\n")
    assert path.stat().st_size > 5_000_000
    return path


def make(path, **settings):
    base = {"name": "events", "type": "event_log", "path": str(path), "id_field": "event_id",
            "match": {"email": "user.email", "customer_id": "customer_id"}}
    return build_source({**base, **settings}, SourceContext(now=lambda: NOW))


ZOE_EVENTS = {f"e{i}" for i in range(LINES) if i % 10_000 in (7, 8)}


def test_finds_the_subjects_events_and_only_them(jsonl, monkeypatch):
    monkeypatch.setattr(filelog, "BLOCK", 64 * 1024)  # many block boundaries in a few MB
    source = make(jsonl)
    assert source.check() is None
    result = source.find(SubjectQuery(emails=[EMAIL], identifiers={"customer_id": ["42"]}))
    assert {r.record_id for r in result.records} == ZOE_EVENTS
    assert result.error == ""
    matched = {r.record_id: r.matched_on for r in result.records}
    assert matched["e7"] == ["email"] and matched["e8"] == ["customer_id"]
    assert all(r.entity == "events" and r.fetched_at == NOW.isoformat() for r in result.records)


def test_without_identifiers_it_reads_nothing(jsonl):
    assert make(jsonl).find(SubjectQuery(emails=[], identifiers={"visitor_id": ["x"]})).records == []


def test_the_file_is_streamed_not_loaded(jsonl, monkeypatch):
    monkeypatch.setattr(filelog, "BLOCK", 256 * 1024)
    source = make(jsonl)
    tracemalloc.start()
    try:
        source.find(SubjectQuery(emails=[EMAIL]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A few blocks at a time (the block, its lower-cased copy, the carried-over line), whatever the file size.
    assert peak < 6 * 256 * 1024 < jsonl.stat().st_size / 4


def test_csv_and_gzip(tmp_path):
    path = tmp_path / "events.csv.gz"
    with gzip.open(path, "wt", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["event_id", "email", "customer_id", "url"])
        for i in range(5000):
            writer.writerow([f"e{i}", EMAIL if i == 10 else f"v{i}@example.com", 42 if i == 11 else 4200 + i,
                             "https://shop.example/"])
    source = make(path, match={"email": "email", "customer_id": "customer_id"})
    assert source.format == "csv" and source.check() is None
    result = source.find(SubjectQuery(emails=[EMAIL], identifiers={"customer_id": ["42"]}))
    assert sorted(r.record_id for r in result.records) == ["e10", "e11"]
    assert result.records[0].fields["url"] == "https://shop.example/"


def test_a_line_mentioning_the_subject_that_cannot_be_read_is_reported(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"event_id": "ok", "user": {"email": EMAIL}}) + "\n"
                    + '{"event_id": "cut", "user": {"email": "' + EMAIL + '"\n', encoding="utf-8")
    result = make(path).find(SubjectQuery(emails=[EMAIL]))
    assert [r.record_id for r in result.records] == ["ok"]
    assert "1 line(s)" in result.error and EMAIL not in result.error


def test_a_scan_stops_at_its_time_limit(jsonl, monkeypatch):
    monkeypatch.setattr(filelog, "BLOCK", 64 * 1024)
    source = make(jsonl, timeout=0.000001)
    with pytest.raises(NotReady, match="time limit"):
        source.find(SubjectQuery(emails=[EMAIL]))


def test_missing_file_and_bad_settings_are_reported(tmp_path):
    assert "no log file" in make(tmp_path / "nope-*.jsonl").check()
    with pytest.raises(Exception, match="cannot identify"):
        make(tmp_path / "x.jsonl", match={"phone": "phone"})
    (tmp_path / "a.csv").write_text("event_id,mail\n1,x@example.com\n")
    assert "no column 'email'" in make(tmp_path / "a.csv", match={"email": "email"}).check()


def test_only_lines_holding_the_identifier_in_its_field_are_decoded(jsonl, monkeypatch):
    decoded = []
    real = filelog.decode_line
    monkeypatch.setattr(filelog, "decode_line", lambda line, *a: decoded.append(line) or real(line, *a))
    make(jsonl).find(SubjectQuery(emails=[], identifiers={"customer_id": ["42"]}))
    # customer ids 420, 4200-4299 ... are skipped on the raw bytes: only the 6 real lines are decoded
    assert len(decoded) == len([i for i in range(LINES) if i % 10_000 == 8])
