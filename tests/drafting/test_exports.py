"""The export files: JSON valid against its published schema, CSV formula-safe and zipped, safe names."""
from __future__ import annotations

import csv
import io
import json
import zipfile

import jsonschema
import pytest

from bot.drafting.export_json import schema
from bot.exports.csv_safe import FORMULA_PREFIXES
from bot.vault import safe_name
from tests.drafting import demo_customer as demo
from tests.drafting.conftest import draft_for


def csv_files(drafted) -> dict[str, list[list[str]]]:
    with zipfile.ZipFile(io.BytesIO(drafted.file("csv"))) as archive:
        return {name: list(csv.reader(io.StringIO(archive.read(name).decode("utf-8-sig"))))
                for name in archive.namelist()}


def test_json_validates_against_the_published_schema(drafted_fr):
    document = json.loads(drafted_fr.file("json"))
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.validate(document, schema(), cls=jsonschema.Draft202012Validator,
                        format_checker=jsonschema.FormatChecker())
    assert document["summary"] == {"records": 20, "systems": {"PrestaShop": 19, "Brevo": 1}}
    systems = {s["system"]: {c["category"]: c["records"] for c in s["categories"]} for s in document["systems"]}
    orders = systems["PrestaShop"]["Commandes"]
    assert {r["record_id"] for r in orders} == {"7", "8", "9"}
    assert orders[0]["source"] == "shop_db" and orders[0]["entity"] == "ps_orders"
    assert orders[0]["matched_on"] == ["id_customer via ps_customer"] and orders[0]["fetched_at"] == demo.FETCHED


def test_schema_rejects_a_record_without_provenance(drafted_fr):
    document = json.loads(drafted_fr.file("json"))
    del document["systems"][0]["categories"][0]["records"][0]["source"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema(), cls=jsonschema.Draft202012Validator)


def test_csv_one_file_per_table_and_formulas_neutralised(drafted_fr):
    files = csv_files(drafted_fr)
    assert set(files) == {"PrestaShop-ps_customer.csv", "PrestaShop-ps_address.csv", "PrestaShop-ps_orders.csv",
                          "PrestaShop-ps_customer_message.csv", "PrestaShop-ps_connections.csv", "Brevo-contacts.csv"}
    addresses = files["PrestaShop-ps_address.csv"]
    header = addresses[0]
    assert header[:7] == ["record_id", "source", "system", "entity", "category", "fetched_at", "matched_on"]
    other = header.index("other")
    assert addresses[1][other] == "'" + demo.HYPERLINK
    for rows in files.values():
        for row in rows:
            for cell in row:
                assert not cell.startswith(FORMULA_PREFIXES), cell
    assert len(files["PrestaShop-ps_connections.csv"]) == 13  # header + 12 events


def test_csv_cells_starting_with_every_formula_prefix_are_neutralised(tmp_path):
    hostile = {f"f{i}": f"{p}cmd|' /C calc'!A0" for i, p in enumerate(FORMULA_PREFIXES)}
    drafted = draft_for(tmp_path, "en", more=[demo._record("ps_customer_message", "902", hostile)])
    rows = csv_files(drafted)["PrestaShop-ps_customer_message.csv"]
    cells = [c for row in rows[1:] for c in row if "calc" in c]
    assert len(cells) == len(FORMULA_PREFIXES) and all(c.startswith("'") for c in cells)


def test_file_names_are_safe(tmp_path):
    drafted = draft_for(tmp_path, "en", more=[demo._record("../../etc/passwd", "1", {"x": "y"}, system="../Evil")])
    for entry in drafted.draft["files"]:
        assert safe_name(entry["name"]) == entry["name"]
        assert entry["vault_path"].startswith(f"drafts/{drafted.case.id}/{drafted.draft['hash'][:16]}/")
    for name in csv_files(drafted):
        assert "/" not in name and not name.startswith(".") and ".." not in name


def test_html_export_is_the_letter_then_the_annex(drafted_en):
    page = drafted_en.text("html")
    assert page.index("Yours sincerely") < page.index("Annex: a copy of your personal data")
    assert "12 rue des Lilas" in page and "12 rue des Lilas" not in drafted_en.text("letter_html")


def test_a_person_without_data_gets_the_no_data_letter_and_no_export(tmp_path):
    from tests.drafting.conftest import drafter, make_service, verified_case

    service = make_service(tmp_path)
    case = verified_case(service, "fr", email="nobody@example.org", name="Personne")
    draft = drafter(service).draft(case, demo.GatherResult([], {"shop_db": {"status": "ok", "count": 0}}))
    assert draft["kind"] == "no_data"
    assert sorted(f["role"] for f in draft["files"]) == ["letter_html", "letter_text", "pdf"]
    letter = service.component("drafter").vault.read(draft["letter_html_path"]).decode()
    assert "<strong>Non.</strong>" in letter and "shop_db" in letter and "CNIL" in letter


def test_portability_only_exports_what_the_gatherer_marks_portable(tmp_path):
    from tests.drafting.conftest import drafter, make_service, verified_case

    class PortableResult(demo.GatherResult):
        def records_for(self, right):
            assert right == "portability"
            return [r for r in self.records if r.entity in ("ps_customer", "ps_orders")]

    service = make_service(tmp_path)
    case = verified_case(service, "en", rights=("portability",))
    result = PortableResult(demo.records(), {"shop_db": {"status": "ok", "system": "PrestaShop"}})
    draft = drafter(service).draft(case, result)
    document = json.loads(service.component("drafter").vault.read(
        next(f["vault_path"] for f in draft["files"] if f["role"] == "json")))
    assert document["summary"]["records"] == 4
    letter = service.component("drafter").vault.read(draft["letter_html_path"]).decode()
    assert "data portability, Article 20 GDPR" in letter


def test_long_tables_are_cut_in_the_annex_but_complete_in_json_and_csv(tmp_path):
    from tests.drafting.conftest import drafter, gather_result, make_service, verified_case

    service = make_service(tmp_path, drafting={"annex_max_rows": 5})
    case = verified_case(service, "fr")
    d = drafter(service)
    draft = d.draft(case, gather_result())
    read = {f["role"]: d.vault.read(f["vault_path"]) for f in draft["files"]}
    page = read["html"].decode()
    assert "Navigation sur le site · ps_connections (12)" in page
    assert "Les 5 premiers enregistrements sont reproduits ici ; les 7 autres" in page
    assert "203.0.113.5<" in page and "203.0.113.6<" not in page
    categories = {c["category"]: c["records"] for c in json.loads(read["json"])["systems"][0]["categories"]}
    assert len(categories["Navigation sur le site"]) == 12
    with zipfile.ZipFile(io.BytesIO(read["csv"])) as archive:
        assert len(archive.read("PrestaShop-ps_connections.csv").decode("utf-8-sig").splitlines()) == 13
