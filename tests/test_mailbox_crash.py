"""Crash safety: a mailbox process killed with SIGKILL mid-way replays on restart, into exactly one case."""
from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from imapclient import SEEN

from bot.store import open_store
from tests.mailbox_support import request_mail
from tests.servers.dovecot import dovecot, imap_account  # noqa: F401 (fixtures)
from tests.shared import REPO


def run_worker(data_dir, account, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.mailbox_crash_worker", str(data_dir), str(account.port),
                           account.username, account.password, mode], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def seen(account) -> list[bool]:
    with account.client() as client:
        client.select_folder("INBOX", readonly=True)
        return [SEEN in data[b"FLAGS"] for data in client.fetch(client.search("ALL"), ["FLAGS"]).values()]


@pytest.mark.parametrize("mode", ["after-fetch", "after-intake"])
def test_killed_between_fetch_and_flag_the_message_becomes_exactly_one_case(tmp_path, imap_account, mode):
    data_dir = tmp_path / "data"
    imap_account.append(request_mail())

    crashed = run_worker(data_dir, imap_account, mode)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert seen(imap_account) == [False]  # never marked done before the case was committed
    store = open_store("", data_dir)
    try:
        assert store.count("cases") == (1 if mode == "after-intake" else 0)
    finally:
        store.close()

    restarted = run_worker(data_dir, imap_account, "none")
    assert restarted.returncode == 0, restarted.stderr
    assert ("duplicate" if mode == "after-intake" else "case_opened") in restarted.stdout
    store = open_store("", data_dir)
    try:
        assert store.count("cases") == 1
        assert len(store.find("outbox", {"kind": "mail.send"})) == 1  # one acknowledgement queued, not two
    finally:
        store.close()
    assert seen(imap_account) == [True]
