"""Helpers shared by the mailbox, SMTP and acknowledgement tests: a service on real servers, a clock, mails."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Callable

from bot.config import load_config
from bot.service import Service, build_service
from tests.servers.dovecot import Account

#: A Monday in Paris; the due date one month on is Thursday 3 April 2025.
RECEIVED = datetime(2025, 3, 3, 9, 30, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self, start: datetime = RECEIVED + timedelta(minutes=5)) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


def make_service(data_dir: Path, account: Account | None = None, smtp_port: int | None = None,
                 now: Callable[[], datetime] | None = None, **mailbox: Any) -> Service:
    overrides: dict[str, dict[str, Any]] = {"service": {"data_dir": str(data_dir), "shop_name": "La Boutique"}}
    if account is not None:
        overrides["mailbox"] = account.config_overrides(**mailbox)
    if smtp_port is not None:
        overrides["smtp"] = {"enabled": True, "host": "127.0.0.1", "port": smtp_port}
    config = load_config(None, environ={}, overrides=overrides)
    return build_service(config, now=now or FakeClock())


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `predicate` until it is truthy; fail after `timeout` seconds (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.02)


def request_mail(*, sender: str = "camille.martin@example.fr", subject: str = "Demande d'accès RGPD",
                 text: str = ("Bonjour,\n\nEn application de l'article 15 du RGPD, je souhaite obtenir une copie "
                              "de toutes les données personnelles que vous détenez sur moi.\n\nCamille Martin\n"),
                 message_id: str | None = None, headers: dict[str, str] | None = None,
                 date: datetime = RECEIVED - timedelta(days=3)) -> bytes:
    """A customer's mail; its Date header is deliberately days before the server's receipt."""
    msg = EmailMessage()
    msg["From"] = f"Camille Martin <{sender}>"
    msg["To"] = "confidentialite@shop.example"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id or make_msgid(domain="example.fr")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    return msg.as_bytes()
