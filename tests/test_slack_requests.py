"""Slack's endpoints check the signature before parsing anything, and answer malformed signed bodies with 400
(found by tests/fuzz: bolt parsed first and crashed with 500 on bodies it did not expect)."""
from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest

from integrations.slack_requests import clean_body, verified
from tests.fakes.slack import SIGNING_SECRET, signed_headers
from tests.slack_harness import APPROVER, SlackHarness, fake, harness  # noqa: F401 (fixtures)

MALFORMED_SIGNED = [
    ("/slack/interactions", urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": APPROVER},
                                                               "actions": []})})),
    ("/slack/interactions", urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": APPROVER},
                                                               "team": True, "actions": [{"action_id": "x"}]})})),
    ("/slack/interactions", urlencode({"payload": json.dumps({"type": "view_submission", "user": [],
                                                               "view": "nope"})})),
    ("/slack/interactions", urlencode({"payload": "{not json"})),
    ("/slack/interactions", urlencode({"payload": json.dumps([1, 2])})),
    ("/slack/events", "{not json"),
    ("/slack/events", json.dumps({"type": "event_callback", "event": [1]})),
    ("/slack/commands", urlencode({"payload": "{"})),
    ("/slack/commands", "%ff%fe=%00"),
]


@pytest.mark.parametrize("path, body", MALFORMED_SIGNED)
def test_a_signed_malformed_request_is_a_400_and_changes_nothing(harness: SlackHarness, path: str, body: str) -> None:
    kv = harness.service.store.count("kv")
    response = harness.post(path, body)
    assert response.status_code == 400
    assert harness.service.store.count("kv") == kv  # not even remembered as seen: nothing was accepted


@pytest.mark.parametrize("path, body", MALFORMED_SIGNED)
def test_an_unsigned_malformed_request_is_a_401_before_any_parsing(harness: SlackHarness, path: str,
                                                                   body: str) -> None:
    headers = signed_headers(body, secret="not-the-secret")
    assert harness.post(path, body, headers=headers).status_code == 401
    bad_timestamp = {**signed_headers(body), "X-Slack-Request-Timestamp": "soon"}
    assert harness.post(path, body, headers=bad_timestamp).status_code == 401


def test_url_verification_still_answers_its_challenge(harness: SlackHarness) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"})
    response = harness.post("/slack/events", body, headers=signed_headers(body, content_type="application/json"))
    assert response.status_code == 200 and "c-123" in response.get_data(as_text=True)


def test_verified_is_the_v0_scheme_within_five_minutes() -> None:
    body = b"payload=%7B%7D"
    now = time.time()
    headers = signed_headers(body.decode(), timestamp=int(now))
    assert verified(body, headers, SIGNING_SECRET, lambda: now)
    assert not verified(body + b"x", headers, SIGNING_SECRET, lambda: now)
    assert not verified(body, headers, SIGNING_SECRET, lambda: now + 301)
    assert not verified(body, headers, "", lambda: now)
    assert not verified(body, {**headers, "X-Slack-Signature": "v0=\u00e9"}, SIGNING_SECRET, lambda: now)


def test_clean_body_keeps_only_what_dsarbot_reads() -> None:
    payload = {"type": "block_actions", "user": {"id": "U1", "name": "x"}, "team": {"id": "T1"},
               "enterprise": 5, "authorizations": "?", "trigger_id": "t",
               "actions": [{"action_id": "dsar_approve", "value": "{}", "extra": [1]}]}
    body = clean_body("interactions", urlencode({"payload": json.dumps(payload)}).encode())
    assert body == {"type": "block_actions", "user": {"id": "U1"}, "team": {"id": "T1"}, "trigger_id": "t",
                    "response_url": "", "container": {},
                    "actions": [{"action_id": "dsar_approve", "value": "{}", "block_id": "", "type": ""}]}


@pytest.mark.parametrize("path, body", [
    ("/slack/commands", urlencode({"command": "/other", "user_id": "U1", "text": "jeanne.secret@example.fr"})),
    ("/slack/interactions", urlencode({"payload": json.dumps({
        "type": "block_actions", "user": {"id": "U1"},
        "actions": [{"action_id": "other_jeanne.secret@example.fr", "value": "v"}]})})),
    ("/slack/interactions", urlencode({"payload": json.dumps({
        "type": "view_submission", "user": {"id": "U1"}, "view": {"callback_id": "jeanne.secret@example.fr"}})})),
])
def test_a_signed_request_no_listener_takes_is_a_404_and_its_body_is_not_logged(harness: SlackHarness, caplog,
                                                                               path: str, body: str) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    assert harness.post(path, body).status_code == 404
    assert "jeanne.secret" not in caplog.text  # bolt logs unhandled requests with their body, at WARNING
