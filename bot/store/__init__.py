"""Persistence behind one interface: `open_store(url_or_dir)` picks the backend."""
from __future__ import annotations

from pathlib import Path

from bot.store.base import COLLECTIONS, Doc, Store, StoreConflict, StoreError

__all__ = ["COLLECTIONS", "Doc", "Store", "StoreConflict", "StoreError", "open_store"]


def open_store(url: str, data_dir: str | Path) -> Store:
    """`url` empty or `tinydb://` -> embedded TinyDB in `data_dir`; `postgresql://...` -> PostgreSQL."""
    if not url or url.startswith("tinydb:"):
        from bot.store.tinydb_store import TinyDBStore

        return TinyDBStore(data_dir)
    if url.startswith(("postgresql:", "postgres:")):
        try:
            from bot.store.postgres_store import PostgresStore  # type: ignore[import-not-found]
        except ImportError as exc:  # pragma: no cover - until the PostgreSQL backend lands
            raise StoreError("the PostgreSQL store is not installed in this build") from exc
        return PostgresStore(url)
    raise StoreError(f"store.url {url!r}: use tinydb:// (embedded) or postgresql://user@host/db")
