"""The audit trail: append-only JSON lines, each chained to the previous by a hash.

It proves to the CNIL what happened to each request, and that nobody rewrote history: changing,
removing or reordering a line breaks the chain, and the head file (last sequence number and hash,
replaced atomically on every append) catches a truncated tail. With `audit.key` configured the
chain is an HMAC, so someone who can edit the file cannot recompute it either.

Events carry ids and states only (no names, no addresses): the trail outlives the data it
describes, and erasure must not have to rewrite it.

A crash in the middle of an append (after its lines, before the head; or in the middle of a line)
is repaired by the next writer and by `recover()` at start, under the file lock: complete lines
that follow the head in the chain are adopted, an unfinished one is cut off (no append that
returned is ever lost). Anything else past the head is left alone for `verify` to report.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import threading
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

from bot.faults import checkpoint

GENESIS = "0" * 64
AUDIT_FILE = "audit.jsonl"
HEAD_FILE = "audit.head"


def _canonical(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chain_hash(event_without_hash: dict[str, Any], key: bytes | None) -> str:
    body = _canonical(event_without_hash)
    if key:
        return hmac.new(key, body, hashlib.sha256).hexdigest()
    return hashlib.sha256(body).hexdigest()


@dataclass
class VerifyResult:
    ok: bool
    lines: int
    broken_line: int | None = None  # 1-based line number of the first bad line
    reason: str = ""


class AuditLog(ABC):
    """Where audit events go. The file log is the embedded default; a database log can replace it."""

    def append(self, *, actor: str, action: str, at: datetime, case_id: str = "", case_ref: str = "",
               before: str = "", after: str = "", detail: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.append_many([dict(actor=actor, action=action, at=at, case_id=case_id, case_ref=case_ref,
                                      before=before, after=after, detail=detail)])[0]

    @abstractmethod
    def append_many(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append events (each the keyword arguments of `append`) in this order, in one go: one
        lock and one sync for a whole batch of changes (a drained batch of webhooks)."""

    @abstractmethod
    def events(self, case_id: str | None = None) -> Iterator[dict[str, Any]]: ...

    @abstractmethod
    def verify(self) -> VerifyResult: ...

    def recover(self) -> None:
        """On start, before reading: mend what a crash in the middle of an append left behind."""


class FileAuditLog(AuditLog):
    """Hash-chained JSON lines in the data directory, safe across threads and processes."""

    def __init__(self, data_dir: str | Path, key: bytes | None = None) -> None:
        self.path = Path(data_dir) / AUDIT_FILE
        self.head_path = Path(data_dir) / HEAD_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.key = key
        self._lock = threading.Lock()

    def recover(self) -> None:
        if self.path.exists():
            with self._locked() as fh:
                self._repair(fh)

    def _read_head(self) -> tuple[int, str]:
        seq, digest, _ = self._read_head_size()
        return seq, digest

    def _read_head_size(self) -> tuple[int, str, int | None]:
        """(seq, hash, size of the trail at that head); size is None in heads written before it was kept."""
        try:
            head = json.loads(self.head_path.read_text())
            return int(head["seq"]), str(head["hash"]), head.get("size")
        except FileNotFoundError:
            return 0, GENESIS, 0

    def _write_head(self, seq: int, digest: str, size: int) -> None:
        tmp = self.head_path.with_name(f"{HEAD_FILE}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"seq": seq, "hash": digest, "size": size}))
        os.replace(tmp, self.head_path)

    @contextmanager
    def _locked(self) -> Iterator[Any]:
        with self._lock, open(self.path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield fh
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _repair(self, fh: Any) -> tuple[int, str]:
        """The head, after repairing what a crash in the middle of an append left (see the module doc)."""
        seq, digest, size = self._read_head_size()
        end = os.fstat(fh.fileno()).st_size
        if size == end:
            return seq, digest
        start = size if size is not None and size <= end else _end_of_line(fh, end, seq, digest)
        if start is None:
            return seq, digest  # the head's line is not where a crash leaves it: for verify to report
        fh.seek(start)
        *complete, unfinished = fh.read(end - start).split(b"\n")
        adopted = start
        for line in complete:
            try:
                event = json.loads(line)
            except ValueError:
                return seq, digest
            if event.get("seq") != seq + 1 or event.get("prev") != digest or not _sealed(event, self.key):
                return seq, digest  # not what an interrupted append writes: leave it for verify to report
            seq, digest = event["seq"], event["hash"]  # written, but its head was not
            adopted += len(line) + 1
        if unfinished:  # a line cut in the middle: that append never returned
            os.ftruncate(fh.fileno(), adopted)
            os.fsync(fh.fileno())
        self._write_head(seq, digest, adopted)
        return seq, digest

    def append_many(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self._locked() as fh:
            seq, prev = self._repair(fh)
            events = []
            for entry in entries:
                event = new_event(seq + 1, prev, self.key, **_event_fields(entry))
                seq, prev = event["seq"], event["hash"]
                events.append(event)
            fh.write(b"".join(_canonical(event) + b"\n" for event in events))
            fh.flush()
            os.fsync(fh.fileno())
            if events:
                checkpoint("store.audit_line")
                self._write_head(seq, prev, fh.tell())
            return events

    def events(self, case_id: str | None = None) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                event = json.loads(line)
                if case_id is None or event.get("case") == case_id:
                    yield event

    def verify(self) -> VerifyResult:
        lines: Iterator[str] = iter(())
        if self.path.exists():
            lines = open(self.path, encoding="utf-8")
        try:
            return verify_chain(lines, self._read_head(), self.key)
        finally:
            getattr(lines, "close", lambda: None)()


def verify_chain(lines: Iterable[str], head: tuple[int, str], key: bytes | None) -> VerifyResult:
    """Check events given as JSON texts in trail order against each other and against the head."""
    prev, expected_seq, lineno = GENESIS, 1, 0
    for lineno, line in enumerate(lines, start=1):
        try:
            event = json.loads(line)
            claimed = event.pop("hash")
        except (ValueError, KeyError, AttributeError, TypeError):
            return VerifyResult(False, lineno, lineno, "not a valid audit event")
        if event.get("seq") != expected_seq:
            return VerifyResult(False, lineno, lineno, f"sequence {event.get('seq')} where {expected_seq} was "
                                                       "expected (a line was removed, added or moved)")
        if event.get("prev") != prev:
            return VerifyResult(False, lineno, lineno, "does not follow the previous line")
        if not hmac.compare_digest(chain_hash(event, key), str(claimed)):
            return VerifyResult(False, lineno, lineno, "content changed after it was written")
        prev, expected_seq = claimed, expected_seq + 1
    head_seq, head_hash = head
    if head_seq != expected_seq - 1 or head_hash != prev:
        return VerifyResult(False, lineno, lineno + 1 if head_seq > lineno else lineno,
                            f"the trail ends at line {lineno} but its head says {head_seq} "
                            "(lines were removed from the end)")
    return VerifyResult(True, lineno)


def _end_of_line(fh: Any, end: int, seq: int, digest: str, window: int = 1 << 20) -> int | None:
    """Where the line of event `seq` ends, for a head written before heads kept the trail's size:
    looked for in the last `window` bytes (an interrupted append adds far less)."""
    if seq == 0:
        return 0
    start = max(0, end - window)
    fh.seek(start)
    data = fh.read(end - start)
    offset = 0 if start == 0 else data.find(b"\n") + 1
    for line in data[offset:].split(b"\n"):
        offset += len(line) + 1
        if digest.encode() in line:  # this line as its hash, or the next one as its prev
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("seq") == seq and event.get("hash") == digest:
                return start + offset
    return None


def _sealed(event: dict[str, Any], key: bytes | None) -> bool:
    claimed = event.get("hash", "")
    body = {k: v for k, v in event.items() if k != "hash"}
    return hmac.compare_digest(chain_hash(body, key), str(claimed))


def _event_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `append`, defaults filled in, for new_event."""
    return {"actor": entry["actor"], "action": entry["action"], "at": entry["at"],
            "case_id": entry.get("case_id", ""), "case_ref": entry.get("case_ref", ""),
            "before": entry.get("before", ""), "after": entry.get("after", ""), "detail": entry.get("detail")}


def new_event(seq: int, prev: str, key: bytes | None, *, actor: str, action: str, at: datetime, case_id: str,
              case_ref: str, before: str, after: str, detail: dict[str, Any] | None) -> dict[str, Any]:
    event = {"seq": seq, "at": at.isoformat(), "actor": actor, "action": action, "case": case_id, "ref": case_ref,
             "before": before, "after": after, "detail": detail or {}, "prev": prev}
    event["hash"] = chain_hash(event, key)
    return event


class PostgresAuditLog(AuditLog):
    """The trail in PostgreSQL, for several instances: an advisory lock keeps the chain linear."""

    def __init__(self, store: Any, key: bytes | None = None) -> None:
        self.store = store  # a bot.store.postgres_store.PostgresStore: its pool and transactions
        self.key = key

    def append_many(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from psycopg.types.json import Jsonb

        from bot.store.postgres_store import AUDIT_LOCK

        if not entries:
            return []
        with self.store.connection() as conn:  # its own transaction, even inside a caller's
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
            head = conn.execute("SELECT doc FROM dsarbot_documents WHERE collection = 'kv' AND key = 'audit_head'")\
                .fetchone()
            seq, prev = (head[0]["seq"], head[0]["hash"]) if head else (0, GENESIS)
            events = []
            for entry in entries:
                event = new_event(seq + 1, prev, self.key, **_event_fields(entry))
                seq, prev = event["seq"], event["hash"]
                events.append(event)
            with conn.cursor() as cursor:
                cursor.executemany("INSERT INTO dsarbot_audit (seq, event) VALUES (%s, %s)",
                                   [(event["seq"], Jsonb(event)) for event in events])
            conn.execute("INSERT INTO dsarbot_documents (collection, key, doc) VALUES ('kv', 'audit_head', %s) "
                         "ON CONFLICT (collection, key) DO UPDATE SET doc = EXCLUDED.doc",
                         (Jsonb({"seq": seq, "hash": prev}),))
            return events

    def _rows(self) -> Iterator[dict[str, Any]]:
        with self.store.connection() as conn:
            for (event,) in conn.execute("SELECT event FROM dsarbot_audit ORDER BY seq"):
                yield event

    def events(self, case_id: str | None = None) -> Iterator[dict[str, Any]]:
        for event in self._rows():
            if case_id is None or event.get("case") == case_id:
                yield event

    def verify(self) -> VerifyResult:
        head = self.store.get("kv", "audit_head") or {"seq": 0, "hash": GENESIS}
        return verify_chain((json.dumps(e) for e in self._rows()), (head["seq"], head["hash"]), self.key)
