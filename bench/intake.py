"""Intake figures: parse+classify throughput on one core, and IMAP APPEND -> case stored delay with IDLE.

    python bench/intake.py [--mails 200] [--rate 5] [--seconds 3]

1. Parse and classify the shared corpus (`../shared/corpus`) over and over for `--seconds` of CPU
   time in this process (one core): mails per second, for the whole corpus and for the request
   letters alone (typical mail, without the corpus's few 200-350 KB messages). Target >= 1,000.
2. Start a throw-away Dovecot (Debian's `dovecot-imapd`) and the service with the mailbox in IDLE
   mode on the embedded store, APPEND `--mails` distinct requests at `--rate` per second, and time
   each from the end of its APPEND to the moment intake has stored its case. p50 and p95; target p95 <= 2 s.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.classifier import make_classifier  # noqa: E402
from bot.mailparse import parse_email  # noqa: E402
from bot.models import utcnow  # noqa: E402
from tests.mailbox_support import make_service, request_mail  # noqa: E402
from tests.servers.dovecot import DovecotServer  # noqa: E402
from tests.shared import shared_dir  # noqa: E402


def throughput(corpus: list[bytes], seconds: float) -> float:
    """Mails per second of CPU time in this process (one core; fair on a busy machine)."""
    classify = make_classifier(["confidentialite@shop.example"])
    done = 0
    started = time.process_time()
    while time.process_time() - started < seconds:
        for raw in corpus:
            classify(parse_email(raw).message)
        done += len(corpus)
    return done / (time.process_time() - started)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def idle_latency(mails: int, rate: float) -> list[float]:
    base = Path(tempfile.mkdtemp(prefix="dsarbot-bench-"))
    base.chmod(0o755)  # Dovecot's unprivileged processes must reach their files inside
    server = DovecotServer(base / "dovecot")
    server.start()
    try:
        account = server.add_user()
        service = make_service(base / "data", account, now=utcnow)
        stored: dict[str, float] = {}
        arrived = threading.Condition()

        def on_receive(message, result) -> None:
            with arrived:
                stored[message.message_id.strip("<>")] = time.monotonic()
                arrived.notify_all()

        service.component("intake").after_receive.append(on_receive)
        watcher = service.component("mailbox_watcher")
        watcher.start()
        if not watcher.connected.wait(15):
            raise RuntimeError("the IDLE connection did not come up")
        appended: dict[str, float] = {}
        with account.client() as client:
            for i in range(mails):
                mid = f"bench-{i}@example.fr"
                raw = request_mail(message_id=f"<{mid}>", subject=f"Demande RGPD n°{i}",
                                   text=f"Bonjour, je demande l'accès à mes données personnelles (réf. {i}).")
                client.append("INBOX", raw)
                appended[mid] = time.monotonic()
                time.sleep(1 / rate)
        deadline = time.monotonic() + 120
        with arrived:
            while len(stored) < mails and time.monotonic() < deadline:
                arrived.wait(1)
        watcher.stop()
        service.close()
        missing = set(appended) - set(stored)
        if missing:
            raise RuntimeError(f"{len(missing)} mails never became cases within 120 s")
        return [stored[m] - appended[m] for m in appended]
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="APPENDs per second")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of the throughput run")
    args = parser.parse_args()

    files = sorted((shared_dir() / "corpus").glob("*.eml"))
    corpus = [p.read_bytes() for p in files]
    requests = [p.read_bytes() for p in files if p.name.startswith("dade_")]
    print(f"parse+classify, whole corpus ({len(corpus)} mails, {sum(map(len, corpus)) // len(corpus):,} bytes "
          f"on average): {throughput(corpus, args.seconds):,.0f} mails/s of one core's CPU time  target >= 1,000")
    print(f"parse+classify, request letters only ({len(requests)} mails): "
          f"{throughput(requests, args.seconds):,.0f} mails/s of one core's CPU time")
    delays = idle_latency(args.mails, args.rate)
    print(f"IMAP APPEND -> case stored (IDLE, {args.mails} mails at {args.rate:g}/s, embedded store): "
          f"p50 {statistics.median(delays) * 1000:.0f} ms, p95 {percentile(delays, 95) * 1000:.0f} ms, "
          f"max {max(delays) * 1000:.0f} ms  target p95 <= 2,000 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
