"""An SMTP sink for tests: aiosmtpd's Controller on a free loopback port, keeping what it receives.

Fixture `smtp_sink`: `.port`, `.messages` (parsed `email.message.EmailMessage`, in arrival order),
`.envelopes` (mail-from, rcpt-tos, raw bytes) and `.wait_for(count, timeout)`, a bounded wait.
Set `.refuse_rcpt` to a set of addresses to answer 550 for them, `.temp_fail` to answer 451, or
`.busy` to answer 421 to MAIL FROM (a server shedding load); `.refused` counts those answers.
`.stop_listening()` / `.start_listening()` close and reopen the port (connection refused meanwhile). `.spool`, when set, is a directory where
each accepted message is also written as `<arrival number>.eml` before the 250 (for other processes).
`running_sink()` starts one outside pytest (benches, campaign drivers).
"""
from __future__ import annotations

import email
import email.policy
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Iterator

import pytest
from aiosmtpd.controller import Controller

from tests.servers.dovecot import free_port


@dataclass
class Envelope:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes


@dataclass
class SmtpSink:
    envelopes: list[Envelope] = field(default_factory=list)
    refuse_rcpt: set[str] = field(default_factory=set)
    temp_fail: bool = False
    busy: bool = False
    spool: Path | None = None
    port: int = 0
    refused: int = 0
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    _controller: Controller | None = None

    def start_listening(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop_listening(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # aiosmtpd handler hooks
    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if self.busy:
            self.refused += 1
            return "421 4.3.2 service not available, closing transmission channel"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.temp_fail:
            self.refused += 1
            return "451 4.3.0 try again later"
        if address.lower() in self.refuse_rcpt:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self._arrived:
            self.envelopes.append(Envelope(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
            if self.spool is not None:
                path = self.spool / f"{len(self.envelopes):06d}.eml"
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(bytes(envelope.content))
                os.replace(tmp, path)
            self._arrived.notify_all()
        return "250 Message accepted"

    @property
    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(e.raw, policy=email.policy.default) for e in self.envelopes]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.envelopes) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} mails at the SMTP sink within {timeout}s, "
                                         f"got {len(self.envelopes)}")
                self._arrived.wait(left)
        return self.messages


@contextmanager
def running_sink(spool: Path | None = None) -> Iterator[SmtpSink]:
    sink = SmtpSink(spool=spool)
    sink.port = free_port()
    sink.start_listening()
    try:
        yield sink
    finally:
        sink.stop_listening()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with running_sink() as sink:
        yield sink
