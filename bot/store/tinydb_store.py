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
import hashlib
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from bot.store.base import Doc, Store, StoreError, Updater, run_callbacks

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
        self._after: list[Callable[[], None]] = []
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
        callbacks: list[Callable[[], None]] = []
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
                self._after = []
                self._storage.begin()
                try:
                    yield self
                    self._storage.commit()
                    callbacks = self._after
                except BaseException:
                    self._storage.rollback()
                    raise
                finally:
                    self._depth = 0
                    self._after = []
        run_callbacks(callbacks)  # committed, and the locks released

    def after_commit(self, callback: Callable[[], None]) -> None:
        with self._thread_lock:
            if self._depth:
                self._after.append(callback)
                return
        callback()

    def _raw(self, collection: str, write: bool = False) -> dict[str, Any]:
        """The collection as TinyDB keeps it in the file ({key: doc}); O(1) keyed access.

        TinyDB's Table API rebuilds the whole table dict on every write (O(n) per operation);
        inside our transactions we work on the storage's data directly and write the file once.
        """
        data = self._storage.read()
        if write:
            self._storage.write(data)  # marks the transaction dirty
            return data.setdefault(collection, {})
        return data.get(collection, {})

    # --- the Store interface ------------------------------------------------------------------
    def get(self, collection: str, key: str) -> Doc | None:
        with self.transaction():
            doc = self._raw(collection).get(key)
            return copy.deepcopy(doc) if doc is not None else None

    def put(self, collection: str, key: str, doc: Doc) -> None:
        with self.transaction():
            self._raw(collection, write=True)[key] = copy.deepcopy(doc)

    def insert_new(self, collection: str, key: str, doc: Doc) -> bool:
        with self.transaction():
            if key in self._raw(collection):
                return False
            self._raw(collection, write=True)[key] = copy.deepcopy(doc)
            return True

    def get_for_update(self, collection: str, key: str) -> Doc | None:
        return self.get(collection, key)  # a transaction here already excludes every other writer

    @contextmanager
    def exclusive(self, name: str, wait: bool = True) -> Iterator[bool]:
        # flock: separate opens conflict even within one process, so threads are covered too
        locks = self.data_dir / "locks"
        locks.mkdir(exist_ok=True)
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]
        with open(locks / f"{digest}.lock", "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def delete(self, collection: str, key: str) -> None:
        with self.transaction():
            if key in self._raw(collection):
                del self._raw(collection, write=True)[key]

    def update(self, collection: str, key: str, fn: Updater) -> Doc | None:
        with self.transaction():
            current = self._raw(collection).get(key)
            new = fn(copy.deepcopy(current) if current is not None else None)
            if new is None:
                if current is not None:
                    del self._raw(collection, write=True)[key]
                return None
            self._raw(collection, write=True)[key] = copy.deepcopy(new)
            return new

    def find(self, collection: str, where: dict[str, Any] | None = None) -> list[Doc]:
        with self.transaction():
            docs = self._raw(collection).values()
            if where:
                items = where.items()
                docs = [d for d in docs if all(d.get(k) == v for k, v in items)]
            return [copy.deepcopy(d) for d in docs]

    def keys(self, collection: str) -> list[str]:
        with self.transaction():
            return list(self._raw(collection))

    def collections(self) -> list[str]:
        with self.transaction():
            return sorted(name for name, docs in (self._storage.read() or {}).items() if docs)

    def count(self, collection: str) -> int:
        with self.transaction():
            return len(self._raw(collection))

    def claim_due(self, collection: str, now_iso: str, worker: str, lease_until_iso: str, limit: int = 10) -> list[Doc]:
        with self.transaction():
            raw = self._raw(collection)
            due = sorted((key for key, d in raw.items()
                          if d.get("status") == "pending" and d.get("due_at", "") <= now_iso
                          and (not d.get("lease_until") or d["lease_until"] < now_iso)),
                         key=lambda k: (raw[k].get("due_at", ""), k))[:limit]
            if not due:
                return []
            raw = self._raw(collection, write=True)
            for key in due:
                raw[key] = {**raw[key], "lease_until": lease_until_iso, "lease_worker": worker}
            return [copy.deepcopy(raw[key]) for key in due]

    def close(self) -> None:
        with self._thread_lock:
            self._db.close()
            self._lock_fh.close()

