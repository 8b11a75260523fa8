"""The embedded default store: TinyDB in one data directory, hardened for real use.

TinyDB alone rewrites its JSON file in place and assumes one process. Here:
- every write goes to a temp file, is fsync'ed, renamed over the old file and the directory is
  fsync'ed, so the file on disk is always a complete old or new version (never half written);
- an exclusive `flock` on `store.lock` serialises processes (the service, the CLI, a second
  worker) and a re-entrant lock serialises threads;
- each operation re-reads the file only if another process changed it (inode/size/mtime);
- on start, leftover temp files from a crash are removed and an unreadable file is moved aside and
  replaced by the previous generation (`store.json.prev`), loudly.
"""
from __future__ import annotations

import copy
import fcntl
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from bot.store.base import Doc, Store, StoreError, Updater

log = logging.getLogger(__name__)

STORE_FILE = "store.json"
LOCK_FILE = "store.lock"


class _StrKeyTable(Table):
    """Documents keyed by our own string keys (case ids, message ids) instead of TinyDB's ints."""

    document_id_class = str

    def _get_next_id(self):  # pragma: no cover - every insert names its key
        raise StoreError("documents must be inserted with an explicit key")


class _StrKeyTinyDB(TinyDB):
    table_class = _StrKeyTable


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class AtomicJSONStorage(Storage):
    """TinyDB storage that writes atomically and buffers writes while a transaction is open."""

    def __init__(self, path: Path, fsync: bool = True) -> None:
        self.path = path
        self.prev_path = path.with_name(path.name + ".prev")
        self.fsync = fsync
        self._cache: dict[str, Any] | None = None
        self._cache_sig: tuple[int, int, int] | None = None
        self._dirty = False

    # --- called by TinyDB inside a transaction -------------------------------------------------
    def read(self) -> dict[str, Any] | None:
        if self._cache is None:
            self._load()
        return self._cache

    def write(self, data: dict[str, Any]) -> None:
        self._cache = data
        self._dirty = True

    # --- called by the store around each transaction ------------------------------------------
    def begin(self) -> None:
        if self._cache is not None and _signature(self.path) != self._cache_sig:
            self._cache = None  # another process wrote since we last read
        self._dirty = False

    def commit(self) -> None:
        if not self._dirty:
            return
        tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        payload = json.dumps(self._cache, separators=(",", ":"), ensure_ascii=False)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(payload)
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())
        if self.path.exists():
            # keep the previous generation: the recovery source if the disk ever mangles the file
            try:
                os.unlink(self.prev_path)
            except FileNotFoundError:
                pass
            os.link(self.path, self.prev_path)
        os.replace(tmp, self.path)
        if self.fsync:
            _fsync_dir(self.path.parent)
        self._cache_sig = _signature(self.path)
        self._dirty = False

    def rollback(self) -> None:
        self._cache = None
        self._cache_sig = None
        self._dirty = False

    def close(self) -> None:
        self._cache = None

    def _load(self) -> None:
        sig = _signature(self.path)
        if sig is None:
            self._cache, self._cache_sig = {}, None
            return
        with open(self.path, encoding="utf-8") as fh:
            text = fh.read()
        self._cache = json.loads(text) if text.strip() else {}
        self._cache_sig = sig


class TinyDBStore(Store):
    """Store backed by one TinyDB file in `data_dir`; safe across threads and processes."""

    def __init__(self, data_dir: str | Path, fsync: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.data_dir / LOCK_FILE, "a+")
        self._thread_lock = threading.RLock()
        self._depth = 0
        with self._process_lock():
            self._recover()
        self._storage_holder: list[AtomicJSONStorage] = []
        self._db = _StrKeyTinyDB(self.data_dir / STORE_FILE, storage=self._make_storage(fsync))
        self._storage = self._storage_holder[0]

    def _make_storage(self, fsync: bool):
        holder = self._storage_holder

        def factory(path: Path, **_: Any) -> AtomicJSONStorage:
            storage = AtomicJSONStorage(Path(path), fsync=fsync)
            holder.append(storage)
            return storage

        return factory

    # --- locking and recovery -----------------------------------------------------------------
    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)

    def _recover(self) -> None:
        """Run under the process lock before first use: clean up what a crash may have left."""
        path = self.data_dir / STORE_FILE
        for leftover in self.data_dir.glob(f"{STORE_FILE}.tmp-*"):
            leftover.unlink(missing_ok=True)
            log.warning("store recovery: removed an unfinished write (%s)", leftover.name)
        if not path.exists():
            return
        try:
            json.loads(path.read_text(encoding="utf-8") or "{}")
        except (ValueError, UnicodeDecodeError) as exc:
            prev = path.with_name(path.name + ".prev")
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            os.replace(path, aside)
            if prev.exists():
                os.link(prev, path)
                log.error("store recovery: %s unreadable (%s); restored previous generation, kept %s",
                          path.name, exc, aside.name)
            else:
                raise StoreError(f"{path} is unreadable and no previous generation exists; "
                                 f"it was moved to {aside.name}") from exc

    @contextmanager
    def transaction(self) -> Iterator["TinyDBStore"]:
        with self._thread_lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            with self._process_lock():
                self._depth = 1
                self._storage.begin()
                try:
                    yield self
                    self._storage.commit()
                except BaseException:
                    self._storage.rollback()
                    raise
                finally:
                    self._depth = 0

    def _table(self, collection: str) -> Table:
        return self._db.table(collection, cache_size=0)

    # --- the Store interface ------------------------------------------------------------------
    def get(self, collection: str, key: str) -> Doc | None:
        with self.transaction():
            doc = self._table(collection).get(doc_id=key)
            return copy.deepcopy(dict(doc)) if doc is not None else None

    def put(self, collection: str, key: str, doc: Doc) -> None:
        with self.transaction():
            self._table(collection).upsert(Document(copy.deepcopy(doc), doc_id=key))

    def insert_new(self, collection: str, key: str, doc: Doc) -> bool:
        with self.transaction():
            table = self._table(collection)
            if table.contains(doc_id=key):
                return False
            table.upsert(Document(copy.deepcopy(doc), doc_id=key))
            return True

    def delete(self, collection: str, key: str) -> None:
        with self.transaction():
            table = self._table(collection)
            if table.contains(doc_id=key):
                table.remove(doc_ids=[key])

    def update(self, collection: str, key: str, fn: Updater) -> Doc | None:
        with self.transaction():
            table = self._table(collection)
            current = table.get(doc_id=key)
            new = fn(copy.deepcopy(dict(current)) if current is not None else None)
            if new is None:
                if current is not None:
                    table.remove(doc_ids=[key])
                return None
            table.upsert(Document(copy.deepcopy(new), doc_id=key))
            return new

    def find(self, collection: str, where: dict[str, Any] | None = None) -> list[Doc]:
        with self.transaction():
            table = self._table(collection)
            docs = table.search(Query().fragment(where)) if where else table.all()
            return [copy.deepcopy(dict(d)) for d in docs]

    def keys(self, collection: str) -> list[str]:
        with self.transaction():
            return [str(d.doc_id) for d in self._table(collection).all()]

    def collections(self) -> list[str]:
        with self.transaction():
            return sorted(self._db.tables())

    def count(self, collection: str) -> int:
        with self.transaction():
            return len(self._table(collection))

    def claim_due(self, collection: str, now_iso: str, worker: str, lease_until_iso: str, limit: int = 10) -> list[Doc]:
        with self.transaction():
            table = self._table(collection)

            def claimable(doc: dict[str, Any]) -> bool:
                return (doc.get("status") == "pending" and doc.get("due_at", "") <= now_iso
                        and (not doc.get("lease_until") or doc["lease_until"] < now_iso))

            due = sorted((d for d in table.all() if claimable(d)),
                         key=lambda d: (d.get("due_at", ""), str(d.doc_id)))[:limit]
            claimed = []
            for doc in due:
                new = copy.deepcopy(dict(doc))
                new["lease_until"], new["lease_worker"] = lease_until_iso, worker
                table.upsert(Document(new, doc_id=doc.doc_id))
                claimed.append(copy.deepcopy(new))
            return claimed

    def close(self) -> None:
        with self._thread_lock:
            self._db.close()
            self._lock_fh.close()

