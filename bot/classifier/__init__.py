"""Offline, deterministic message classifier: request or not, which rights, which language, why.

`classify(message)` is ready to use; `make_classifier(own_addresses)` adds the loop guard for
our own addresses (`classifier_for(config)` takes them from the configuration), and the service
offers that one as its `classifier` component.
"""
from __future__ import annotations

from typing import Callable

from bot.classifier.core import make_classifier, own_addresses_of
from bot.intake import Classification
from bot.models import Message

_default: Callable[[Message], Classification] | None = None


def classify(message: Message) -> Classification:
    """Classify with no own addresses configured (our X-Dsarbot-Ref header is still recognised)."""
    global _default
    if _default is None:  # built on first use: importing the package stays cheap
        _default = make_classifier()
    return _default(message)


def classifier_for(config) -> Callable[[Message], Classification]:  # noqa: ANN001 - bot.config.Config
    """The classifier for a configured service: mail from our privacy/SMTP addresses is a loop."""
    return make_classifier(own_addresses_of(config))


def setup(service) -> None:  # noqa: ANN001 - bot.service.Service
    """Offer the configured classifier as the `classifier` component: the intake of every channel uses it."""
    service.components.setdefault("classifier", classifier_for(service.config))


__all__ = ["classify", "make_classifier", "classifier_for", "setup"]
