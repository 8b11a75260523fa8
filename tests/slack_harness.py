"""A dsarbot service wired to a local Slack, and the moves tests make with it (clicks, commands, days)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from bot.config import load_config
from bot.models import Case, Person
from bot.service import Service, build_service
from bot.web.app import create_app
from tests.fakes import slack as fake_slack
from tests.fakes.slack import FakeSlack, signed_headers

APPROVER = "U0APPROVER"
AGENT = "U0AGENT"
GUEST = "U0GUEST"
DPO = "U0DPO"
BASE_URL = "https://dsar.shop.example"


class SlackHarness:
    """One service (on `data_dir`) with Slack enabled and pointed at `fake`; its Flask test client."""

    def __init__(self, data_dir: Path, clock: Any, fake: FakeSlack, **slack: Any) -> None:
        settings = {"enabled": True, "bot_token": fake_slack.TOKEN, "signing_secret": fake_slack.SIGNING_SECRET,
                    "channel": fake_slack.CHANNEL, "approvers": [APPROVER], "escalation_user": DPO,
                    "api_base_url": fake.base_url, **slack}
        config = load_config(None, environ={}, overrides={"service": {"data_dir": str(data_dir), "base_url": BASE_URL},
                                                         "slack": settings})
        self.clock = clock
        self.fake = fake
        self.service: Service = build_service(config, now=clock, integrations=["bot.reminders", "integrations.slack"])
        self.interactions = self.service.components["slack"]
        self.web = create_app(self.service).test_client()
        for user in (APPROVER, AGENT, DPO):
            fake.add_user(user)
        fake.add_user(GUEST, is_restricted=True)

    def close(self) -> None:
        assert self.interactions.wait_idle(10), "slack listeners still running after 10 s"
        self.service.close()

    # --- time and effects ----------------------------------------------------------------------
    def run_outbox(self) -> int:
        """Run every effect due now, and what those queue for now, until nothing is due (bounded)."""
        total = 0
        for _ in range(50):
            ran = self.service.outbox.run_due()
            total += ran
            if not ran:
                return total
        raise AssertionError("the outbox keeps finding due work")

    def run_days(self, days: int) -> None:
        for _ in range(days * 4):  # every 6 hours, like a scheduler would (more often, same result)
            self.run_outbox()
            self.clock.advance(hours=6)

    # --- cases -------------------------------------------------------------------------------
    def open_case(self, email: str = "jeanne.martin@example.fr", name: str = "Jeanne Martin",
                  **kwargs: Any) -> Case:
        return self.service.cases.open(received_at=self.clock(), rights=kwargs.pop("rights", ["access"]),
                                       language="fr", channel="email", requester=Person(email=email, name=name),
                                       **kwargs)

    def draft(self, case: Case, draft_hash: str) -> Case:
        """Bring a case to `drafted` with the given draft hash (verified, gathered)."""
        cases = self.service.cases
        case = cases.get(case.id)
        if case.state == "received":
            case = cases.transition(case.id, "verify", "agent:ana",
                                    mutate=lambda c: c.verification.update(verified=True, method="email_code"))
        case = cases.transition(case.id, "start_gathering", "system")

        def keep(c: Case) -> None:
            c.draft = {"hash": draft_hash, "files": ["letter.pdf"], "at": self.clock().isoformat()}

        case = cases.transition(case.id, "gathered", "system", mutate=keep, detail={"draft_hash": draft_hash})
        self.run_outbox()
        return case

    def approval_message(self, case: Case) -> dict[str, Any]:
        stored = self.service.store.get("kv", f"slack:approval:{case.id}")
        assert stored, "no approval message recorded"
        return self.fake.message(stored["ts"])

    # --- requests from Slack -----------------------------------------------------------------
    def post(self, path: str, body: str, headers: dict[str, str] | None = None, wait: bool = True) -> Any:
        response = self.web.post(path, data=body, headers=signed_headers(body) if headers is None else headers)
        if wait:
            assert self.interactions.wait_idle(10), "slack listeners still running after 10 s"
        return response

    def click(self, user: str, action: str, message: dict[str, Any], value: str | None = None, **kw: Any) -> Any:
        if value is None:
            value = button(message, action)["value"]
        body = fake_slack.block_actions(self.fake, user, f"dsar_{action}", value, message["ts"])
        return self.post("/slack/interactions", body, **kw)

    def submit_reason(self, user: str, reason: str, view: dict[str, Any] | None = None) -> Any:
        view = view or self.fake.views[-1]
        return self.post("/slack/interactions", fake_slack.view_submission(user, view, reason))

    def command(self, user: str, text: str, **kw: Any) -> dict[str, Any]:
        before = len(self.fake.responses)
        response = self.post("/slack/commands", fake_slack.slash_command(self.fake, user, text, **kw))
        assert response.status_code == 200
        assert len(self.fake.responses) == before + 1, "no answer through response_url"
        return self.fake.responses[-1]


def button(message: dict[str, Any], action: str) -> dict[str, Any]:
    for block in message.get("blocks", []):
        for element in block.get("elements", []):
            if element.get("action_id") == f"dsar_{action}":
                return element
    raise AssertionError(f"no {action} button in the message")


def buttons(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for block in message.get("blocks", []) for e in block.get("elements", [])
            if e.get("type") == "button"]


def text_of(message: dict[str, Any]) -> str:
    """Everything a reader sees in a message: its text and every text in its blocks."""
    return message.get("text", "") + "\n" + json.dumps(message.get("blocks", []), ensure_ascii=False)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()
    slack.api.assert_clean()


@pytest.fixture
def harness(tmp_path: Path, clock: Any, fake: FakeSlack) -> Iterator[SlackHarness]:
    h = SlackHarness(tmp_path / "data", clock, fake)
    yield h
    h.close()
