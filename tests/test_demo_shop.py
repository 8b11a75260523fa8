"""The demo's embedded shop through the real service wiring: config -> setup -> gatherer -> records."""
from __future__ import annotations

import json
import logging

import pytest

from bot.config import ConfigError, load_config
from bot.demo import demo_config, seed
from bot.demo_shop import DEMO_CUSTOMERS, OTHER_PERSON, demo_sources
from bot.service import build_service
from integrations.base import SubjectQuery
from tests.gather_fakes import NOW


@pytest.fixture()
def service(tmp_path):
    svc = build_service(demo_config(tmp_path / "demo", "127.0.0.1", 8080, agent_password="demo-pw"), now=lambda: NOW)
    seed(svc)
    yield svc
    svc.close()


def person(index: int) -> dict:
    return DEMO_CUSTOMERS[index]


def test_the_demo_sources_start_cleanly(service):
    assert service.run_startup_checks() == []
    assert set(service.components["gatherer"].sources) == {"shop", "consent", "events", "loyalty"}
    assert service.components["register"].sources == ["consent", "events", "loyalty", "shop"]


def test_camille_gets_her_data_from_every_source_and_none_of_her_namesakes(service, caplog):
    caplog.set_level(logging.DEBUG)
    camille, namesake = person(0), person(1)
    assert (camille["firstname"], camille["lastname"], camille["phone"]) == \
        (namesake["firstname"], namesake["lastname"], namesake["phone"])
    result = service.components["gatherer"].gather(SubjectQuery(emails=[camille["email"]], case_id="c-1"),
                                                   ["access"])
    assert result.complete, result.failures
    assert {r.source for r in result.records} == {"shop", "consent", "events", "loyalty"}
    assert result.identifiers["customer_id"] == ["1"] and result.identifiers["visitor_id"] == [camille["visitor_id"]]
    text = json.dumps([r.to_doc() for r in result.records], ensure_ascii=False)
    assert namesake["email"] not in text and namesake["visitor_id"] not in text and "HYTRGBNMK" not in text
    assert all(r.fields.get("id_customer") in (None, 1) for r in result.records if r.source == "shop")
    # her support message quotes another person: it is hers to receive (the draft redacts the third party)
    assert OTHER_PERSON["email"] in text
    assert camille["password_hash"] not in text and "4970101234567890" not in text and "**** 7890" in text
    # no personal data reached the logs
    for value in (camille["email"], camille["phone"], camille["lastname"], camille["visitor_id"]):
        assert value not in caplog.text


def test_a_guest_and_an_account_with_one_email_are_both_found(service):
    result = service.components["gatherer"].gather(SubjectQuery(emails=[person(2)["email"]]), ["access"])
    assert {r.record_id for r in result.records if r.entity == "ps_customer"} == {"3", "4"}
    assert {r.fields["reference"] for r in result.records if r.entity == "ps_orders"} == {"QWERTYUIO", "ASDFGHJKL"}


def test_a_guest_support_thread_is_found_by_email_alone(service):
    result = service.components["gatherer"].gather(SubjectQuery(emails=[person(4)["email"]]), ["access"])
    threads = [r for r in result.records if r.entity == "ps_customer_thread"]
    assert [(t.fields["id_customer"], t.matched_on) for t in threads] == [(None, ["email"])]


def test_portability_and_contacts_on_file(service):
    gatherer = service.components["gatherer"]
    result = gatherer.gather(SubjectQuery(emails=[person(5)["email"]]), ["access", "portability"])
    portable = {r.entity for r in result.records_for("portability")}
    assert "ps_customer" in portable and "consents" not in portable and "loyalty_accounts" not in portable
    on_file = gatherer.contacts_on_file("someone@elsewhere.example", {"order_reference": "PLMZDSAQW"})
    assert [(c.email, c.source, c.matched_on) for c in on_file] == [(person(0)["email"], "shop", "order_reference")]


def test_a_source_the_register_does_not_describe_stops_the_start(tmp_path):
    sources = demo_sources(tmp_path) + [{"name": "crm", "type": "event_log", "path": str(tmp_path / "x.jsonl"),
                                         "match": {"email": "email"}}]
    config = load_config(None, environ={}, overrides={"service": {"data_dir": str(tmp_path / "d")},
                                                      "playbooks": {"sources": sources}})
    with pytest.raises(ConfigError, match="source 'crm' is configured .* register does not describe it"):
        build_service(config, now=lambda: NOW)
    bad = load_config(None, environ={}, overrides={"service": {"data_dir": str(tmp_path / "d")},
                                                   "playbooks": {"sources": [{"name": "x", "type": "ftp"}]}})
    with pytest.raises(ConfigError, match=r"sources\[0\]: source 'x': type 'ftp' is not one of"):
        build_service(bad, now=lambda: NOW)


def test_without_sources_gathering_is_off(tmp_path):
    service = build_service(load_config(None, environ={}, overrides={"service": {"data_dir": str(tmp_path)}}),
                            now=lambda: NOW)
    assert "gatherer" not in service.components


def test_sources_check_command(tmp_path, capsys):
    from bot.cli import main

    log = tmp_path / "events.jsonl"
    config = tmp_path / "dsarbot.toml"
    config.write_text(f'[service]\ndata_dir = "{tmp_path / "data"}"\n\n[[playbooks.sources]]\nname = "events"\n'
                      f'type = "event_log"\npath = "{log}"\nentity = "events"\nmatch = {{ email = "email" }}\n')
    assert main(["-c", str(config), "sources", "check"]) == 1
    assert "FAIL events (Event log): no log file" in capsys.readouterr().out
    log.write_text('{"email": "a@example.fr"}\n')
    assert main(["-c", str(config), "sources", "check"]) == 0
    assert capsys.readouterr().out.startswith("ok   events (Event log)")
