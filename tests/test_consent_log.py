"""Consent logs from a consent management platform: generic CSV, Didomi's gzipped JSON lines, a JSON array."""
from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone

from integrations.base import SubjectQuery
from integrations.sources import SourceContext, build_source

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
EMAIL = "noe.girard@example.fr"


def build(**settings):
    return build_source({"name": "consent", "type": "consent_log", **settings}, SourceContext(now=lambda: NOW))


def test_generic_csv_finds_choices_and_publishes_the_visitor_id(tmp_path):
    path = tmp_path / "consents.csv"
    path.write_text("consent_id,email,visitor_id,purpose,choice,given_at\n"
                    f"c1,{EMAIL},v-1,analytics,accepted,2024-01-01\n"
                    "c2,someone@example.com,v-2,analytics,refused,2024-01-02\n"
                    f"c3,{EMAIL.upper()},v-1,advertising,withdrawn,2024-02-01\n"
                    "c4,,v-1,analytics,accepted,2024-03-01\n", encoding="utf-8")
    source = build(path=str(path))
    assert source.accepts() == ["email", "visitor_id"] and source.publishes() == ["visitor_id"]
    assert source.check() is None
    result = source.find(SubjectQuery(emails=[EMAIL]))
    assert [r.record_id for r in result.records] == ["c1", "c3"]
    assert result.discovered == {"visitor_id": ["v-1"]}
    assert result.records[1].fields["choice"] == "withdrawn" and result.records[0].entity == "consents"
    # With the visitor id (e.g. verified, or from another source), the anonymous choice is found too.
    assert [r.record_id for r in source.find(SubjectQuery(emails=[], identifiers={"visitor_id": ["v-1"]})).records] \
        == ["c1", "c3", "c4"]


def test_didomi_batch_export(tmp_path):
    path = tmp_path / "part-0001.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for user in ({"id": "d1", "organization_user_id": EMAIL, "consents": {"purposes": [
                         {"id": "analytics", "enabled": True}]}, "updated_at": "2024-04-01T00:00:00Z"},
                     {"id": "d2", "organization_user_id": "x@example.com", "consents": {}}):
            handle.write(json.dumps(user) + "\n")
    source = build(preset="didomi", path=str(tmp_path / "part-*.json.gz"))
    assert source.system == "Didomi" and source.check() is None
    result = source.find(SubjectQuery(emails=[EMAIL]))
    assert [r.record_id for r in result.records] == ["d1"]
    assert result.records[0].fields["consents"]["purposes"][0]["enabled"] is True


def test_json_array_export(tmp_path):
    path = tmp_path / "consents.json"
    path.write_text(json.dumps({"data": [{"consent_id": "a", "email": EMAIL, "choice": "accepted"},
                                         {"consent_id": "b", "email": "y@example.com"}]}), encoding="utf-8")
    result = build(path=str(path), match={"email": "email"}, publish={}).find(SubjectQuery(emails=[EMAIL]))
    assert [r.record_id for r in result.records] == ["a"]
