"""The IMAP mailbox as a channel: fetch new mail, hand it to intake, and only then mark it done.

One pass (`poll`) selects the folder, reads its UIDVALIDITY, lists the UIDs after the last one
done plus those that failed before, and fetches them with `BODY.PEEK[]` (nothing is marked read by
fetching) and `INTERNALDATE` (the server's receipt time starts the legal clock, not the sender's
Date header). Each message is parsed, its attachments stored encrypted in the vault, and handed
to `Intake.receive`; only after that returns is it flagged `\\Seen`, or moved to the processed
folder. A crash in between replays the message at the next pass, and intake's dedupe turns the
replay into the same case. A message that fails intake stays unflagged and is retried at every
pass; after `max_failures` it goes to quarantine (an agent sees it) and is flagged `\\Flagged`.
"""
from __future__ import annotations

import imaplib
import logging
import socket
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from imapclient import DELETED, FLAGGED, SEEN, IMAPClient
from imapclient.exceptions import CapabilityError, LoginError

from bot.attachments import Limits, content_key, store_attachments, store_original
from bot.config import MailboxConfig
from bot.faults import checkpoint
from bot.intake import Intake
from bot.mailparse import parse_email
from bot.models import Message
from bot.store import Store
from bot.vault import Vault
from integrations.base import AuthFailed, IntegrationError, Misconfigured, NotReady
from integrations.mailbox.state import FolderState, MailboxState

log = logging.getLogger(__name__)

BATCH_BYTES = 16 * 1024 * 1024  # fetch several small messages per round trip, never too much at once
BATCH_COUNT = 100


def imap_outcome(exc: BaseException) -> IntegrationError:
    """Map what imapclient, imaplib, ssl and sockets raise to the three outcomes of integrations.base."""
    if isinstance(exc, IntegrationError):
        return exc
    if isinstance(exc, LoginError):
        return AuthFailed("the IMAP server refused the login: check [mailbox] username and password")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Misconfigured(f"the IMAP server's certificate is not trusted ({exc.verify_message}): "
                             "check [mailbox] host")
    if isinstance(exc, ssl.SSLError):
        return Misconfigured(f"TLS with the IMAP server failed ({exc.reason}): check [mailbox] port, ssl "
                             "and starttls (ssl for 993, starttls for 143)")
    if isinstance(exc, CapabilityError):
        return Misconfigured(f"the IMAP server lacks a needed capability: {exc}")
    if isinstance(exc, socket.gaierror):
        return NotReady(f"the IMAP host name does not resolve ({exc.strerror}): check [mailbox] host")
    if isinstance(exc, (OSError, imaplib.IMAP4.abort)):
        return NotReady(f"IMAP connection failed: {type(exc).__name__}: {exc}"[:300])
    if isinstance(exc, imaplib.IMAP4.error):
        return NotReady(f"IMAP command failed: {exc}"[:300])
    return NotReady(f"{type(exc).__name__}: {exc}"[:300])


def _announced_new_mail(client: IMAPClient) -> bool:
    """Whether the server announced EXISTS since the last call (and forget it).

    imaplib keeps untagged responses it was not asked for in `untagged_responses`; imapclient
    itself reads SELECT's answer from there.
    """
    return bool(client._imap.untagged_responses.pop("EXISTS", None))  # noqa: SLF001


def outcome_name(exc: IntegrationError) -> str:
    return {AuthFailed: "auth_failed", Misconfigured: "misconfigured"}.get(type(exc), "not_ready")


def mail_message(raw: bytes, received_at: datetime, vault: Vault, limits: Limits, *, headers_only: bool = False,
                 size: int = 0, size_limit: int = 0) -> Message:
    """Raw mail -> the Message intake receives: parsed, attachments encrypted in the vault, and the
    original kept when it could not be fully read. `headers_only`: only the headers were fetched
    (the mail is `size` bytes, over `size_limit`)."""
    parsed = parse_email(raw, channel="email", received_at=received_at)
    message = parsed.message
    key = content_key(raw)
    message.attachments = store_attachments(vault, key, parsed.attachments, limits)
    message.warnings = [*parsed.warnings, *(f"attachment {a.filename!r} ({a.size} bytes) not kept: over the "
                                            "[mailbox] attachment limits" for a in message.attachments if not a.path)]
    if headers_only:
        note = (f"the message is {size} bytes, over the {size_limit} byte limit "
                "([mailbox] max_message_bytes): only its headers were read; open it in the mailbox")
        message.parse_error = f"{message.parse_error}; {note}" if message.parse_error else note
    elif message.parse_error:
        message.attachments.append(store_original(vault, key, raw))
    return message


@dataclass
class PollResult:
    """What one pass did: intake outcomes by name, failures kept for retry, messages quarantined."""

    outcomes: Counter = field(default_factory=Counter)
    failed: int = 0
    quarantined: int = 0

    @property
    def delivered(self) -> int:
        return sum(self.outcomes.values())


class MailboxChannel:
    """Drives intake from one IMAP folder. One pass at a time per folder, across threads and instances."""

    name = "email"

    def __init__(self, config: MailboxConfig, intake: Intake, vault: Vault, store: Store,
                 now: Callable[[], datetime]) -> None:
        self.config = config
        self.intake = intake
        self.vault = vault
        self.now = now
        self.store = store
        self.limits = Limits(config.max_attachment_bytes, config.max_attachments)
        self.state = MailboxState(store, vault, f"{config.username}@{config.host}", config.folder, now)
        #: called with each UID right after its bytes were fetched, before intake (instrumentation, crash tests)
        self.after_fetch: list[Callable[[int], None]] = []
        self._lock = threading.Lock()

    # --- connection ------------------------------------------------------------------------------
    def connect(self) -> IMAPClient:
        cfg = self.config
        try:
            client = IMAPClient(cfg.host, cfg.port, ssl=cfg.ssl, timeout=cfg.timeout_seconds,
                                ssl_context=ssl.create_default_context() if cfg.ssl else None)
            client.normalise_times = False  # keep INTERNALDATE's zone: it starts the legal clock
            if cfg.starttls:
                client.starttls(ssl.create_default_context())
            client.login(cfg.username, cfg.password)
        except Exception as exc:  # noqa: BLE001 - mapped to auth failed / not ready / misconfigured
            raise imap_outcome(exc) from exc
        return client

    @staticmethod
    def disconnect(client: IMAPClient) -> None:
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            try:
                client.shutdown()
            except Exception:  # noqa: BLE001
                pass

    def check(self) -> str | None:
        """Startup check: log in, open the folder (and the processed folder). None when fine."""
        try:
            client = self.connect()
            try:
                self._select(client)
                folder = self.config.processed_folder
                if folder and not client.folder_exists(folder):
                    raise Misconfigured(f"processed folder {folder!r} does not exist: create it or fix "
                                        "[mailbox] processed_folder")
                mode = "idle" if self.config.use_idle and client.has_capability("IDLE") else "poll"
            finally:
                self.disconnect(client)
        except Exception as exc:  # noqa: BLE001
            outcome = imap_outcome(exc)
            self.state.set_status(outcome_name(outcome), str(outcome))
            return f"[mailbox] {outcome}"
        self.state.set_status("ok", mode=mode)
        return None

    # --- one pass --------------------------------------------------------------------------------
    def poll(self, client: IMAPClient | None = None, *, wait: bool = True) -> PollResult | None:
        """One pass over the folder, on `client` or a connection of its own. None when another pass
        (here or in another instance) was running and `wait` is false. Raises AuthFailed / NotReady /
        Misconfigured."""
        if not self._lock.acquire(blocking=wait):
            return None
        try:
            # one pass at a time per folder across instances too: each reads the last UID the
            # previous pass saved, so two instances never hand the same mail to intake at once
            with self.store.exclusive(self.state.key, wait=wait) as mine:
                if not mine:
                    return None
                if client is not None:
                    return self._poll(client)
                own = self.connect()
                try:
                    return self._poll(own)
                finally:
                    self.disconnect(own)
        finally:
            self._lock.release()

    def poll_job(self) -> None:
        """The scheduled safety net: a pass that reports connection trouble instead of raising."""
        try:
            result = self.poll(wait=False)
        except IntegrationError as exc:
            self.state.set_status(outcome_name(exc), str(exc))
            log.warning("mailbox poll: %s", exc)
            return
        if result is not None:
            self.state.set_status("ok")
            if result.delivered or result.failed:
                log.info("mailbox poll: %s, %d failed, %d quarantined", dict(result.outcomes), result.failed,
                         result.quarantined)

    def _select(self, client: IMAPClient) -> int:
        try:
            info = client.select_folder(self.config.folder)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise Misconfigured(f"folder {self.config.folder!r} cannot be opened ({exc}): check [mailbox] folder")
        return int(info[b"UIDVALIDITY"])

    def _poll(self, client: IMAPClient) -> PollResult:
        result = PollResult()
        try:
            state = self.state.load(self._select(client))
            _announced_new_mail(client)  # SELECT's own EXISTS
            retry = [int(uid) for uid in state.failing]
            while True:
                self._round(client, state, retry, result)
                retry = []
                # Mail arriving during a round is announced (EXISTS) in the answer to one of its
                # commands, never again: an IDLE entered now would not hear of it. Go round again.
                if not _announced_new_mail(client):
                    break
        except (imaplib.IMAP4.error, OSError) as exc:
            raise imap_outcome(exc) from exc
        return result

    def _round(self, client: IMAPClient, state: FolderState, retry: list[int], result: PollResult) -> None:
        new = [uid for uid in client.search(["UID", f"{state.last_uid + 1}:*"]) if uid > state.last_uid]
        uids = sorted(set(new) | set(retry))
        if not uids:
            return
        sizes = {uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in client.fetch(uids, ["RFC822.SIZE"]).items()}
        vanished = [uid for uid in retry if uid not in sizes]
        if vanished:
            self._vanished(state, vanished)
            self.state.save(state)
        for batch in self._batches(sizes):
            self._process_batch(client, state, batch, sizes, result)

    def _batches(self, sizes: dict[int, int]) -> list[list[int]]:
        batches: list[list[int]] = []
        current: list[int] = []
        total = 0
        for uid in sorted(sizes):
            size = min(sizes[uid], self.config.max_message_bytes)
            if current and (total + size > BATCH_BYTES or len(current) >= BATCH_COUNT):
                batches.append(current)
                current, total = [], 0
            current.append(uid)
            total += size
        if current:
            batches.append(current)
        return batches

    def _process_batch(self, client: IMAPClient, state: FolderState, batch: list[int], sizes: dict[int, int],
                       result: PollResult) -> None:
        big = [uid for uid in batch if sizes[uid] > self.config.max_message_bytes]
        small = [uid for uid in batch if uid not in big]
        fetched: dict[int, dict[bytes, Any]] = {}
        if small:
            fetched.update(client.fetch(small, ["BODY.PEEK[]", "INTERNALDATE"]))
        if big:
            fetched.update(client.fetch(big, ["BODY.PEEK[HEADER]", "INTERNALDATE"]))
        done: list[int] = []
        quarantined: list[int] = []
        for uid in batch:
            data = fetched.get(uid)
            if data is None:
                continue  # expunged meanwhile by someone else
            for hook in self.after_fetch:
                hook(uid)
            checkpoint("intake.fetched")
            outcome = self._deliver(state, uid, data, sizes[uid])
            checkpoint("intake.received")
            if outcome == "quarantined":
                quarantined.append(uid)
                result.quarantined += 1
            elif outcome == "failed":
                result.failed += 1
            else:
                done.append(uid)
                result.outcomes[outcome] += 1
        self._ack(client, done)
        if quarantined:
            client.add_flags(quarantined, [FLAGGED])  # visible to whoever reads the mailbox, still unread
        checkpoint("intake.acked")
        state.last_uid = max(state.last_uid, *batch)
        for uid in done:
            state.failing.pop(str(uid), None)
        self.state.save(state)

    def _deliver(self, state: FolderState, uid: int, data: dict[bytes, Any], size: int) -> str:
        """Intake's outcome for one message, or "failed" / "quarantined". Never raises."""
        raw = data.get(b"BODY[]")
        headers_only = raw is None
        if headers_only:
            raw = data.get(b"BODY[HEADER]") or b""
        received_at = data.get(b"INTERNALDATE")
        received_at = received_at.astimezone(timezone.utc) if isinstance(received_at, datetime) else self.now()
        message_id = ""
        try:
            message = mail_message(raw, received_at, self.vault, self.limits, headers_only=headers_only,
                                   size=size, size_limit=self.config.max_message_bytes)
            message_id = message.message_id
            return self.intake.receive(message).outcome
        except Exception as exc:  # noqa: BLE001 - one bad message must never stop the mailbox
            log.exception("mailbox uid %s: intake failed", uid)
            gone = self.state.failed(state, uid, f"{type(exc).__name__}: {exc}", None if headers_only else raw,
                                     self.config.max_failures, message_id)
            return "quarantined" if gone else "failed"

    def _vanished(self, state: FolderState, uids: list[int]) -> None:
        """Failing messages deleted upstream: quarantine the copy kept at their first failure."""
        for uid in uids:
            entry = state.failing[str(uid)]
            self.state.quarantine(state, uid, f"deleted from the mailbox after failing: {entry.get('error', '')}",
                                  entry)

    def _ack(self, client: IMAPClient, uids: list[int]) -> None:
        """The cases are committed: mark the messages done (\\Seen, or moved to the processed folder)."""
        if not uids:
            return
        client.add_flags(uids, [SEEN])
        folder = self.config.processed_folder
        if not folder:
            return
        try:
            if client.has_capability("MOVE"):
                client.move(uids, folder)
                return
            client.copy(uids, folder)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:  # e.g. NO [TRYCREATE]: the folder is missing
            raise Misconfigured(f"cannot move mail to processed folder {folder!r} ({exc}): create it or fix "
                                "[mailbox] processed_folder") from exc
        client.add_flags(uids, [DELETED])
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()  # without UIDPLUS this also expunges other \Deleted mail in the folder
