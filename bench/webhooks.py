"""Sustained signed Zendesk-webhook intake against the real service, with zero loss checked at the end.

    python bench/webhooks.py --rate 400 --seconds 15 [--postgres]

Starts a fake Zendesk (tests/fakes/zendesk.py) holding one customer ticket per request, runs the
service in a subprocess (waitress via bot.runtime.serve_app, scheduler on, on 127.0.0.1), sends
signed `ticket.created` webhooks at a steady rate from keep-alive connections, then waits until
the inbox is drained, stops the service and counts the cases it opened. Prints requests/s,
latency percentiles, cases created vs sent, and how long turning deliveries into cases took.
The store is the embedded TinyDB, or with `--postgres` a fresh database on the local server
(`DSARBOT_TEST_PG`, default postgresql://postgres@127.0.0.1:5432/postgres). Several instances:
bench/load.py.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def serve(config_path: str) -> int:
    """The service process: exactly what `dsarbot serve` runs, plus an Intake if none is set up yet."""
    import logging

    from bot.config import load_config
    from bot.runtime import serve_app, start_background
    from bot.service import build_service

    logging.basicConfig(level=logging.WARNING, format="service: %(levelname)s %(name)s: %(message)s")
    config = load_config(config_path)
    service = build_service(config)
    if service.component("intake") is None:  # until the classifier branch is merged
        from bot.intake import Intake
        from tests.helpdesk_support import tiny_classifier

        service.components["intake"] = Intake(service.cases, tiny_classifier)
    start_background(service)
    serve_app(service, config.service.host, config.service.port)
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_up(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the service did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=400.0, help="webhooks per second to send")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to send")
    parser.add_argument("--threads", type=int, default=16, help="client connections")
    parser.add_argument("--batch", type=int, default=50, help="[helpdesk] inbox_batch of the service")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database instead of TinyDB")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve)

    if args.postgres:
        from tests.servers.postgres import fresh_database

        with fresh_database(prefix="dsarbot_bench_") as url:
            return run(args, argv, url)
    return run(args, argv, "")


def run(args: argparse.Namespace, argv: list[str] | None, store_url: str) -> int:
    from bot.inbox import Inbox
    from bot.store import open_store
    from bench.http_load import send_open_loop
    from tests.fakes import zendesk as zd

    command = "python bench/webhooks.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    total = int(args.rate * args.seconds)
    work = Path(tempfile.mkdtemp(prefix="dsarbot-bench-"))
    fake = zd.FakeZendesk().start()
    tickets = [fake.customer_ticket(f"client{n}@example.fr", f"Client {n}", "Mes données",
                                    f"Bonjour, je demande l'accès à mes données (client {n}).") for n in range(total)]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    requests = [fake.webhook("created", tid, timestamp=stamp) for tid in tickets]
    port = _free_port()
    config = work / "dsarbot.toml"
    config.write_text(f"""
[service]
data_dir = "{work / 'data'}"
host = "127.0.0.1"
port = {port}
log_level = "WARNING"
[helpdesk]
kind = "zendesk"
inbox_batch = {args.batch}
[zendesk]
base_url = "{fake.url}"
email = "{zd.EMAIL}"
webhook_secret = "{zd.SECRET}"
field_ids = {json.dumps(zd.FIELD_IDS).replace(':', ' =').replace('"', '')}
""")
    env = {**os.environ, "DSARBOT_ZENDESK__API_TOKEN": zd.TOKEN, "PYTHONPATH": str(REPO),
           "DSARBOT_STORE__URL": store_url}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(config)], env=env, cwd=REPO)
    try:
        _wait_up(port)
        load = send_open_loop([port], "/webhooks/zendesk", requests, args.rate, args.threads)
        sent_done = load.last_answer
        inbox = Inbox(work / "data" / "inbox", lambda: datetime.now(timezone.utc))
        while inbox.backlog():
            time.sleep(0.5)
            if time.perf_counter() - sent_done > 1800:
                break
        drained = time.perf_counter() - sent_done
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        fake.stop()
    store = open_store(store_url, work / "data")
    cases = [c for c in store.find("cases") if c["channel"] == "zendesk"]
    outbox = store.find("outbox")
    store.close()
    ok, elapsed = load.accepted, load.elapsed
    linked = {c["ticket"]["id"] for c in cases}
    print(f"command: {command}")
    print(f"store: {'PostgreSQL' if store_url else 'TinyDB'}; " + "\n".join(load.summary(args.rate)))
    print(f"cases created {len(cases)} vs sent {total}; distinct tickets linked {len(linked)}; "
          f"missing {len(set(map(str, tickets)) - linked)}")
    print(f"inbox drained {drained:.1f}s after the last request "
          f"({len(cases) / max(drained + elapsed, 1e-9):.0f} cases/s end to end)")
    print(f"ticket field updates done {sum(1 for e in outbox if e['status'] == 'done')} / {len(outbox)} "
          f"when stopped (outbox keeps going after a restart)")
    print(f"data dir {work}")
    return 0 if ok == total and len(linked) == total else 1


if __name__ == "__main__":
    sys.exit(main())
