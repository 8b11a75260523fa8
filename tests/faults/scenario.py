"""The fault suite's scenario: who writes in, and the service configuration the runner builds.

A `Spec` (JSON) is everything a runner process needs: its data dir, the servers (Dovecot, the SMTP
sink and its spool, the fake Slack, optionally PostgreSQL and Zendesk) and the Message-IDs of the
requests it must bring to the end. Both the driver (tests/faults/campaign.py) and the runner
(tests/faults/runner.py) read it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from bot.config import Config, load_config
from bot.demo_shop import demo_sources
from tests.fakes import slack as fake_slack
from tests.fakes import zendesk as fake_zendesk

SECRET = "fault-suite-secret"
APPROVER = "U0APPROVER"
BASE_URL = "http://dsar.test"
PRIVACY_ADDRESS = "confidentialite@shop.example"

#: (address, name, language, text). Customers of the demo shop, a newsletter-only address and strangers.
SENDERS: list[tuple[str, str, str, str]] = [
    ("camille.martin@example.fr", "Camille Martin", "fr",
     "Bonjour,\n\nEn application de l'article 15 du RGPD, je souhaite obtenir une copie de toutes les "
     "données personnelles que vous détenez sur moi.\n\nCamille Martin\n"),
    ("sam.jones@example.co.uk", "Sam Jones", "en",
     "Hello,\n\nUnder Article 15 of the GDPR I am making a subject access request: please send me a copy of "
     "all the personal data you hold about me.\n\nSam Jones\n"),
    ("leo.dubois@example.fr", "Léo Dubois", "fr",
     "Bonjour,\n\nJe souhaite exercer mon droit d'accès (article 15 du RGPD) et recevoir une copie de mes "
     "données personnelles.\n\nLéo\n"),
    ("ines.roux@example.fr", "Inès Roux", "fr",
     "Bonjour,\n\nConformément au RGPD, merci de me communiquer l'ensemble des données personnelles me "
     "concernant (droit d'accès, article 15).\n\nInès Roux\n"),
    ("emily.clarke@example.com", "Emily Clarke", "en",
     "Hi,\n\nPlease provide me with a copy of my personal data under Article 15 GDPR (right of access).\n\n"
     "Emily\n"),
    ("nobody.here@example.org", "Alex Stranger", "en",
     "Hello,\n\nI would like to exercise my right of access under Article 15 GDPR and receive a copy of any "
     "personal data you hold about me.\n\nAlex\n"),
]


@dataclass
class Spec:
    data_dir: str
    shop_dir: str
    spool: str
    imap: dict[str, Any]  # host, port, username, password
    smtp_port: int
    slack_url: str
    message_ids: list[str]
    store_url: str = ""
    zendesk: dict[str, Any] = field(default_factory=dict)  # {"base_url"} of the fake Zendesk, when it is on
    timeout_seconds: float = 300.0

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def read(cls, path: str | Path) -> "Spec":
        return cls(**json.loads(Path(path).read_text()))


def request_mail(sender: int, tag: str, at: datetime) -> tuple[str, bytes]:
    """A request from SENDERS[sender]; `tag` makes its Message-ID unique. Returns (Message-ID, raw bytes)."""
    address, name, _, text = SENDERS[sender]
    message_id = f"<req-{tag}@example.net>"
    msg = EmailMessage()
    msg["From"] = f"{name} <{address}>"
    msg["To"] = PRIVACY_ADDRESS
    msg["Subject"] = "Demande d'accès RGPD" if "Bonjour" in text else "Subject access request"
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = message_id
    msg.set_content(text)
    return message_id, msg.as_bytes()


def runner_config(spec: Spec) -> Config:
    """The configuration of a runner: every integration of the flow on, pointed at the test servers."""
    overrides: dict[str, dict[str, Any]] = {
        "service": {"data_dir": spec.data_dir, "base_url": BASE_URL, "secret_key": SECRET,
                    "shop_name": "La Boutique", "privacy_address": PRIVACY_ADDRESS},
        "store": {"url": spec.store_url},
        "mailbox": {"enabled": True, "ssl": False, "use_idle": False, **spec.imap},
        "smtp": {"enabled": True, "host": "127.0.0.1", "port": spec.smtp_port, "from_address": PRIVACY_ADDRESS,
                 "timeout_seconds": 10},
        "slack": {"enabled": True, "bot_token": fake_slack.TOKEN, "signing_secret": fake_slack.SIGNING_SECRET,
                  "channel": fake_slack.CHANNEL, "api_base_url": spec.slack_url, "approvers": [APPROVER]},
        "playbooks": {"sources": demo_sources(Path(spec.shop_dir))},
    }
    if spec.zendesk:
        overrides["helpdesk"] = {"kind": "zendesk"}
        overrides["zendesk"] = {"base_url": spec.zendesk["base_url"], "email": fake_zendesk.EMAIL,
                                "api_token": fake_zendesk.TOKEN, "webhook_secret": fake_zendesk.SECRET,
                                "field_ids": fake_zendesk.FIELD_IDS}
    return load_config(None, environ={}, overrides=overrides)
