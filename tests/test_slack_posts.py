"""Slack posts: one per new case (even when an answer is lost), its thread, escaping, no personal data."""
from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from bot.models import Person
from bot.service import build_service
from integrations.slack_blocks import escape_mrkdwn, link
from tests.conftest import FakeClock
from tests.fakes.slack import FakeSlack
from tests.slack_harness import BASE_URL, SlackHarness, fake, harness, text_of  # noqa: F401 - fixtures

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def test_a_new_case_is_posted_once_with_what_agents_need(harness: SlackHarness, fake: FakeSlack) -> None:
    ticket = {"system": "zendesk", "id": "4521", "url": "https://shop.zendesk.com/agent/tickets/4521"}
    case = harness.open_case(ticket=ticket)
    harness.run_outbox()
    harness.run_outbox()
    posts = fake.top_level()
    assert len(posts) == 1
    post = text_of(posts[0])
    for expected in (case.ref, "Access", "email", "2026-11-25", "2026-12-28", "Received",
                     "<https://shop.zendesk.com/agent/tickets/4521|zendesk #4521>",
                     f"<{BASE_URL}/desk/cases/{case.ref}|open {case.ref}>"):
        assert expected in post, expected
    stored = harness.service.cases.get(case.id)
    assert stored.slack == {"channel": "C0CASES", "ts": posts[0]["ts"]}
    assert not fake.api.calls("POST", "/api/conversations.history")  # no answer lost: no search


def test_a_lost_answer_does_not_post_twice(harness: SlackHarness, fake: FakeSlack) -> None:
    fake.api.lose(1, path="chat.postMessage")
    case = harness.open_case()
    harness.run_outbox()  # Slack posted, but the answer never came back: the effect will retry
    assert len(fake.top_level()) == 1
    assert not harness.service.cases.get(case.id).slack
    harness.clock.advance(seconds=30)
    harness.run_outbox()
    assert len(fake.top_level()) == 1
    assert harness.service.cases.get(case.id).slack["ts"] == fake.top_level()[0]["ts"]
    assert len(fake.api.calls("POST", "/api/conversations.history")) == 1
    assert len(fake.api.calls("POST", "/api/chat.postMessage")) == 1
    api = harness.interactions.api
    assert api.purge_markers() == 0  # kept while a retry could still need them
    api.wall = lambda: time.time() + 15 * 86400
    assert api.purge_markers() == 1


def test_rate_limited_post_waits_for_retry_after(harness: SlackHarness, fake: FakeSlack) -> None:
    fake.api.fail(1, 429, headers={"Retry-After": "40"}, path="chat.postMessage",
                  body={"ok": False, "error": "ratelimited"})
    case = harness.open_case()
    harness.run_outbox()
    effect = harness.service.store.get("outbox", f"{case.id}:slack:post")
    assert effect["status"] == "pending" and "rate limited" in effect["last_error"]
    harness.clock.advance(seconds=39)
    harness.run_outbox()
    assert fake.top_level() == []
    harness.clock.advance(seconds=2)
    harness.run_outbox()
    assert len(fake.top_level()) == 1


def test_no_email_address_or_name_reaches_slack_by_default(harness: SlackHarness, fake: FakeSlack) -> None:
    harness.service.store.put("messages", "m1", {"subject": "Accès à mes données jeanne.martin@example.fr"})
    case = harness.open_case(message_ids=["m1"])
    harness.run_outbox()
    harness.draft(case, "d" * 64)
    harness.service.cases.flag(case.id, "sources_failed", "no answer from: shop_db")
    harness.run_days(40)  # every reminder, the escalations, the thread updates
    from bot.reminders import run_digest

    run_digest(harness.service)
    assert len(fake.api.requests) > 20
    for body in fake.bodies():
        assert not EMAIL.search(body), body[:300]
        assert "Jeanne" not in body and "Accès à mes" not in body


def test_text_from_emails_is_inert_in_slack(tmp_path: Path, clock: FakeClock, fake: FakeSlack) -> None:  # noqa: F811
    harness = SlackHarness(tmp_path / "data", clock, fake, show_personal_data=True)
    subject = "<!channel> urgent <http://evil.example|click here> & <@U0DPO>"
    harness.service.store.put("messages", "m1", {"subject": subject})
    harness.open_case(message_ids=["m1"], name="Eve <!here>", email="eve@example.org")
    harness.run_outbox()
    harness.close()
    post = text_of(fake.top_level()[0])
    assert "&lt;!channel&gt; urgent &lt;http://evil.example|click here&gt; &amp; &lt;@U0DPO&gt;" in post
    assert "Eve &lt;!here&gt; (eve@example.org)" in post  # shown because the configuration allows it
    for body in fake.bodies():
        for live in ("<!channel>", "<!here>", "<http://evil", "<@U0DPO>"):
            assert live not in body


def test_escape_and_links_cannot_be_broken_out_of() -> None:
    assert escape_mrkdwn("a & <b> <!channel>") == "a &amp; &lt;b&gt; &lt;!channel&gt;"
    assert link("https://x.example/a?b=1&c=<!channel>|y", "<!here>") == \
        "<https://x.example/a?b=1&amp;c=%3C!channel%3E%7Cy|&lt;!here&gt;>"
    assert link("javascript:alert(1)", "label") == "label"


def test_each_change_gets_a_line_in_the_thread_and_the_post_stays_current(harness: SlackHarness,
                                                                          fake: FakeSlack) -> None:
    case = harness.open_case()
    harness.run_outbox()
    root = fake.top_level()[0]
    cases = harness.service.cases
    cases.transition(case.id, "request_identity", "system")
    cases.extend(case.id, "agent:ana", "nine systems to search")
    cases.flag(case.id, "sources_failed", "no answer from: shop_db")
    cases.flag(case.id, "effect_failed:slack.post_case", "a Slack failure is not told through Slack")
    harness.run_outbox()
    lines = [m["text"] for m in fake.thread(root["ts"])]
    assert len(lines) == 3
    assert f"{case.ref}: Received → Awaiting identity (by dsarbot)" in lines
    assert f"{case.ref}: deadline extended to 2027-02-25 (by ana)\nReason: nine systems to search" in lines
    assert f"{case.ref} needs attention: sources_failed (no answer from: shop_db)" in lines
    updated = text_of(fake.message(root["ts"]))
    assert "Awaiting identity" in updated and "2027-02-25 (extended)" in updated
    harness.run_outbox()
    assert len(fake.thread(root["ts"])) == 3  # once each


def test_the_digest_is_one_message_by_urgency_once_a_day(harness: SlackHarness, fake: FakeSlack) -> None:
    soon = harness.service.cases.open(received_at=harness.clock() - timedelta(days=27), rights=["erasure"],
                                      language="en", channel="form",
                                      requester=Person(email="a@example.org"))
    later = harness.open_case()
    harness.run_outbox()
    from bot.reminders import run_digest

    run_digest(harness.service)
    run_digest(harness.service)  # the effect retried after a lost answer: still one message
    digests = [m for m in fake.top_level() if "Open privacy requests" in m["text"]]
    assert len(digests) == 1
    body = text_of(digests[0])
    assert body.index(soon.ref) < body.index(later.ref)
    assert "Due soon" in body and "On track" in body
    assert f"due {soon.effective_due.isoformat()} · 5 days left" in body


def test_french_texts(tmp_path: Path, clock: FakeClock, fake: FakeSlack) -> None:  # noqa: F811
    harness = SlackHarness(tmp_path / "data", clock, fake, language="fr")
    harness.open_case()
    harness.run_outbox()
    harness.close()
    post = text_of(fake.top_level()[0])
    assert "Nouvelle demande RGPD" in post and "Accès" in post and "Échéance" in post


def test_startup_check_says_what_is_wrong(harness: SlackHarness, tmp_path: Path, clock: FakeClock) -> None:
    assert harness.service.run_startup_checks() == []
    other = FakeSlack(scopes="chat:write").start()
    narrow = SlackHarness(tmp_path / "other", clock, other)
    revoked = SlackHarness(tmp_path / "bad", clock, other, bot_token="xoxb-revoked")
    try:
        problems = narrow.service.run_startup_checks()
        assert problems and "commands" in problems[0] and "channels:history or groups:history" in problems[0]
        assert "bot_token" in revoked.service.run_startup_checks()[0]
    finally:
        narrow.close()
        revoked.close()
        other.stop()


def test_disabled_does_nothing_and_bad_settings_are_named(tmp_path: Path) -> None:
    service = build_service(load_config(None, environ={}, overrides={"service": {"data_dir": str(tmp_path)}}))
    assert "slack" not in service.components and "slack" not in [b.name for b in service.blueprints]
    service.close()
    config = load_config(None, environ={}, overrides={
        "service": {"data_dir": str(tmp_path)},
        "slack": {"enabled": True, "bot_token": "x", "signing_secret": "y", "channel": "C1", "approvers": ["bob"]}})
    with pytest.raises(ConfigError, match=r"\[slack\] approvers: 'bob'"):
        build_service(config, integrations=["integrations.slack"])
