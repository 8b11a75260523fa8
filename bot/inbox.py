"""The webhook inbox: a delivery is made durable by one fsync'ed append before we answer 200.

Why not the store: the embedded TinyDB store rewrites its whole file on every write (measured on
the 2-core box: ~370 writes/s on an empty store, 36/s at 4,000 1.5 kB documents, 3/s at 30 MB), so
one store write per webhook cannot keep up with a helpdesk's bursts, while an append to this
journal costs one write and one fsync (~7,000/s). A drain (one process at a time) later turns entries into cases, in batches, and records how
far it got (`cursor.json`); a crash replays from there and intake's deduplication makes a replay
harmless. The PostgreSQL store can later take this role (an INSERT is an append there).

Deduplication at the door: an entry may carry a `dedupe_key` (the same for every retry of one
delivery: answered "duplicate") and a `replay_key` (the same when the very same signed request is
sent again: answered "replay"). Both are remembered `window_seconds`, across processes (each
appender reads what the others appended, under the lock). Segments (one file per
`segment_seconds`) are deleted once drained and older than the window: payloads are personal data.
"""
from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

CURSOR = "cursor.json"


@dataclass
class InboxEntry:
    segment: str
    offset: int  # where the line starts
    end: int  # where the next line starts
    source: str
    at: str
    headers: dict[str, str]
    body: bytes


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Inbox:
    """Append-only, fsync'ed journal of webhook deliveries in `<data_dir>/inbox/`."""

    def __init__(self, directory: str | Path, now: Callable[[], datetime], *, window_seconds: float = 900,
                 segment_seconds: int = 300) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.now = now
        self.window = window_seconds
        self.segment_seconds = segment_seconds
        self._lock = threading.Lock()
        self._lock_fh = open(self.dir / "inbox.lock", "a+")
        self._drain_fh = open(self.dir / "drain.lock", "a+")
        self._seen: dict[str, float] = {}  # key -> when (epoch seconds)
        self.last_append: datetime | None = None  # by this process: its drain yields while the door is busy
        self._indexed: dict[str, int] = {}  # segment -> bytes already read into _seen

    # --- appending --------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)

    def _segments(self) -> list[str]:
        return sorted(p.name for p in self.dir.glob("*.jsonl"))

    def append(self, source: str, body: bytes, headers: dict[str, str] | None = None, *,
               dedupe_key: str | None = None, replay_key: str | None = None) -> str:
        """Durably keep one delivery: "accepted", or "duplicate" / "replay" (then nothing is kept)."""
        now = self.now()
        stamp = now.timestamp()
        with self._locked():
            self._catch_up(stamp)
            if dedupe_key and dedupe_key in self._seen:
                return "duplicate"
            if replay_key and replay_key in self._seen:
                return "replay"
            keys = [k for k in (dedupe_key, replay_key) if k]
            line = (json.dumps({"at": now.isoformat(), "source": source, "headers": headers or {}, "keys": keys,
                                "body": base64.b64encode(body).decode("ascii")}, separators=(",", ":")) + "\n").encode()
            name = f"{int(stamp) // self.segment_seconds * self.segment_seconds:012d}.jsonl"
            path = self.dir / name
            created = not path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                size = os.fstat(fd).st_size
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.dir)
            if self._indexed.get(name, 0) == size:
                self._indexed[name] = size + len(line)
            for key in keys:
                self._seen[key] = stamp
            self.last_append = now
            return "accepted"

    def _catch_up(self, stamp: float) -> None:
        """Index what other processes appended; cut a line torn by a writer that died mid-append."""
        for name in self._segments():
            path = self.dir / name
            size = path.stat().st_size
            start = self._indexed.get(name, 0)
            if start >= size:
                continue
            with open(path, "rb+") as fh:
                fh.seek(start)
                data = fh.read()
                complete = data.rfind(b"\n") + 1
                if complete < len(data):  # we hold the lock: the writer of this tail is gone
                    fh.truncate(start + complete)
                    log.warning("inbox: cut %d bytes of an unfinished append in %s", len(data) - complete, name)
            for raw in data[:complete].splitlines():
                try:
                    record = json.loads(raw)
                    when = datetime.fromisoformat(record["at"]).timestamp()
                except (ValueError, KeyError):
                    continue
                for key in record.get("keys", []):
                    self._seen[key] = when
            self._indexed[name] = start + complete
        horizon = stamp - self.window
        for key in [k for k, when in self._seen.items() if when < horizon]:
            del self._seen[key]
        live = set(self._segments())
        for name in [n for n in self._indexed if n not in live]:
            del self._indexed[name]

    # --- draining ---------------------------------------------------------------------------------
    @contextmanager
    def draining(self) -> Iterator[bool]:
        """Yields True for the one process that may drain now, False for the others."""
        try:
            fcntl.flock(self._drain_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(self._drain_fh.fileno(), fcntl.LOCK_UN)

    def _cursor(self) -> tuple[str, int]:
        try:
            data = json.loads((self.dir / CURSOR).read_text())
            return str(data["segment"]), int(data["offset"])
        except (FileNotFoundError, ValueError, KeyError):
            return "", 0

    def pending(self, limit: int = 100) -> list[InboxEntry]:
        """Entries not yet acknowledged, oldest first (read under the lock: only complete appends)."""
        segment, offset = self._cursor()
        entries: list[InboxEntry] = []
        with self._locked():
            for name in self._segments():
                if name < segment:
                    continue
                path = self.dir / name
                start = offset if name == segment else 0
                if start > path.stat().st_size:
                    start = 0  # the cursor outlived a lost tail: replaying is safe, skipping is not
                with open(path, "rb") as fh:
                    fh.seek(start)
                    position = start
                    for raw in fh:
                        if not raw.endswith(b"\n"):
                            break
                        entries.append(self._entry(name, position, raw))
                        position += len(raw)
                        if len(entries) >= limit:
                            return entries
        return entries

    @staticmethod
    def _entry(segment: str, offset: int, raw: bytes) -> InboxEntry:
        try:
            record: dict[str, Any] = json.loads(raw)
            body = base64.b64decode(record.get("body", ""))
        except ValueError:
            record, body = {}, raw
        return InboxEntry(segment, offset, offset + len(raw), str(record.get("source", "")), str(record.get("at", "")),
                          dict(record.get("headers") or {}), body)

    def ack(self, entry: InboxEntry) -> None:
        """Everything up to and including `entry` is handled."""
        tmp = self.dir / f"{CURSOR}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps({"segment": entry.segment, "offset": entry.end}))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.dir / CURSOR)
        self._compact(entry.segment)

    def _compact(self, current: str) -> None:
        horizon = self.now().timestamp() - self.window - self.segment_seconds
        for name in self._segments():
            if name < current and int(name.split(".")[0]) < horizon:
                (self.dir / name).unlink(missing_ok=True)

    def backlog(self) -> int:
        return len(self.pending(limit=10 ** 9))

    def close(self) -> None:
        self._lock_fh.close()
        self._drain_fh.close()
