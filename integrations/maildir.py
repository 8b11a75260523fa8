"""A Maildir folder as a channel: for a mail server that delivers the privacy mailbox to a folder.

Maildir (https://cr.yp.to/proto/maildir.html): a delivering agent writes each mail into `tmp/`
then renames it into `new/`; a reader moves what it has handled to `cur/`, adding `:2,<flags>` to
the name. This channel reads `new/` every `[maildir] poll_seconds`, in arrival order: each mail
goes through the same parser and intake as IMAP mail (`integrations.mailbox.mail_message`), its
file time (the delivery into the folder) starts the legal clock, and only after intake has
returned is the file moved to `cur/` flagged Seen (`S`). A crash in between replays the file at
the next pass, and intake's dedupe makes the replay the same case. A mail that keeps failing goes
to the desk's quarantine after `max_failures` passes and is moved to `cur/` flagged `F`, unread.
`dsarbot demo` uses it: its seeded requests are files in `demo-data/maildir/new/`.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from bot.attachments import Limits
from bot.config import ConfigError, MaildirConfig
from bot.intake import Intake
from bot.service import Service
from bot.store import Store
from bot.vault import Vault, vault_of
from integrations.mailbox.channel import mail_message
from integrations.mailbox.state import MailboxState

log = logging.getLogger(__name__)

SUBDIRS = ("tmp", "new", "cur")
STATE_GENERATION = 1  # a Maildir has no UIDVALIDITY: file names are stable


def _with_flag(name: str, flag: str) -> str:
    """`name` with Maildir info `:2,<flags>` including `flag` (flags stay sorted, as the format asks)."""
    base, sep, info = name.partition(":2,")
    flags = set(info) if sep else set()
    return f"{base}:2,{''.join(sorted(flags | {flag}))}"


class MaildirChannel:
    """Drives intake from one Maildir. One pass at a time per process."""

    name = "email"

    def __init__(self, config: MaildirConfig, intake: Intake, vault: Vault, store: Store,
                 now: Callable[[], datetime]) -> None:
        self.config = config
        self.root = Path(config.path).expanduser()
        self.intake = intake
        self.vault = vault
        self.limits = Limits(config.max_attachment_bytes, config.max_attachments)
        self.state = MailboxState(store, vault, f"maildir:{self.root.resolve()}", "new", now)
        self._lock = threading.Lock()

    def check(self) -> str | None:
        """Startup check: the folder is a Maildir we can read and move files in."""
        missing = [sub for sub in SUBDIRS if not (self.root / sub).is_dir()]
        if missing:
            return (f"[maildir] {self.root} is not a Maildir (no {', '.join(missing)}/): point [maildir] path at "
                    "the folder holding tmp/, new/ and cur/")
        if not os.access(self.root / "new", os.R_OK | os.W_OK) or not os.access(self.root / "cur", os.W_OK):
            return f"[maildir] cannot read and move mail in {self.root}: check its owner and permissions"
        return None

    def poll(self) -> Counter:
        """One pass over `new/`: intake outcomes by name ("failed" and "quarantined" included)."""
        outcomes: Counter = Counter()
        with self._lock:
            if self.check():
                return outcomes
            state = self.state.load(STATE_GENERATION)
            files = [p for p in (self.root / "new").iterdir() if p.is_file() and not p.name.startswith(".")]
            for path in sorted(files, key=lambda p: (p.stat().st_mtime, p.name)):
                outcomes[self._deliver(state, path)] += 1
            self.state.save(state)
        return outcomes

    def poll_job(self) -> None:
        """The scheduled pass; a folder that is not a Maildir is reported, not raised."""
        problem = self.check()
        if problem:
            self.state.set_status("misconfigured", problem)
            log.warning("%s", problem)
            return
        self.state.set_status("ok", mode="poll")
        outcomes = self.poll()
        if outcomes:
            log.info("maildir poll: %s", dict(outcomes))

    def _deliver(self, state, path: Path) -> str:
        """Intake's outcome for one file, or "failed" / "quarantined". Never raises."""
        name = path.name
        raw = b""
        try:
            size = path.stat().st_size
            headers_only = size > self.config.max_message_bytes
            raw = _read_headers(path) if headers_only else path.read_bytes()
            received_at = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
            message = mail_message(raw, received_at, self.vault, self.limits, headers_only=headers_only,
                                   size=size, size_limit=self.config.max_message_bytes)
            outcome = self.intake.receive(message).outcome
        except Exception as exc:  # noqa: BLE001 - one bad file must never stop the folder
            log.exception("maildir file %s: intake failed", name[:80])
            gone = self.state.failed(state, name, f"{type(exc).__name__}: {exc}", raw or None,
                                     self.config.max_failures)
            if gone:
                self._move(path, "F")
                return "quarantined"
            return "failed"
        state.failing.pop(name, None)
        self._move(path, "S")
        return outcome

    def _move(self, path: Path, flag: str) -> None:
        target = self.root / "cur" / _with_flag(path.name, flag)
        try:
            os.replace(path, target)
        except FileNotFoundError:  # another reader moved it meanwhile: it is handled
            pass


def _read_headers(path: Path, limit: int = 1024 * 1024) -> bytes:
    """The header block of a mail too big to read whole (up to the first blank line, at most `limit`)."""
    with path.open("rb") as handle:
        head = handle.read(limit)
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = head.find(separator)
        if end >= 0:
            return head[:end + len(separator)]
    return head


def setup(service: Service) -> None:
    config = service.config.maildir
    if not config.enabled:
        return
    if not config.path:
        raise ConfigError("[maildir] path is required when enabled: the folder holding tmp/, new/ and cur/")
    channel = MaildirChannel(config, service.components["intake"], vault_of(service), service.store, service.now)
    service.components["maildir"] = channel
    service.add_job("maildir.poll", channel.poll_job, seconds=config.poll_seconds)
    service.startup_checks.append(channel.check)
