"""An open-loop HTTP load generator for the benches: request i is due at start + i/rate, whatever
the answers before it, so a slow server shows up as latency, not as a politely lower rate.

Requests are spread over several ports in turn (instances behind a round-robin balancer), from
`threads` keep-alive connections per port.
"""
from __future__ import annotations

import http.client
import statistics
import threading
import time
from dataclasses import dataclass


@dataclass
class LoadResult:
    latencies: list[float]  # seconds, per request
    statuses: list[int]  # HTTP status, -1 for a connection error
    elapsed: float  # from the first request due to the last answer
    last_answer: float  # time.perf_counter() of the last answer

    @property
    def accepted(self) -> int:
        return sum(1 for s in self.statuses if s == 200)

    def summary(self, rate: float) -> list[str]:
        total = len(self.statuses)
        ms = sorted(x * 1000 for x in self.latencies)

        def pct(p: float) -> float:
            return ms[max(0, int(p * len(ms)) - 1)]

        return [f"sent {total} in {self.elapsed:.1f}s: {self.accepted / self.elapsed:.0f} accepted/s "
                f"(target {rate:.0f}/s), {self.accepted} answered 200, {total - self.accepted} other",
                f"latency ms: p50 {statistics.median(ms):.1f}  p95 {pct(0.95):.1f}  p99 {pct(0.99):.1f}  "
                f"max {ms[-1]:.1f}"]


def send_open_loop(ports: list[int], path: str, requests: list[tuple[dict[str, str], bytes]], rate: float,
                   threads: int) -> LoadResult:
    latencies = [0.0] * len(requests)
    statuses = [0] * len(requests)
    counter = iter(range(len(requests)))
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def worker() -> None:
        conns: dict[int, http.client.HTTPConnection] = {}
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            port = ports[i % len(ports)]
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            conn = conns.get(port) or conns.setdefault(port, http.client.HTTPConnection("127.0.0.1", port, timeout=30))
            headers, body = requests[i]
            sent = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                statuses[i] = response.status
            except OSError:
                statuses[i] = -1
                conn.close()
                conns.pop(port, None)
            latencies[i] = time.perf_counter() - sent
        for conn in conns.values():
            conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads * len(ports))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    end = time.perf_counter()
    return LoadResult(latencies, statuses, end - start, end)
