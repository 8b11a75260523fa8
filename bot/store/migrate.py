"""`dsarbot store migrate`: copy an embedded (TinyDB) data dir into PostgreSQL, audit trail and vault included.

The audit events are copied verbatim (sequence numbers and hashes), so the chain verifies on the
target exactly as it did on the source; the vault's files are copied still encrypted, so every
instance on the database needs the data dir's vault key (`vault.key`, as `DSARBOT_SERVICE__VAULT_KEY`).
The target must be empty: migrating twice would mix two histories.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.audit import FileAuditLog, PostgresAuditLog
from bot.config import load_config
from bot.store import StoreError, open_store

HELP = "copy the embedded store and audit trail into PostgreSQL"


def migrate(data_dir: str, target_url: str, audit_key: bytes | None = None) -> dict[str, int]:
    from psycopg.types.json import Jsonb

    source = open_store("", data_dir)
    target = open_store(target_url, data_dir)
    if target.collections():
        raise StoreError("the target database already holds dsarbot data; migrate into an empty database")
    source_audit = FileAuditLog(data_dir, key=audit_key)
    before = source_audit.verify()
    if not before.ok:
        raise StoreError(f"the source audit trail is broken at line {before.broken_line}: fix that first")
    counts: dict[str, int] = {}
    with target.transaction():
        for collection in source.collections():
            docs = [(key, source.get(collection, key)) for key in source.keys(collection)]
            for key, doc in docs:
                target.put(collection, key, doc)
            counts[collection] = len(docs)
    with target.pool.connection() as conn, conn.transaction():
        events = list(source_audit.events())
        for event in events:
            conn.execute("INSERT INTO dsarbot_audit (seq, event) VALUES (%s, %s)", (event["seq"], Jsonb(event)))
        seq, digest = source_audit._read_head()
        conn.execute("INSERT INTO dsarbot_documents (collection, key, doc) VALUES ('kv', 'audit_head', %s) "
                     "ON CONFLICT (collection, key) DO UPDATE SET doc = EXCLUDED.doc",
                     (Jsonb({"seq": seq, "hash": digest}),))
    counts["audit_events"] = len(events)
    counts["vault_files"] = _copy_vault(Path(data_dir) / "vault", target)
    after = PostgresAuditLog(target, key=audit_key).verify()
    if not after.ok:
        raise StoreError(f"the copied audit trail does not verify (line {after.broken_line}): {after.reason}")
    source.close()
    target.close()
    return counts


def _copy_vault(root: Path, target) -> int:  # noqa: ANN001 - a PostgresStore
    from bot.store.postgres_store import PostgresBlobs

    blobs = PostgresBlobs(target)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")) if root.is_dir() else []
    with target.transaction():
        for path in files:
            blobs.write(path.relative_to(root).as_posix(), path.read_bytes())
    return len(files)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store_command", choices=["migrate"])
    parser.add_argument("--to", required=True, metavar="POSTGRESQL_URL", help="the empty target database")
    parser.add_argument("--data-dir", help="the embedded data dir to copy (default: [service] data_dir)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = {"service": {"data_dir": args.data_dir}} if args.data_dir else None
    config = load_config(args.config, overrides=overrides)
    try:
        counts = migrate(str(config.data_path), args.to, config.audit.key.encode() or None)
    except StoreError as exc:
        print(f"dsarbot store migrate: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(counts, sort_keys=True))
    print("copied; set DSARBOT_STORE__URL to the new database and restart every instance", file=sys.stderr)
    return 0
