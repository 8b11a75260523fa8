"""Builds the one Intake every channel (mailbox, helpdesk webhooks, web form) hands its messages to.

Set up first among the integrations: it is `service.components["intake"]`.
"""
from __future__ import annotations

from bot.classifier import classifier_for
from bot.intake import Intake
from bot.service import Service


def setup(service: Service) -> None:
    service.components["intake"] = Intake(service.cases, classifier_for(service.config))
