"""The embedded store: atomic writes, locking across processes, recovery after SIGKILL."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from bot.store import StoreError, open_store
from bot.store.tinydb_store import STORE_FILE, TinyDBStore
from tests.shared import REPO

WRITER = textwrap.dedent("""
    import sys, json
    from bot.store import open_store
    store = open_store("", sys.argv[1])
    i = int(sys.argv[2])
    while True:
        with store.transaction():
            store.put("cases", f"case-{i}", {"n": i, "payload": "x" * 200, "nested": {"i": i}})
            store.put("outbox", f"effect-{i}", {"status": "pending", "due_at": "2026", "case": f"case-{i}"})
        print(i, flush=True)  # the write returned: it must survive any kill from now on
        i += 1
""")


def test_basic_operations(tmp_path: Path) -> None:
    store = open_store("", tmp_path)
    store.put("cases", "a", {"x": 1, "n": {"y": [1, 2]}})
    doc = store.get("cases", "a")
    doc["n"]["y"].append(3)  # callers get copies: mutating them changes nothing stored
    assert store.get("cases", "a") == {"x": 1, "n": {"y": [1, 2]}}
    assert store.insert_new("cases", "a", {}) is False
    assert store.insert_new("cases", "b", {"x": 2}) is True
    assert store.find("cases", {"x": 2}) == [{"x": 2}]
    assert sorted(store.keys("cases")) == ["a", "b"]
    assert store.update("cases", "a", lambda d: {**d, "x": 5})["x"] == 5
    assert store.update("cases", "zz", lambda d: None) is None
    store.delete("cases", "b")
    assert store.count("cases") == 1


def test_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    store = open_store("", tmp_path)
    store.put("cases", "kept", {"v": 1})
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put("cases", "lost", {"v": 2})
            store.put("cases", "kept", {"v": 3})
            raise RuntimeError("crash in the middle")
    assert store.get("cases", "lost") is None
    assert store.get("cases", "kept") == {"v": 1}


def test_claim_due_gives_each_document_to_one_worker(tmp_path: Path) -> None:
    store = open_store("", tmp_path)
    for i in range(5):
        store.put("outbox", f"e{i}", {"status": "pending", "due_at": f"2026-01-0{i + 1}"})
    store.put("outbox", "later", {"status": "pending", "due_at": "2027-01-01"})
    store.put("outbox", "done", {"status": "done", "due_at": "2026-01-01"})
    first = store.claim_due("outbox", "2026-06-01", "w1", "2026-06-01T00:02", limit=3)
    second = store.claim_due("outbox", "2026-06-01", "w2", "2026-06-01T00:02", limit=10)
    assert [d["due_at"] for d in first] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert len(second) == 2 and not {id(d) for d in first} & {id(d) for d in second}
    assert store.claim_due("outbox", "2026-06-01T00:01", "w3", "x", limit=10) == []
    # the lease ran out (worker crashed): claimable again
    assert len(store.claim_due("outbox", "2026-06-01T00:03", "w3", "2026-06-01T00:05", limit=10)) == 5


def _hammer(data_dir: str, worker: int) -> None:
    store = open_store("", data_dir)
    for i in range(40):
        store.update("kv", "counter", lambda d: {"n": (d or {"n": 0})["n"] + 1})
        store.put("cases", f"w{worker}-{i}", {"w": worker})


def test_processes_never_lose_each_others_writes(tmp_path: Path) -> None:
    with ProcessPoolExecutor(max_workers=4) as pool:
        list(pool.map(_hammer, [str(tmp_path)] * 4, range(4)))
    store = open_store("", tmp_path)
    assert store.get("kv", "counter") == {"n": 160}
    assert store.count("cases") == 160


def test_sigkill_at_twenty_random_moments(tmp_path: Path) -> None:
    """A process writing cases in a loop is killed 20 times: every returned write survives."""
    rng = random.Random(20261125)
    confirmed: set[int] = set()
    next_index = 0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(next_index)],
                                stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
        first = proc.stdout.readline()  # started and wrote at least once
        assert first.strip(), "writer did not start"
        confirmed.add(int(first))
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        confirmed.update(int(line) for line in out.split())
        # reopen after every kill: recovery must always succeed
        store = TinyDBStore(tmp_path)
        keys = set(store.keys("cases"))
        missing = [i for i in confirmed if f"case-{i}" not in keys]
        assert not missing, f"writes that had returned were lost: {missing[:5]}"
        for i in confirmed:
            assert store.get("cases", f"case-{i}")["nested"] == {"i": i}
            assert store.get("outbox", f"effect-{i}")["case"] == f"case-{i}"  # same transaction
        json.loads((tmp_path / STORE_FILE).read_text())  # never a half-written file
        store.close()
        next_index = max(confirmed) + 1
    assert len(confirmed) >= 20
    assert not list(tmp_path.glob(f"{STORE_FILE}.tmp-*"))


def test_recovery_from_a_mangled_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = open_store("", tmp_path)
    store.put("cases", "a", {"v": 1})
    store.put("cases", "b", {"v": 2})
    store.close()
    (tmp_path / STORE_FILE).write_text('{"cases": {"a": {"v": 1}, "b": {')  # a disk that lied
    (tmp_path / f"{STORE_FILE}.tmp-123-456").write_text("{}")  # an unfinished write
    reopened = open_store("", tmp_path)
    assert reopened.get("cases", "a") == {"v": 1}  # previous generation restored
    assert list(tmp_path.glob(f"{STORE_FILE}.corrupt-*")), "the mangled file is kept for inspection"
    assert not list(tmp_path.glob(f"{STORE_FILE}.tmp-*"))
    assert "restored previous generation" in caplog.text


def test_unrecoverable_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / STORE_FILE).write_text("not json at all")
    with pytest.raises(StoreError, match="no previous generation"):
        open_store("", tmp_path)


def test_unknown_store_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="tinydb://"):
        open_store("mongodb://x", tmp_path)
