"""The drafter in the pipeline (verified -> gathered -> drafted) and `dsarbot draft CASE_REF --out DIR`."""
from __future__ import annotations

import hashlib

import pytest

import bot.service
from bot.cli import main
from bot.config import load_config
from bot.drafting import verify_draft_files
from bot.models import Person
from bot.service import build_service
from bot.vault import Vault
from tests.drafting import demo_customer as demo
from tests.drafting.conftest import SHOP, Clock, verified_case

PARTS = ["tests.drafting.fake_parts", "bot.drafting", "bot.pipeline"]


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "dsarbot.toml"
    lines = [f'data_dir = "{tmp_path / "data"}"'] + [f"{k} = {v!r}".replace("'", '"') for k, v in SHOP.items()
                                                      if k != "postal_address"]
    path.write_text("[service]\n" + "\n".join(lines) + '\npostal_address = """18 rue du Faubourg\n75010 Paris"""\n')
    return path


@pytest.fixture
def parts(monkeypatch):
    monkeypatch.setattr(bot.service, "INTEGRATIONS", PARTS)


def drafted_case(config_file, email=demo.EMAIL):
    service = build_service(load_config(config_file, environ={}), now=Clock())
    case = verified_case(service, "fr", email=email)
    service.outbox.run_due()
    case = service.cases.get(case.id)
    service.close()
    return case


def test_pipeline_drafts_a_verified_case(config_file, parts):
    case = drafted_case(config_file)
    assert case.state == "drafted" and case.gathering["complete"] and case.gathering["records"] == 20
    assert case.draft["kind"] == "access" and len(case.draft["redactions"]) == 4
    assert verify_draft_files(Vault(load_config(config_file, environ={}).data_path), case.draft)


def test_cli_writes_the_verified_files_decrypted(config_file, parts, tmp_path, capsys):
    case = drafted_case(config_file)
    out = tmp_path / "out"
    assert main(["-c", str(config_file), "draft", case.ref, "--out", str(out)]) == 0
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(written) == {f["name"] for f in case.draft["files"]}
    for entry in case.draft["files"]:
        assert hashlib.sha256(written[entry["name"]]).hexdigest() == entry["sha256"]
    assert written[f"{case.ref}-answer.pdf"].startswith(b"%PDF")
    assert (out.stat().st_mode & 0o777) == 0o700
    assert case.draft["hash"] in capsys.readouterr().err


def test_cli_refuses_a_tampered_draft_and_a_case_without_draft(config_file, parts, tmp_path, capsys):
    case = drafted_case(config_file)
    vault = Vault(load_config(config_file, environ={}).data_path)
    vault.write(case.draft["files"][0]["vault_path"], b"changed")
    assert main(["-c", str(config_file), "draft", case.ref, "--out", str(tmp_path / "o1")]) == 1
    assert "do not match" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists()
    assert main(["-c", str(config_file), "draft", "DSR-260101-AAAAA", "--out", str(tmp_path / "o2")]) == 1
    service = build_service(load_config(config_file, environ={}), now=Clock())
    fresh = service.cases.open(received_at=Clock()(), rights=["access"], language="fr", channel="email",
                               requester=Person(email="x@example.org"))
    service.close()
    assert main(["-c", str(config_file), "draft", fresh.ref, "--out", str(tmp_path / "o3")]) == 1
    assert "has no draft yet" in capsys.readouterr().err


def test_cli_regenerate_gathers_and_drafts_again(config_file, parts, tmp_path):
    case = drafted_case(config_file)
    assert main(["-c", str(config_file), "draft", case.ref, "--out", str(tmp_path / "out"), "--regenerate"]) == 0
    service = build_service(load_config(config_file, environ={}), now=Clock())
    again = service.cases.get(case.id)
    assert again.state == "drafted" and again.version > case.version
    assert verify_draft_files(Vault(service.data_dir), again.draft)
    assert {p.name for p in (tmp_path / "out").iterdir()} == {f["name"] for f in again.draft["files"]}
    service.cases.transition(case.id, "approve", "agent:alice", detail={"draft_hash": again.draft["hash"]})
    service.close()
    assert main(["-c", str(config_file), "draft", case.ref, "--out", str(tmp_path / "o2"), "--regenerate"]) == 1


def test_cli_regenerate_without_a_gatherer_says_so(config_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bot.service, "INTEGRATIONS", ["bot.drafting", "bot.pipeline"])
    service = build_service(load_config(config_file, environ={}), now=Clock())
    case = verified_case(service, "fr")
    service.close()
    assert main(["-c", str(config_file), "draft", case.ref, "--out", str(tmp_path / "o"), "--regenerate"]) == 1
    assert "needs a gatherer" in capsys.readouterr().err


def test_a_new_draft_answers_a_change_request(config_file, parts):
    service = build_service(load_config(config_file, environ={}), now=Clock())
    case = verified_case(service, "fr")
    service.outbox.run_due()
    case = service.cases.request_changes(case.id, "agent:ana", "add the loyalty points", service.cases.get(case.id)
                                         .draft["hash"])
    assert [f.code for f in case.open_flags] == ["changes_requested"]
    service.cases.transition(case.id, "start_gathering", "agent:ana")
    service.outbox.run_due()
    redrafted = service.cases.get(case.id)
    assert redrafted.state == "drafted" and redrafted.open_flags == []
    service.close()
