"""The same store contract on both backends, and what only PostgreSQL must add (several instances)."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from bot.store import Store, open_store
from tests.servers.postgres import pg_url  # noqa: F401 - fixture

T0 = datetime(2026, 11, 25, 10, tzinfo=timezone.utc)


@pytest.fixture(params=["tinydb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = "" if request.param == "tinydb" else request.getfixturevalue("pg_url")
    s = open_store(url, tmp_path)
    yield s
    s.close()


def test_contract(store: Store) -> None:
    store.put("cases", "a", {"x": 1, "tags": ["a", "b"], "n": {"y": 1}})
    store.put("cases", "b", {"x": 2, "tags": ["a"]})
    assert store.get("cases", "a") == {"x": 1, "tags": ["a", "b"], "n": {"y": 1}}
    assert store.get("cases", "nope") is None
    assert store.find("cases", {"tags": ["a"]}) == [{"x": 2, "tags": ["a"]}]  # equality, not containment
    assert store.insert_new("cases", "a", {}) is False and store.insert_new("cases", "c", {"x": 3})
    assert store.update("cases", "c", lambda d: {**d, "x": 4}) == {"x": 4}
    store.delete("cases", "c")
    assert sorted(store.keys("cases")) == ["a", "b"] and store.count("cases") == 2
    with pytest.raises(ZeroDivisionError):
        with store.transaction():
            store.put("cases", "ghost", {})
            1 / 0
    assert store.get("cases", "ghost") is None


def test_concurrent_updates_lose_nothing(store: Store) -> None:
    def bump(_: int) -> None:
        store.update("kv", "counter", lambda d: {"n": (d or {"n": 0})["n"] + 1})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bump, range(200)))
    assert store.get("kv", "counter") == {"n": 200}


def test_get_for_update_serialises_check_then_act(store: Store) -> None:
    """Read, decide, write in one transaction: with the key held nobody interleaves (lost updates)."""
    def bump(_: int) -> None:
        with store.transaction():
            current = store.get_for_update("kv", "n") or {"n": 0}
            store.put("kv", "n", {"n": current["n"] + 1})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bump, range(100)))
    assert store.get("kv", "n") == {"n": 100}


def test_exclusive_is_held_by_one_at_a_time(store: Store) -> None:
    inside, most, order = [0], [0], []
    guard = threading.Lock()

    def work(i: int) -> None:
        with store.exclusive("mailbox:a@b:INBOX") as held:
            assert held
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.01)
            with guard:
                inside[0] -= 1
                order.append(i)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(12)))
    assert most[0] == 1 and len(order) == 12
    with store.exclusive("job:purge") as first:
        with ThreadPoolExecutor(1) as pool:  # another thread, like another instance, does not wait
            assert pool.submit(_held_briefly, store, "job:purge").result() is False
            assert pool.submit(_held_briefly, store, "job:other").result() is True
        assert first


def _held_briefly(store: Store, name: str) -> bool:
    with store.exclusive(name, wait=False) as held:
        return held


def test_claims_never_overlap(store: Store) -> None:
    for i in range(60):
        store.put("outbox", f"e{i:02}", {"status": "pending", "due_at": "2026-01-01"})

    def claim(worker: int) -> list[str]:
        got = []
        while batch := store.claim_due("outbox", "2026-02-01", f"w{worker}", "2026-02-01T01", limit=3):
            got += [d["lease_worker"] + ":" + str(d["due_at"]) for d in batch]
        return got

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(claim, range(4)))
    assert sum(len(r) for r in results) == 60


def test_postgres_audit_chain_stays_linear_with_concurrent_writers(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    from bot.audit import PostgresAuditLog

    store = open_store(pg_url, tmp_path)
    audit = PostgresAuditLog(store)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: audit.append(actor="system", action="open", at=T0, case_id=f"c{i}"), range(120)))
    assert audit.verify().ok and audit.verify().lines == 120
    with store.pool.connection() as conn:  # tamper: change one event
        conn.execute("UPDATE dsarbot_audit SET event = jsonb_set(event, '{actor}', '\"agent:mallory\"') WHERE seq = 57")
    result = audit.verify()
    assert not result.ok and result.broken_line == 57
    store.close()


def test_vault_contract(store: Store, tmp_path: Path) -> None:
    from bot.store.postgres_store import PostgresBlobs
    from bot.vault import Vault, VaultError

    blobs = PostgresBlobs(store) if hasattr(store, "pool") else None
    vault = Vault(tmp_path / "keys", blobs=blobs)
    vault.write("exports/c1/a_b.pdf", b"one")
    vault.write("exports/c1/sub/two.json", b"two")
    vault.write("exports/c10/x.pdf", b"other case")  # a sibling whose name starts the same
    vault.write("exports/c1_/y.pdf", b"LIKE's _ is literal")
    assert vault.read("exports/c1/a_b.pdf") == b"one" and vault.exists("exports/c1")
    assert vault.list("exports/c1") == ["exports/c1/a_b.pdf", "exports/c1/sub/two.json"]
    vault.delete("exports/c1")
    assert not vault.exists("exports/c1/a_b.pdf") and vault.list("exports/c1") == []
    assert vault.read("exports/c10/x.pdf") == b"other case" and vault.exists("exports/c1_/y.pdf")
    with pytest.raises(FileNotFoundError):
        vault.read("exports/c1/a_b.pdf")
    with pytest.raises(VaultError, match="leaves the vault"):
        vault.write("../outside", b"x")
    with pytest.raises(VaultError, match="wrong key"):
        Vault(tmp_path / "other-keys", blobs=vault.blobs).read("exports/c10/x.pdf")


def test_postgres_url_errors_are_clear(tmp_path: Path) -> None:
    from bot.store import StoreError

    with pytest.raises(StoreError, match="DSARBOT_STORE__URL"):
        open_store("postgresql://postgres@127.0.0.1:1/nope?connect_timeout=1", tmp_path)


def test_service_runs_on_postgres(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    from bot.config import load_config
    from bot.models import Person
    from bot.service import build_service

    config = load_config(None, environ={}, overrides={"service": {"data_dir": str(tmp_path)}, "store": {"url": pg_url}})
    service = build_service(config, now=lambda: T0)
    case = service.cases.open(received_at=T0, rights=["access"], language="fr", channel="email",
                              requester=Person(email="a@example.fr"))
    service.cases.transition(case.id, "dismiss", "agent:ana")
    assert [e["action"] for e in service.audit.events(case.id)] == ["open", "dismiss"]
    assert service.audit.verify().ok
    assert json.dumps(service.cases.get(case.id).to_doc())
    service.close()


def test_migrate_tinydb_to_postgres(pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    from bot.cli import main as cli_main
    from bot.config import load_config
    from bot.models import Person
    from bot.service import build_service

    config = load_config(None, environ={}, overrides={"service": {"data_dir": str(tmp_path)}})
    service = build_service(config, now=lambda: T0)
    refs = []
    for i in range(5):
        case = service.cases.open(received_at=T0, rights=["access"], language="fr", channel="email",
                                  requester=Person(email=f"p{i}@example.fr"))
        service.cases.transition(case.id, "request_identity", "system")
        refs.append(case.ref)
    service.component("vault").write("attachments/x/proof.pdf", b"%PDF-1.4 proof")
    service.close()
    assert cli_main(["store", "migrate", "--to", pg_url, "--data-dir", str(tmp_path)]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["cases"] == 5 and counts["audit_events"] == 10 and counts["vault_files"] == 1
    elsewhere = tmp_path / "other-instance"  # another instance, its own data dir, the same keys
    moved = build_service(load_config(None, environ={"DSARBOT_SERVICE__VAULT_KEY": (tmp_path / "vault.key").read_text()},
                                      overrides={"service": {"data_dir": str(elsewhere),
                                                             "secret_key": (tmp_path / "secret.key").read_text()},
                                                 "store": {"url": pg_url}}), now=lambda: T0)
    assert sorted(c.ref for c in moved.cases.all()) == sorted(refs)
    assert moved.component("vault").read("attachments/x/proof.pdf") == b"%PDF-1.4 proof"
    assert moved.audit.verify().ok
    moved.close()
    assert cli_main(["store", "migrate", "--to", pg_url, "--data-dir", str(tmp_path)]) == 1  # never twice


def test_postgres_deadlock_victim_raises_store_conflict_and_keeps_nothing(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    from bot.store import StoreConflict

    store = open_store(pg_url, tmp_path)
    both_hold_one = threading.Barrier(2)

    def cross(first: str, second: str) -> str:
        try:
            with store.transaction():
                store.get_for_update("kv", first)
                store.put("kv", f"by-{first}", {})
                both_hold_one.wait()
                store.get_for_update("kv", second)
            return "committed"
        except StoreConflict:
            return "conflict"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(cross, ["a", "b"], ["b", "a"]))
    assert outcomes == ["committed", "conflict"]
    assert len([k for k in store.keys("kv") if k.startswith("by-")]) == 1  # the victim's write rolled back
    store.close()
