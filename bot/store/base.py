"""The store interface every backend implements (TinyDB embedded, PostgreSQL at scale).

Documents are JSON-able dicts kept in named collections under a string key. Callers never see
the backend: they read, write atomically (`update`, `transaction`), claim due work (`claim_due`)
and, when several instances share the store, serialise on a key (`get_for_update`) or on a named
piece of work (`exclusive`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any, Callable, Iterable

Doc = dict[str, Any]
Updater = Callable[[Doc | None], Doc | None]

#: Collections in use; a backend may create them lazily, this list documents them.
COLLECTIONS = (
    "cases",  # bot.models.Case documents, keyed by case id
    "messages",  # bot.models.Message documents, keyed by message id
    "refs",  # case ref -> case id, and dedupe keys (message-id, content hash) -> message id
    "outbox",  # side effects to run at least once (bot.outbox)
    "ignored",  # non-requests (auto-replies, bounces) recorded for an agent to see
    "kv",  # small state: mailbox UIDs, webhook dedupe, counters
)


class StoreError(RuntimeError):
    """The store cannot be opened or written (disk full, corrupt file beyond recovery, no database)."""


class StoreConflict(StoreError):
    """The transaction collided with another writer's (PostgreSQL chose it as a deadlock victim) and
    was rolled back whole: running it again is safe and will normally succeed."""


class Store(ABC):
    """A small document store. Every method is atomic on its own; `transaction` groups several."""

    @abstractmethod
    def get(self, collection: str, key: str) -> Doc | None: ...

    @abstractmethod
    def put(self, collection: str, key: str, doc: Doc) -> None:
        """Insert or replace."""

    @abstractmethod
    def insert_new(self, collection: str, key: str, doc: Doc) -> bool:
        """Insert unless the key exists; True when inserted. The primitive behind deduplication."""

    @abstractmethod
    def delete(self, collection: str, key: str) -> None: ...

    @abstractmethod
    def get_for_update(self, collection: str, key: str) -> Doc | None:
        """`get`, and inside a `transaction` keep every other writer of this key (`update`,
        `get_for_update`, in any process) waiting until the transaction ends. Also for keys that
        do not exist yet. The read-modify-write of a case, or the check-then-act of intake."""

    @abstractmethod
    def update(self, collection: str, key: str, fn: Updater) -> Doc | None:
        """Atomic read-modify-write: `fn` gets the current doc (or None) and returns the new one
        (None deletes). Returns what was written."""

    @abstractmethod
    def find(self, collection: str, where: dict[str, Any] | None = None) -> list[Doc]:
        """Documents whose top-level fields equal every value of `where`."""

    @abstractmethod
    def keys(self, collection: str) -> list[str]: ...

    @abstractmethod
    def transaction(self) -> AbstractContextManager["Store"]:
        """Group writes so that they all happen or none does (crash in the middle: none)."""

    @abstractmethod
    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the outermost transaction of this thread has committed (never if it
        rolls back); outside a transaction, now. For what must follow the data, never precede it
        (the audit event of a change). Every callback runs; the first error is raised after."""

    @abstractmethod
    def claim_due(self, collection: str, now_iso: str, worker: str, lease_until_iso: str, limit: int = 10) -> list[Doc]:
        """Claim up to `limit` documents with `status == "pending"`, `due_at <= now_iso` and no live
        lease (`lease_until` absent or `< now_iso`); set their lease to `worker` until `lease_until_iso`.

        Two workers never get the same document while its lease runs; an expired lease (a crashed
        worker) makes it claimable again, which gives at-least-once execution."""

    @abstractmethod
    def exclusive(self, name: str, wait: bool = True) -> AbstractContextManager[bool]:
        """Hold the named lock across threads, processes and (PostgreSQL) hosts: yields True while
        held; with `wait=False` yields False at once when someone else holds it. For work that one
        instance at a time must do (a mailbox pass, a purge); released if the holder dies."""

    @abstractmethod
    def collections(self) -> list[str]:
        """Names of the collections that hold documents (for copying a store)."""

    def count(self, collection: str) -> int:
        return len(self.keys(collection))

    def put_many(self, collection: str, docs: Iterable[tuple[str, Doc]]) -> None:
        with self.transaction() as tx:
            for key, doc in docs:
                tx.put(collection, key, doc)

    def close(self) -> None:
        """Release files and connections."""


def run_callbacks(callbacks: list[Callable[[], None]]) -> None:
    """Run them all, then raise the first error (for `after_commit`)."""
    first: BaseException | None = None
    for callback in callbacks:
        try:
            callback()
        except Exception as exc:  # noqa: BLE001 - the others must still run
            first = first or exc
    if first is not None:
        raise first
