"""Who does the work: one id per process (`host:pid`), and whether a worker of this host is gone.

Leases on outbox effects and parked audit events carry the id of the process that took them, so
that a restart after a crash can finish that process's work at once instead of waiting out a timer.
"""
from __future__ import annotations

import os
import socket

_HOST = socket.gethostname()


def worker_id() -> str:
    """This process (asked each time: a forked child is another worker)."""
    return f"{_HOST}:{os.getpid()}"


def gone(worker: str) -> bool:
    """True for a worker of this host whose process no longer runs, or that names this very process
    (an earlier life of it, as in a container restarted with the same pid). Workers of other hosts,
    and ids we did not make, are never judged gone: their processes cannot be seen from here."""
    host, _, pid = (worker or "").rpartition(":")
    if host != _HOST or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
