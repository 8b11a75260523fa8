"""The PostgreSQL store, for several instances on one database (selected by `store.url`).

Same interface as the embedded store. Documents live in one table as JSONB; the fields work is
claimed on (`status`, `due_at`) are generated columns with an index, and claiming uses
`SELECT ... FOR UPDATE SKIP LOCKED` so two instances never take the same effect while its lease
runs. Read-modify-write (`update`, `get_for_update`) takes a transaction-scoped advisory lock on the
key, which also covers keys that do not exist yet; `exclusive` is a session-level advisory lock on
a connection of its own, released by PostgreSQL if the instance dies. Schema changes are numbered
migrations applied once, under a lock.

A database restart is not seen by callers: pooled connections that died while idle fail at BEGIN,
before any work, and are replaced (`connection`); statements that can run twice without harm
(reads, upserts, deletes) are run once more if their connection dies under them. A transaction
that was under way when the database went away fails: its caller retries it (the outbox, the
mailbox and the web requests all do).
"""
from __future__ import annotations

import functools
import threading
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator, TypeVar

import psycopg
import psycopg.errors
from psycopg import Connection
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from bot.store.base import Doc, Store, StoreConflict, StoreError, Updater, run_callbacks

MIGRATIONS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS dsarbot_documents (
        collection text NOT NULL,
        key text NOT NULL,
        doc jsonb NOT NULL,
        status text GENERATED ALWAYS AS (doc->>'status') STORED,
        due_at text GENERATED ALWAYS AS (doc->>'due_at') STORED,
        PRIMARY KEY (collection, key)
    );
    CREATE INDEX IF NOT EXISTS dsarbot_documents_work ON dsarbot_documents (collection, status, due_at);
    CREATE INDEX IF NOT EXISTS dsarbot_documents_doc ON dsarbot_documents USING gin (doc jsonb_path_ops);
    """,
    """
    CREATE TABLE IF NOT EXISTS dsarbot_audit (
        seq bigint PRIMARY KEY,
        event jsonb NOT NULL
    );
    """,
    """
    CREATE TABLE IF NOT EXISTS dsarbot_vault (
        path text PRIMARY KEY,
        data bytea NOT NULL
    );
    """,
]

_MIGRATION_LOCK = 7_146_201  # advisory lock ids: arbitrary constants private to dsarbot
AUDIT_LOCK = 7_146_202


def migrate(conn: Connection) -> int:
    """Apply missing migrations; returns the schema version. Safe to run from several instances."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS dsarbot_schema (version int NOT NULL)")
        row = conn.execute("SELECT max(version) FROM dsarbot_schema").fetchone()
        current = row[0] or 0
        for version, sql in enumerate(MIGRATIONS, start=1):
            if version > current:
                conn.execute(sql)
                conn.execute("INSERT INTO dsarbot_schema (version) VALUES (%s)", (version,))
        return len(MIGRATIONS)


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _twice_if_cut(method: _Method) -> _Method:
    """For statements that can run twice without harm: if the connection dies under it (the database
    restarted), run it once more on a fresh one. Not inside a caller's transaction: that one failed."""
    @functools.wraps(method)
    def run(self: "PostgresStore", *args: Any, **kwargs: Any) -> Any:
        if getattr(self._local, "conn", None) is not None:
            return method(self, *args, **kwargs)
        try:
            return method(self, *args, **kwargs)
        except psycopg.OperationalError:
            self.pool.check()
            return method(self, *args, **kwargs)

    return run  # type: ignore[return-value]


class PostgresStore(Store):
    """Store on PostgreSQL; thread-safe, and safe across processes and hosts."""

    def __init__(self, url: str, pool_size: int = 8) -> None:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:  # fail fast, then migrate
                migrate(conn)
            self.pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=True,
                                       kwargs={"autocommit": True}, timeout=30)
        except Exception as exc:  # psycopg raises several kinds; say what and where
            raise StoreError(f"cannot open the PostgreSQL store ({type(exc).__name__}: {exc}); "
                             "check store.url / DSARBOT_STORE__URL") from exc
        self._local = threading.local()

    # --- connections and transactions ----------------------------------------------------------
    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A pooled connection in a transaction of its own (committed at the end, rolled back on error).

        A connection that died while idle in the pool (the database restarted, or an administrator
        ended it) fails at BEGIN, before any work: it is dropped, the pool checks the others, and a
        fresh one is used."""
        for attempt in range(2):
            opening = ExitStack()
            conn = opening.enter_context(self.pool.connection())
            try:
                opening.enter_context(conn.transaction())
            except psycopg.OperationalError:
                opening.close()  # the pool discards the broken connection
                if attempt:
                    raise
                self.pool.check()
                continue
            with opening:
                yield conn
            return

    @contextmanager
    def _conn(self) -> Iterator[Connection]:
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        self._local.after = []
        try:
            with self.connection() as conn:
                self._local.conn = conn
                try:
                    yield conn
                finally:
                    self._local.conn = None
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
            self._local.after = []
            raise StoreConflict(f"rolled back after colliding with another writer ({exc.sqlstate})") from exc
        except BaseException:
            self._local.after = []
            raise
        callbacks, self._local.after = self._local.after, []
        run_callbacks(callbacks)

    def after_commit(self, callback: Callable[[], None]) -> None:
        if getattr(self._local, "conn", None) is not None:
            self._local.after.append(callback)
        else:
            callback()

    @contextmanager
    def transaction(self) -> Iterator["PostgresStore"]:
        with self._conn():
            yield self

    # --- the Store interface -------------------------------------------------------------------
    @_twice_if_cut
    def get(self, collection: str, key: str) -> Doc | None:
        with self._conn() as conn:
            row = conn.execute("SELECT doc FROM dsarbot_documents WHERE collection = %s AND key = %s",
                               (collection, key)).fetchone()
            return row[0] if row else None

    @_twice_if_cut
    def put(self, collection: str, key: str, doc: Doc) -> None:
        with self._conn() as conn:
            conn.execute("INSERT INTO dsarbot_documents (collection, key, doc) VALUES (%s, %s, %s) "
                         "ON CONFLICT (collection, key) DO UPDATE SET doc = EXCLUDED.doc",
                         (collection, key, Jsonb(doc)))

    def insert_new(self, collection: str, key: str, doc: Doc) -> bool:
        with self._conn() as conn:
            row = conn.execute("INSERT INTO dsarbot_documents (collection, key, doc) VALUES (%s, %s, %s) "
                               "ON CONFLICT (collection, key) DO NOTHING RETURNING 1",
                               (collection, key, Jsonb(doc))).fetchone()
            return row is not None

    @_twice_if_cut
    def delete(self, collection: str, key: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM dsarbot_documents WHERE collection = %s AND key = %s", (collection, key))

    def get_for_update(self, collection: str, key: str) -> Doc | None:
        with self._conn() as conn:
            # the advisory lock covers a key with no row yet; the row lock makes claim_due (which
            # takes row locks only) skip the document meanwhile, or wait for it and read it anew
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{collection}\x1f{key}",))
            row = conn.execute("SELECT doc FROM dsarbot_documents WHERE collection = %s AND key = %s FOR UPDATE",
                               (collection, key)).fetchone()
            return row[0] if row else None

    @contextmanager
    def exclusive(self, name: str, wait: bool = True) -> Iterator[bool]:
        lock = "SELECT pg_advisory_lock(hashtextextended(%s, 1))" if wait else \
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 1))"
        with ExitStack() as opening:
            conn = opening.enter_context(self.pool.connection())  # autocommit: the lock belongs to the session
            try:
                held = conn.execute(lock, (name,)).fetchone()[0] is not False
            except psycopg.OperationalError:  # died while idle in the pool (a restart): take a fresh one
                opening.close()
                self.pool.check()
                conn = opening.enter_context(self.pool.connection())
                held = conn.execute(lock, (name,)).fetchone()[0] is not False
            if not held:
                yield False
                return
            try:
                yield True
            finally:
                try:
                    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 1))", (name,))
                except psycopg.Error:
                    conn.close()  # a lost session lost its locks; never hand the pool a holder

    def update(self, collection: str, key: str, fn: Updater) -> Doc | None:
        with self._conn() as conn:
            new = fn(self.get_for_update(collection, key))
            if new is None:
                self.delete(collection, key)
            else:
                self.put(collection, key, new)
            return new

    @_twice_if_cut
    def find(self, collection: str, where: dict[str, Any] | None = None) -> list[Doc]:
        with self._conn() as conn:
            if where:
                rows = conn.execute("SELECT doc FROM dsarbot_documents WHERE collection = %s AND doc @> %s "
                                    "ORDER BY key", (collection, Jsonb(where))).fetchall()
                # containment is wider than equality for lists and objects: keep exact matches only
                return [r[0] for r in rows if all(r[0].get(k) == v for k, v in where.items())]
            rows = conn.execute("SELECT doc FROM dsarbot_documents WHERE collection = %s ORDER BY key",
                                (collection,)).fetchall()
            return [r[0] for r in rows]

    @_twice_if_cut
    def keys(self, collection: str) -> list[str]:
        with self._conn() as conn:
            rows = conn.execute("SELECT key FROM dsarbot_documents WHERE collection = %s ORDER BY key",
                                (collection,)).fetchall()
            return [r[0] for r in rows]

    @_twice_if_cut
    def collections(self) -> list[str]:
        with self._conn() as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT collection FROM dsarbot_documents ORDER BY 1")]

    @_twice_if_cut
    def count(self, collection: str) -> int:
        with self._conn() as conn:
            return conn.execute("SELECT count(*) FROM dsarbot_documents WHERE collection = %s",
                                (collection,)).fetchone()[0]

    def claim_due(self, collection: str, now_iso: str, worker: str, lease_until_iso: str, limit: int = 10) -> list[Doc]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT key, doc FROM dsarbot_documents WHERE collection = %s AND status = 'pending' "
                "AND due_at <= %s AND (doc->>'lease_until' IS NULL OR doc->>'lease_until' < %s) "
                "ORDER BY due_at, key LIMIT %s FOR UPDATE SKIP LOCKED",
                (collection, now_iso, now_iso, limit)).fetchall()
            claimed = []
            for key, doc in rows:
                doc = {**doc, "lease_until": lease_until_iso, "lease_worker": worker}
                conn.execute("UPDATE dsarbot_documents SET doc = %s WHERE collection = %s AND key = %s",
                             (Jsonb(doc), collection, key))
                claimed.append(doc)
            return claimed

    def close(self) -> None:
        self.pool.close()



class PostgresBlobs:
    """The vault's encrypted files in the database (bot.vault.Blobs): every instance sees them all.

    Writes join the calling thread's store transaction, if any."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def write(self, path: str, data: bytes) -> None:
        with self.store._conn() as conn:  # noqa: SLF001 - the same transaction as the store's writes
            conn.execute("INSERT INTO dsarbot_vault (path, data) VALUES (%s, %s) "
                         "ON CONFLICT (path) DO UPDATE SET data = EXCLUDED.data", (path, data))

    def read(self, path: str) -> bytes:
        with self.store._conn() as conn:  # noqa: SLF001
            row = conn.execute("SELECT data FROM dsarbot_vault WHERE path = %s", (path,)).fetchone()
        if row is None:
            raise FileNotFoundError(path)
        return bytes(row[0])

    def exists(self, path: str) -> bool:
        with self.store._conn() as conn:  # noqa: SLF001
            return conn.execute("SELECT 1 FROM dsarbot_vault WHERE path = %s OR path LIKE %s LIMIT 1",
                                (path, _under(path))).fetchone() is not None

    def delete(self, path: str) -> None:
        with self.store._conn() as conn:  # noqa: SLF001
            conn.execute("DELETE FROM dsarbot_vault WHERE path = %s OR path LIKE %s", (path, _under(path)))

    def list(self, folder: str) -> list[str]:
        with self.store._conn() as conn:  # noqa: SLF001
            rows = conn.execute("SELECT path FROM dsarbot_vault WHERE path LIKE %s ORDER BY path",
                                (_under(folder),)).fetchall()
        return [r[0] for r in rows if not r[0].rsplit("/", 1)[-1].startswith(".")]


def _under(folder: str) -> str:
    """A LIKE pattern for everything inside `folder` (its own % and _ taken literally)."""
    return folder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
