"""Builds the one Intake every channel (mailbox, helpdesk webhooks, web form) hands its messages to.

Set up right after the classifier: it is `service.components["intake"]`.
"""
from __future__ import annotations

from bot.intake import Intake
from bot.service import Service


def setup(service: Service) -> None:
    service.components["intake"] = Intake(service.cases, service.components["classifier"])
