"""Load on one and on two `dsarbot serve` instances sharing one PostgreSQL database, zero loss checked.

    python bench/load.py --rate 200 --seconds 20 --mails 200 [--instances 1,2]

For each instance count: a fresh database on the local PostgreSQL server (`DSARBOT_TEST_PG`), a
fresh fake Zendesk (tests/fakes/zendesk.py) holding one customer ticket per webhook, a fresh
Dovecot account; the instances (subprocesses running `python -m bot serve`, waitress on
127.0.0.1, own data dirs, shared store URL and keys, tests/servers/instances.py) IDLE on that
mailbox. Then signed `ticket.created` webhooks at a steady rate spread over the instances in turn
(as a round-robin balancer would) while a burst of mails is APPENDed to the mailbox; then the
wait until all work is done: every inbox drained, every mail seen, every case opened, every due
outbox effect done. Printed per run: requests/s accepted at the edge with latency percentiles,
the time from the last request to all work done, cases created vs requests sent, and every kind
of duplicate (cases, tickets at the fake, effects run more than once).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import threading
import time
from email.utils import make_msgid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def append_burst(account, count: int, done: dict[str, float]) -> None:  # noqa: ANN001
    from tests.mailbox_support import request_mail

    started = time.perf_counter()
    with account.client() as client:
        for n in range(count):
            client.append("INBOX", request_mail(message_id=make_msgid(domain="example.fr"),
                                                sender=f"mail{n}@example.fr", subject=f"Demande RGPD n°{n}"))
    done["appended"] = time.perf_counter() - started


def run_once(instances: int, args: argparse.Namespace, dovecot, base: Path) -> dict:  # noqa: ANN001
    from bench.http_load import send_open_loop
    from bot.audit import PostgresAuditLog
    from bot.store import open_store
    from tests.fakes.zendesk import FakeZendesk
    from tests.servers.instances import Cluster, due_effects, tally, wait_until
    from tests.servers.postgres import fresh_database

    total = int(args.rate * args.seconds)
    account = dovecot.add_user()
    fake = FakeZendesk().start()
    with fresh_database(prefix="dsarbot_load_") as url:
        cluster = Cluster(base / f"{instances}-instances", url, fake.url, account,
                          settings={"helpdesk": {"inbox_batch": args.batch}})
        store = open_store(url, base / "reader")
        try:
            cluster.start(instances)
            tickets = [fake.customer_ticket(f"client{n}@example.fr", f"Client {n}", "Mes données",
                                            f"Bonjour, je demande l'accès à mes données (client {n}).")
                       for n in range(total)]
            requests = [fake.webhook("created", tid) for tid in tickets]
            mails: dict[str, float] = {}
            burst = threading.Thread(target=append_burst, args=(account, args.mails, mails))
            burst.start()
            load = send_open_loop([i.port for i in cluster.instances], "/webhooks/zendesk", requests, args.rate,
                                  args.threads)
            burst.join()
            expected = total + args.mails
            wait_until(lambda: store.count("cases") >= expected and cluster.inbox_backlog() == 0
                       and not account.uids(criteria="UNSEEN") and not due_effects(store),
                       timeout=args.timeout, what="all work done", every=0.25)
            drained = time.perf_counter() - load.last_answer
            counts = tally(store, PostgresAuditLog(store), fake)
            counts.update(load=load, drained=drained, appended=mails.get("appended", 0.0), expected=expected,
                          sent=total, unexpected=list(fake.unexpected))
        finally:
            cluster.stop()
            store.close()
            fake.stop()
    return counts


def report(instances: int, c: dict, args: argparse.Namespace) -> list[str]:
    load = c["load"]
    lines = [f"== {instances} instance{'s' if instances > 1 else ''}"]
    lines += [f"webhooks: {line}" for line in load.summary(args.rate)]
    lines.append(f"mails: {args.mails} APPENDed in {c['appended']:.1f}s during the webhooks")
    lines.append(f"all work done {c['drained']:.1f}s after the last answer "
                 f"({c['cases'] / (load.elapsed + c['drained']):.0f} cases/s end to end)")
    lines.append(f"cases {c['cases']} vs requests {c['expected']} ({c['by_channel']}); "
                 f"lost {c['expected'] - c['cases']}; webhooks refused {len(load.statuses) - load.accepted}")
    lines.append(f"duplicates: cases opened twice {c['cases_opened_twice']}, tickets with two cases "
                 f"{c['tickets_with_two_cases']}, cases with two tickets at the fake {c['cases_with_two_tickets']}, "
                 f"ticket creations repeated {c['ticket_creations_repeated']}, effects attempted more than once "
                 f"{c['effects_attempted_twice']}, failed {c['effects_failed']}")
    lines.append(f"effects done {c['effects_done']} ({c['effects_by_kind']}), by instance "
                 f"{sorted(c['effects_by_worker'].values(), reverse=True)}; {c['effects_later']} due later (reminders)")
    lines.append(f"audit {'verifies' if c['audit_ok'] else 'BROKEN'} ({c['audit_events']} events); "
                 f"unexpected requests at the fake: {len(c['unexpected'])}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="webhooks per second, over all instances")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send")
    parser.add_argument("--mails", type=int, default=200, help="mails APPENDed in one burst meanwhile")
    parser.add_argument("--instances", default="1,2", help="instance counts to run, in order")
    parser.add_argument("--threads", type=int, default=8, help="client connections per instance")
    parser.add_argument("--batch", type=int, default=50, help="[helpdesk] inbox_batch")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up waiting for the work after this")
    args = parser.parse_args(argv)

    from tests.servers.dovecot import running_dovecot

    command = "python bench/load.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    base = Path(tempfile.mkdtemp(prefix="dsarbot-load-"))
    ok = True
    print(f"command: {command}", flush=True)
    with running_dovecot() as dovecot:
        for count in [int(n) for n in args.instances.split(",")]:
            counts = run_once(count, args, dovecot, base)
            print("\n".join(report(count, counts, args)), flush=True)
            ok &= (counts["cases"] == counts["expected"] and counts["load"].accepted == counts["sent"]
                   and counts["cases_opened_twice"] == counts["tickets_with_two_cases"] == 0
                   and counts["cases_with_two_tickets"] == counts["ticket_creations_repeated"] == 0
                   and counts["effects_attempted_twice"] == counts["effects_failed"] == 0 and counts["audit_ok"])
    print(f"data dirs and logs: {base}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
