"""Slack requests and helpdesk webhooks (signed and not) and public form posts with random fields: never a
500, unsigned or unchecked ones refused with nothing stored, accepted ones leaving their record."""
from __future__ import annotations

import pytest
from hypothesis import given

from tests.fakes.freshdesk import FakeFreshdesk
from tests.fakes.slack import FakeSlack
from tests.fakes.zendesk import FakeZendesk
from tests.fuzz.web_targets import FormTarget, HelpdeskTarget, SlackTarget
from tests.fuzz.webgen import WebInput, form_post, freshdesk_webhook, slack_request, zendesk_webhook


def test_slack_requests_signed_or_not_never_crash_and_unsigned_ones_change_nothing(tmp_path_factory):
    fake = FakeSlack().start()
    target = SlackTarget(tmp_path_factory.mktemp("fuzz-slack"), fake)

    @given(slack_request())
    def feed(request: WebInput) -> None:
        target.feed(request)

    try:
        feed()
    finally:
        target.close()
        fake.stop()
    print(f"slack: {target.tried} inputs, outcomes {dict(target.outcomes)}")
    fake.api.assert_clean()
    assert sum(target.outcomes.values()) == target.tried >= 50
    assert any("refused" in k for k in target.outcomes) and any("signed" in k for k in target.outcomes)


def test_form_posts_with_random_fields_store_one_record_or_nothing(tmp_path_factory):
    target = FormTarget(tmp_path_factory.mktemp("fuzz-form"))

    @given(form_post())
    def feed(request: WebInput) -> None:
        target.feed(request)

    try:
        feed()
    finally:
        target.close()
    print(f"form: {target.tried} inputs, outcomes {dict(target.outcomes)}")
    assert sum(target.outcomes.values()) == target.tried >= 50
    assert target.outcomes["303 case opened"] and target.outcomes["400 refused (csrf)"]


@pytest.mark.parametrize("kind", ["zendesk", "freshdesk"])
def test_helpdesk_webhooks_are_refused_unsigned_and_end_as_records_signed(tmp_path_factory, kind):
    fake = (FakeZendesk if kind == "zendesk" else FakeFreshdesk)().start()
    target = HelpdeskTarget(tmp_path_factory.mktemp(f"fuzz-{kind}"), kind, fake)

    @given(zendesk_webhook() if kind == "zendesk" else freshdesk_webhook())
    def feed(request: WebInput) -> None:
        target.feed(request)

    try:
        feed()
    finally:
        target.close()
        fake.stop()
    print(f"{kind}: {target.tried} inputs, outcomes {dict(target.outcomes)}")
    fake.assert_clean()
    assert sum(target.outcomes.values()) == target.tried >= 50
    assert target.outcomes["200 kept, case opened"] and any("refused" in k for k in target.outcomes)
