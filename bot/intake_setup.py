"""Builds the one Intake every channel (mailbox, helpdesk webhooks, web form) hands its messages to.

Set up first among the integrations: it is `service.components["intake"]`.
"""
from __future__ import annotations

from bot.classifier import make_classifier
from bot.config import Config
from bot.intake import Intake
from bot.service import Service


def own_addresses(config: Config) -> list[str]:
    """Addresses that are us: mail from them is our own (the classifier's loop guard)."""
    candidates = [config.service.privacy_address, config.smtp.from_address]
    if "@" in config.mailbox.username:
        candidates.append(config.mailbox.username)
    return sorted({a.strip().lower() for a in candidates if a and "@" in a})


def setup(service: Service) -> None:
    service.components["intake"] = Intake(service.cases, make_classifier(own_addresses(service.config)))
