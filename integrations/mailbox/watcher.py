"""IMAP IDLE (RFC 2177): the server pushes "new mail" and the channel fetches it within seconds.

A background thread keeps one connection in IDLE on the folder. On an EXISTS response it leaves
IDLE, runs a pass of the channel on the same connection and idles again; it also leaves and
re-enters IDLE every `idle_renew_seconds` (servers drop an IDLE after 29 minutes) and runs a pass
then, as a safety net. On any error it reconnects with exponential backoff; a server without IDLE,
or a configuration that cannot work, ends the thread and leaves the scheduled poll alone in charge.
"""
from __future__ import annotations

import logging
import threading
import time

from imapclient import IMAPClient

from bot.config import MailboxConfig
from integrations.base import AuthFailed, Misconfigured, NotReady
from integrations.mailbox.channel import MailboxChannel, imap_outcome, outcome_name

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0  # how often the thread looks up from IDLE to notice a stop request
BACKOFF_START = 1.0
BACKOFF_MAX = 300.0


class IdleWatcher:
    def __init__(self, channel: MailboxChannel, config: MailboxConfig) -> None:
        self.channel = channel
        self.config = config
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()  # set while a connection is idling (tests, health)

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="mailbox-idle", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def run(self) -> None:
        delay = BACKOFF_START
        while not self._stop.is_set():
            client: IMAPClient | None = None
            try:
                client = self.channel.connect()
                if not client.has_capability("IDLE"):
                    log.warning("the IMAP server does not offer IDLE: polling every %ss instead",
                                self.config.poll_seconds)
                    self.channel.state.set_status("ok", mode="poll")
                    return
                delay = BACKOFF_START
                self._watch(client)
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any error
                outcome = imap_outcome(exc)
                self.channel.state.set_status(outcome_name(outcome), str(outcome))
                if isinstance(outcome, Misconfigured):
                    log.error("mailbox IDLE stopped: %s", outcome)
                    return
                wait = BACKOFF_MAX if isinstance(outcome, AuthFailed) else delay
                log.warning("mailbox IDLE: %s; reconnecting in %.0fs", outcome, wait)
                self._stop.wait(wait)
                delay = min(delay * 2, BACKOFF_MAX)
            finally:
                self.connected.clear()
                if client is not None:
                    self.channel.disconnect(client)

    def _watch(self, client: IMAPClient) -> None:
        self.channel.poll(client)  # what arrived while we were away (and replays after a crash)
        self.channel.state.set_status("ok", mode="idle")
        while not self._stop.is_set():
            client.idle()
            self.connected.set()
            self._idle_until_news(client)
            client.idle_done()
            self.connected.clear()
            if self._stop.is_set():
                return
            self.channel.poll(client)

    def _idle_until_news(self, client: IMAPClient) -> None:
        """Return on new mail, on a stop request, or when it is time to renew the IDLE."""
        started = time.monotonic()
        quick_empty = 0
        while not self._stop.is_set():
            left = self.config.idle_renew_seconds - (time.monotonic() - started)
            if left <= 0:
                return
            timeout = min(CHECK_SECONDS, left)
            asked = time.monotonic()
            responses = client.idle_check(timeout=timeout)
            # imapclient answers [] both on timeout and on a closed connection: a closed one answers at once
            quick_empty = quick_empty + 1 if not responses and time.monotonic() - asked < timeout / 2 else 0
            if quick_empty >= 3:
                raise NotReady("the IMAP connection was closed during IDLE")
            for response in responses:
                if response and response[0] == b"BYE":
                    raise NotReady("the IMAP server closed the IDLE connection")
                if len(response) >= 2 and response[1] == b"EXISTS":
                    return
