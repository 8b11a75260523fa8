"""The privacy mailbox over IMAP: push (IDLE) when the server offers it, polling as a safety net.

`setup(service)` (when `[mailbox] enabled`) registers:
- `service.components["mailbox"]`: the MailboxChannel (one pass: `poll()`);
- `service.components["mailbox_watcher"]`: the IDLE thread, started by `bot.runtime` through
  `service.components["background"]` when `[mailbox] use_idle`;
- the job "mailbox.poll" every `[mailbox] poll_seconds` (the only mode without IDLE);
- a startup check that logs in and opens the folders.
"""
from __future__ import annotations

from bot.service import Service
from bot.vault import vault_of
from integrations.mailbox.channel import MailboxChannel, PollResult, imap_outcome, mail_message
from integrations.mailbox.state import QUARANTINE, MailboxState
from integrations.mailbox.watcher import IdleWatcher

__all__ = ["IdleWatcher", "MailboxChannel", "MailboxState", "PollResult", "QUARANTINE", "imap_outcome",
           "mail_message", "setup"]


def setup(service: Service) -> None:
    config = service.config.mailbox
    if not config.enabled:
        return
    channel = MailboxChannel(config, service.components["intake"], vault_of(service), service.store, service.now)
    service.components["mailbox"] = channel
    service.add_job("mailbox.poll", channel.poll_job, seconds=config.poll_seconds)
    service.startup_checks.append(channel.check)
    watcher = IdleWatcher(channel, config)
    service.components["mailbox_watcher"] = watcher
    if config.use_idle:
        service.components.setdefault("background", []).append(watcher.start)
