"""Run one mailbox pass in its own process, optionally killing itself with SIGKILL at a chosen point.

`python -m tests.mailbox_crash_worker DATA_DIR PORT USER PASSWORD {none,after-fetch,after-intake}`;
used by tests/test_mailbox_crash.py to crash the intake between fetch and commit, and between
commit and the IMAP flag.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from tests.mailbox_support import FakeClock, make_service
from tests.servers.dovecot import Account


def die(*_: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(data_dir: str, port: str, user: str, password: str, mode: str) -> None:
    service = make_service(Path(data_dir), Account("127.0.0.1", int(port), user, password), now=FakeClock())
    channel = service.component("mailbox")
    if mode == "after-fetch":
        channel.after_fetch.append(die)
    elif mode == "after-intake":
        service.component("intake").after_receive.append(die)
    result = channel.poll()
    print(dict(result.outcomes), flush=True)
    service.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
