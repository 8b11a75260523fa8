"""Store operations per second with 1k, 10k and 100k cases, TinyDB and PostgreSQL side by side.

    python bench/store.py [--sizes 1000,10000,100000] [--pg postgresql://postgres@127.0.0.1/postgres]

Each size: load N realistic case documents, then time get (random key), put (update one case),
find (cases in one state) and claim_due (outbox work). Writes on TinyDB rewrite the whole file, so
their cost grows with the store: that is the figure that tells a shop when to move to PostgreSQL.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.models import Case, Person, State  # noqa: E402
from bot.store import open_store  # noqa: E402
from datetime import date, datetime, timezone  # noqa: E402


def case_doc(i: int) -> dict:
    case = Case(id=f"case-{i}", ref=f"DSR-261125-{i:05d}", state=random.choice(list(State)), rights=["access"],
                language="fr", channel="email", received_at=datetime(2026, 11, 25, tzinfo=timezone.utc),
                due=date(2026, 12, 28), extended_due=date(2027, 2, 25),
                requester=Person(email=f"person{i}@example.fr", name=f"Person {i}"),
                classification={"kind": "request", "cues": ["phrase 'droit d'accès' (fr, access)"] * 3})
    return case.to_doc()


def timed(label: str, n: int, fn, budget_s: float = 10.0) -> str:
    start = time.perf_counter()
    done = 0
    while done < n and time.perf_counter() - start < budget_s:
        fn(done)
        done += 1
    elapsed = time.perf_counter() - start
    return f"{label}={done / elapsed:,.0f}/s"


def bench(url: str, size: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        if url.startswith("postgresql"):
            import psycopg

            name = f"dsarbot_bench_{uuid.uuid4().hex[:6]}"
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            target = url.rsplit("/", 1)[0] + "/" + name
        else:
            target = ""
        store = open_store(target, tmp)
        try:
            t0 = time.perf_counter()
            with store.transaction():
                for i in range(size):
                    store.put("cases", f"case-{i}", case_doc(i))
                for i in range(200):
                    store.put("outbox", f"e{i}", {"status": "pending", "due_at": "2026-01-01", "kind": "x"})
            load = time.perf_counter() - t0
            keys = [f"case-{random.randrange(size)}" for _ in range(1000)]
            figures = [
                f"load={size / load:,.0f} docs/s",
                timed("get", 1000, lambda i: store.get("cases", keys[i])),
                timed("put", 200, lambda i: store.put("cases", keys[i], case_doc(i))),
                timed("find", 20, lambda i: store.find("cases", {"state": "drafted"})),
                timed("claim", 50, lambda i: store.claim_due("outbox", "2026-02-01", "w", "2026-02-01T00:00:0" + str(i % 10), 1)),
            ]
        finally:
            store.close()
            if target:
                with psycopg.connect(url, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        return "  ".join(figures)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    random.seed(1)
    print(f"command: python bench/store.py --sizes {args.sizes}")
    for size in [int(s) for s in args.sizes.split(",")]:
        for label, url in (("tinydb", ""), ("postgres", args.pg)):
            print(f"{label:9} {size:>7,} cases  {bench(url, size)}", flush=True)


if __name__ == "__main__":
    main()
