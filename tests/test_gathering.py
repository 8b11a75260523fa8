"""The gathering engine: identifiers flowing between sources, concurrency, time limits, failures and retries."""
from __future__ import annotations

import json
import threading

import pytest

from bot.identity import WeakIdentifier
from bot.playbooks import PlaybookError
from integrations.base import AuthFailed, NotReady, SourceResult, SubjectQuery
from tests.gather_fakes import FakeSource, make_gatherer, record

EMAIL = "jean@example.fr"


def shop_answer(query: SubjectQuery) -> SourceResult:
    if EMAIL in query.emails:
        return SourceResult("shop", [record("shop", "1", ["email"], email=EMAIL)], {"customer_id": ["42"]})
    return SourceResult("shop", [])


def events_answer(query: SubjectQuery) -> SourceResult:
    found = [record("events", "e1", ["email"], page="/")] if EMAIL in query.emails else []
    if "42" in query.identifiers.get("customer_id", []):
        found.append(record("events", "e2", ["customer_id"], page="/cart"))
    return SourceResult("events", found)


def test_identifiers_found_by_one_source_feed_the_next(tmp_path):
    shop = FakeSource("shop", shop_answer, publishes=["customer_id"])
    events = FakeSource("events", events_answer, accepts=["email", "customer_id"])
    result = make_gatherer(tmp_path, [shop, events]).gather(SubjectQuery(emails=["Jean@Example.fr"]), ["access"])
    assert result.complete and result.failures == {}
    assert events.queries[0].identifiers == {"customer_id": ["42"]}  # ran after the shop, with what it found
    assert shop.queries[0].emails == [EMAIL]  # normalised
    by_id = {r.record_id: r for r in result.records}
    assert by_id["e2"].matched_on == ["customer_id via shop"]
    assert by_id["1"].matched_on == ["email"] and by_id["1"].category == "orders"
    assert by_id["1"].fetched_at == "2024-06-01T12:00:00+00:00" and by_id["1"].system == "System shop"
    assert result.found_by == {"email": {EMAIL: "verified"}, "customer_id": {"42": "shop"}}
    assert result.matched == {"shop": {"items": ["email"]}, "events": {"items": ["customer_id via shop", "email"]}}
    assert result.sources["events"]["searched_with"] == ["customer_id", "email"]


def test_independent_sources_run_at_the_same_time(tmp_path):
    both_running = threading.Barrier(2, timeout=5)

    def answer(query: SubjectQuery) -> SourceResult:
        both_running.wait()  # raises BrokenBarrierError unless the other source is running too
        return SourceResult("x", [])

    result = make_gatherer(tmp_path, [FakeSource("a", answer), FakeSource("b", answer)]).gather(
        SubjectQuery(emails=[EMAIL]), ["access"])
    assert result.complete, result.failures


def test_a_source_that_is_down_makes_the_answer_incomplete_until_retried(tmp_path):
    outage = {"down": True}

    def flaky(query: SubjectQuery) -> SourceResult:
        if outage["down"]:
            raise NotReady("MariaDB/MySQL is not reachable (2003)")
        return shop_answer(query)

    shop = FakeSource("shop", flaky, publishes=["customer_id"])
    events = FakeSource("events", events_answer, accepts=["email", "customer_id"])
    gatherer = make_gatherer(tmp_path, [shop, events])
    first = gatherer.gather(SubjectQuery(emails=[EMAIL], case_id="c-1"), ["access"])
    assert not first.complete
    assert first.failures == {"shop": "failed: MariaDB/MySQL is not reachable (2003)"}
    assert first.sources["events"]["incomplete_inputs"] == ["shop"]  # it searched without the customer id
    assert {r.record_id for r in first.records} == {"e1"}

    outage["down"] = False
    second = gatherer.retry(first, "shop")
    assert second.complete and second.failures == {}
    assert {r.record_id for r in second.records} == {"1", "e1", "e2"}  # events ran again, with the customer id
    assert len(events.queries) == 2 and second.sources["events"]["incomplete_inputs"] == []


def test_refused_credentials_and_partial_answers_are_reported(tmp_path):
    def refused(query):
        raise AuthFailed("the API key was refused (401)")

    def partial(query):
        return SourceResult("logs", [record("logs", "l1", ["email"])], error="2 line(s) could not be decoded")

    result = make_gatherer(tmp_path, [FakeSource("crm", refused), FakeSource("logs", partial)]).gather(
        SubjectQuery(emails=[EMAIL]), ["access"])
    assert result.sources["crm"]["status"] == "auth_failed"
    assert result.sources["logs"]["status"] == "failed" and result.sources["logs"]["count"] == 1
    assert result.failures == {"crm": "auth_failed: the API key was refused (401)",
                               "logs": "failed: partial answer: 2 line(s) could not be decoded"}


def test_a_slow_source_times_out_without_holding_the_others(tmp_path):
    slow = FakeSource("slow", lambda q: (slow.release.wait(10), SourceResult("slow", []))[1])
    fast = FakeSource("fast", lambda q: SourceResult("fast", [record("fast", "f1", ["email"])]))
    try:
        result = make_gatherer(tmp_path, [slow, fast], timeouts={"slow": 0.2}).gather(
            SubjectQuery(emails=[EMAIL]), ["access"])
    finally:
        slow.release.set()
    assert result.sources["slow"]["status"] == "timeout" and "0.2 s" in result.sources["slow"]["error"]
    assert result.sources["fast"]["status"] == "ok" and not result.complete
    assert result.sources["slow"]["duration_ms"] < 5000


def test_unexpected_errors_never_quote_the_data(tmp_path):
    def broken(query):
        raise ValueError(f"cannot parse {query.emails[0]}")

    result = make_gatherer(tmp_path, [FakeSource("x", broken)]).gather(SubjectQuery(emails=[EMAIL]), ["access"])
    assert result.failures == {"x": "failed: unexpected ValueError in the source"}
    assert EMAIL not in json.dumps(result.summary())


def test_names_and_phones_are_never_search_keys(tmp_path):
    gatherer = make_gatherer(tmp_path, [FakeSource("shop", shop_answer)])
    with pytest.raises(WeakIdentifier):
        gatherer.gather(SubjectQuery(emails=[], identifiers={"phone": ["0612345678"]}), ["access"])
    with pytest.raises(WeakIdentifier):
        gatherer.gather(SubjectQuery(emails=[EMAIL], identifiers={"last_name": ["Dupont"]}), ["access"])
    with pytest.raises(ValueError):
        gatherer.gather(SubjectQuery(emails=["  "]), ["access"])
    with pytest.raises(WeakIdentifier):
        gatherer.contacts_on_file(None, {"name": "Jean Dupont"})
    with pytest.raises(PlaybookError):  # a source cannot even declare it would feed others a phone number
        make_gatherer(tmp_path / "2", [FakeSource("crm", shop_answer, publishes=["phone"])])


def test_portability_keeps_what_the_person_provided_under_contract_or_consent(tmp_path):
    shop = FakeSource("shop", shop_answer, publishes=["customer_id"])
    events = FakeSource("events", events_answer, accepts=["email", "customer_id"])
    result = make_gatherer(tmp_path, [shop, events], portable={"shop"}).gather(
        SubjectQuery(emails=[EMAIL]), ["access", "portability"])
    assert {r.record_id for r in result.records_for("portability")} == {"1"}
    assert len(result.records_for("access")) == 3


def test_contacts_on_file_from_a_claimed_order_reference(tmp_path):
    shop = FakeSource("shop", shop_answer, contacts={"order_reference:XKBKNABJK": EMAIL})
    other = FakeSource("crm", lambda q: (_ for _ in ()).throw(NotReady("down")))
    other.contacts = lambda identifiers: (_ for _ in ()).throw(NotReady("down"))
    gatherer = make_gatherer(tmp_path, [shop, other])
    found = gatherer.contacts_on_file(None, {"order_reference": "XKBKNABJK"})
    assert [(c.email, c.source, c.matched_on) for c in found] == [(EMAIL, "shop", "order_reference")]
    assert gatherer.contacts_on_file(None, {}) == []
    # nothing found while a system is down: not "not on file", but "not known yet"
    with pytest.raises(NotReady, match="crm did not answer"):
        gatherer.contacts_on_file(None, {"order_reference": "UNKNOWNXX"})


def test_a_playbook_script_runs_like_a_source_after_the_step_it_needs(tmp_path):
    scripts = tmp_path / "playbooks" / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "legacy_crm.py").write_text(
        "def find(subject, context):\n"
        "    return [context.record('contacts', 'c' + i, {'id': i, 'card': '4111111111111111'}, ['customer_id'])\n"
        "            for i in subject.identifiers.get('customer_id', [])]\n")
    shop = FakeSource("shop", shop_answer, publishes=["customer_id"])
    gatherer = make_gatherer(tmp_path, [shop], access_steps=[
        {"source": "shop"}, {"script": "legacy_crm.py", "entities": ["contacts"], "accepts": ["customer_id"]}])
    assert gatherer.playbooks.plan(["access"])["legacy_crm"].deps == {"shop"}
    result = gatherer.gather(SubjectQuery(emails=[EMAIL]), ["access"])
    crm = [r for r in result.records if r.source == "legacy_crm"]
    assert [(r.record_id, r.fields["card"], r.matched_on) for r in crm] == [("c42", "**** 1111",
                                                                               ["customer_id via shop"])]


def test_a_failing_script_is_reported_like_a_source(tmp_path):
    scripts = tmp_path / "playbooks" / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "broken.py").write_text("def find(subject, context):\n    return ['not a record']\n")
    gatherer = make_gatherer(tmp_path, [FakeSource("shop", shop_answer)], access_steps=[
        {"sources": "all"}, {"script": "broken.py", "entities": ["x"]}])
    result = gatherer.gather(SubjectQuery(emails=[EMAIL]), ["access"])
    assert result.sources["broken"]["status"] == "failed" and "list of Record" in result.sources["broken"]["error"]


def test_circular_waits_and_unknown_sources_are_refused_at_start(tmp_path):
    a = FakeSource("a", shop_answer, accepts=["email", "visitor_id"], publishes=["customer_id"])
    b = FakeSource("b", shop_answer, accepts=["customer_id"], publishes=["visitor_id"])
    with pytest.raises(PlaybookError, match="circle"):
        make_gatherer(tmp_path / "cycle", [a, b])
    with pytest.raises(PlaybookError, match="not configured"):
        make_gatherer(tmp_path / "unknown", [a], access_steps=[{"source": "nope"}])


def test_a_source_never_takes_another_sources_ids_of_a_kind_it_owns(tmp_path):
    """Two shop databases both number customers: shop A's customer 42 is not shop B's customer 42."""
    shop_a = FakeSource("shop_a", shop_answer, accepts=["email", "customer_id"], publishes=["customer_id"])
    shop_b = FakeSource("shop_b", lambda q: SourceResult("shop_b", []), accepts=["email", "customer_id"],
                        publishes=["customer_id"])
    events = FakeSource("events", events_answer, accepts=["email", "customer_id"])
    gatherer = make_gatherer(tmp_path, [shop_a, shop_b, events])
    gatherer.gather(SubjectQuery(emails=[EMAIL], identifiers={"customer_id": ["7"]}), ["access"])
    assert shop_b.queries[0].identifiers == {"customer_id": ["7"]}  # the verified one only
    assert events.queries[0].identifiers == {"customer_id": ["7", "42"]}


def test_a_retry_still_says_which_inputs_are_missing(tmp_path):
    def down(query):
        raise NotReady("down")

    shop = FakeSource("shop", shop_answer, publishes=["customer_id"])
    consent = FakeSource("consent", down, publishes=["visitor_id"])
    events = FakeSource("events", events_answer, accepts=["email", "customer_id", "visitor_id"])
    gatherer = make_gatherer(tmp_path, [shop, consent, events])
    first = gatherer.gather(SubjectQuery(emails=[EMAIL]), ["access"])
    assert first.sources["events"]["incomplete_inputs"] == ["consent"]
    again = gatherer.retry(first, "shop")  # events runs again, consent is still down
    assert again.sources["events"]["incomplete_inputs"] == ["consent"] and not again.complete
    assert set(again.failures) == {"consent"}


def test_a_saas_style_auth_failure_in_the_result_is_reported_as_such(tmp_path):
    refused = FakeSource("stripe", lambda q: SourceResult("stripe", [], error="auth_failed: Stripe refused the key"))
    result = make_gatherer(tmp_path, [refused]).gather(SubjectQuery(emails=[EMAIL]), ["access"])
    assert result.sources["stripe"]["status"] == "auth_failed"
    assert result.failures == {"stripe": "auth_failed: Stripe refused the key"}


def test_contacts_on_file_does_not_wait_for_a_hung_source(tmp_path):
    shop = FakeSource("shop", shop_answer, contacts={f"email:{EMAIL}": EMAIL})
    hung = FakeSource("crm", shop_answer)
    hung.contacts = lambda identifiers: (hung.release.wait(10), [])[1]
    gatherer = make_gatherer(tmp_path, [shop, hung], timeouts={"shop": 0.2, "crm": 0.2})
    try:
        found = gatherer.contacts_on_file(EMAIL, {})
    finally:
        hung.release.set()
    assert [(c.email, c.source) for c in found] == [(EMAIL, "shop")]
