"""Recovery from a kill at the worst moment, one mechanism at a time (the campaign mixes them all).

- the audit file: killed after an event line, before its head (the next append used to reuse the
  sequence number and break the chain), and a line cut in the middle;
- the outbox: an effect leased by a killed process is run at once by the next one (it used to wait
  for the lease, two minutes), while a live worker's lease, or another host's, is respected;
- key files created empty by a kill (the service could never start again);
- handlers that change the case, then flag it: a kill in between used to lose the flags for good
  (the retried effect found the case changed and did nothing).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from bot.audit import AUDIT_FILE, HEAD_FILE, FileAuditLog
from bot.models import Person
from bot.outbox import Effect, Outbox
from bot.store import open_store
from tests.shared import REPO

AT = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

APPENDER = """
import sys
from datetime import datetime, timezone
from bot.audit import FileAuditLog
log = FileAuditLog(sys.argv[1])
for i in range(10):
    log.append(actor="system", action="flag", at=datetime(2026, 3, 2, tzinfo=timezone.utc), case_id=f"c{i}")
"""

CLAIMER = """
import sys
from datetime import datetime, timezone
from bot.outbox import Outbox
from bot.store import open_store
outbox = Outbox(open_store("", sys.argv[1]), lambda: datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
outbox.register("test.effect", lambda effect: {"ran": True})
outbox.run_due()
"""


def killed_at(point: str, script: str, *args: str) -> None:
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(REPO), "DSARBOT_FAULT_KILL_AT": point})
    assert done.returncode == -signal.SIGKILL, done.stderr


def test_audit_killed_between_the_line_and_the_head_keeps_a_linear_chain(tmp_path):
    killed_at("store.audit_line:3", APPENDER, str(tmp_path))
    assert json.loads((tmp_path / HEAD_FILE).read_text())["seq"] == 2  # the third line is there, its head not
    log = FileAuditLog(tmp_path)
    log.recover()
    assert log.verify().ok and log.verify().lines == 3  # the written event is kept, not lost
    log.append(actor="system", action="flag", at=AT, case_id="after")
    result = log.verify()
    assert result.ok, result.reason
    assert [e["seq"] for e in log.events()] == [1, 2, 3, 4]


def test_audit_batch_killed_before_its_head_is_adopted_whole_also_with_an_old_head(tmp_path):
    log = FileAuditLog(tmp_path)
    log.append(actor="system", action="flag", at=AT, case_id="c0")
    head = json.loads((tmp_path / HEAD_FILE).read_text())
    (tmp_path / HEAD_FILE).write_text(json.dumps({"seq": head["seq"], "hash": head["hash"]}))  # before sizes
    batch = [{"actor": "system", "action": "flag", "at": AT, "case_id": f"c{i}"} for i in range(1, 4)]
    real_head = log._write_head  # noqa: SLF001
    log._write_head = lambda *a: None  # the batch is written, the process dies before its head  # noqa: SLF001
    log.append_many(batch)
    log._write_head = real_head  # noqa: SLF001
    assert not FileAuditLog(tmp_path).verify().ok
    fresh = FileAuditLog(tmp_path)
    fresh.recover()
    assert fresh.verify().ok and [e["seq"] for e in fresh.events()] == [1, 2, 3, 4]


def test_audit_line_cut_in_the_middle_is_dropped_and_the_chain_goes_on(tmp_path):
    log = FileAuditLog(tmp_path)
    for i in range(3):
        log.append(actor="system", action="flag", at=AT, case_id=f"c{i}")
    with open(tmp_path / AUDIT_FILE, "ab") as fh:  # a process killed in the middle of write()
        fh.write(b'{"seq":4,"at":"2026-03-02T09:00:00+00:00","act')
    fresh = FileAuditLog(tmp_path)
    fresh.recover()
    assert fresh.verify().ok and [e["seq"] for e in fresh.events()] == [1, 2, 3]
    fresh.append(actor="system", action="flag", at=AT, case_id="c4")
    assert fresh.verify().ok and [e["seq"] for e in fresh.events()] == [1, 2, 3, 4]


def test_a_tampered_tail_is_not_mended_but_reported(tmp_path):
    log = FileAuditLog(tmp_path)
    for i in range(3):
        log.append(actor="system", action="flag", at=AT, case_id=f"c{i}")
    lines = (tmp_path / AUDIT_FILE).read_text().splitlines(keepends=True)
    forged = json.loads(lines[-1])
    forged.update(seq=4, case="forged")  # a line past the head whose hash does not seal it
    (tmp_path / AUDIT_FILE).write_text("".join(lines) + json.dumps(forged) + "\n")
    FileAuditLog(tmp_path).recover()
    assert not FileAuditLog(tmp_path).verify().ok


def test_an_effect_leased_by_a_killed_process_runs_at_once_after_a_restart(tmp_path):
    store = open_store("", tmp_path)
    Outbox(store, lambda: AT).enqueue(Effect("test.effect", key="e1"))
    store.close()
    killed_at("outbox.claimed:1", CLAIMER, str(tmp_path))
    store = open_store("", tmp_path)
    leased = store.get("outbox", "e1")
    assert leased["status"] == "pending" and leased["lease_until"] > AT.isoformat()
    outbox = Outbox(store, lambda: AT)
    outbox.register("test.effect", lambda effect: {"ran": True})
    assert outbox.run_due() == 0  # without the release: leased for two more minutes
    assert outbox.release_dead_leases() == 1
    assert outbox.run_due() == 1
    assert store.get("outbox", "e1")["status"] == "done"


def test_live_workers_and_other_hosts_keep_their_leases(tmp_path):
    store = open_store("", tmp_path)
    outbox = Outbox(store, lambda: AT)
    until = (AT + timedelta(minutes=2)).isoformat()
    host = socket.gethostname()
    for key, worker in {"live": f"{host}:{os.getppid()}", "elsewhere": "another-host:1",
                        "previous-life": f"{host}:{os.getpid()}"}.items():
        outbox.enqueue(Effect("test.effect", key=key))
        store.update("outbox", key, lambda d, w=worker: {**d, "lease_until": until, "lease_worker": w})
    assert outbox.release_dead_leases() == 1  # only this very pid's earlier life
    assert store.get("outbox", "previous-life")["lease_until"] is None
    assert store.get("outbox", "live")["lease_until"] == until
    assert store.get("outbox", "elsewhere")["lease_until"] == until


def test_the_service_repairs_and_releases_when_it_starts(tmp_path):
    """build_service mends the audit file and releases dead leases before anything else runs."""
    from bot.config import load_config
    from bot.service import build_service

    data = tmp_path / "data"
    killed_at("store.audit_line:2", APPENDER, str(data))
    store = open_store("", data)
    Outbox(store, lambda: AT).enqueue(Effect("test.effect", key="e1"))
    gone = f"{socket.gethostname()}:999999999"  # beyond any pid: a process that is not there
    store.update("outbox", "e1", lambda d: {**d, "lease_until": "2999-01-01", "lease_worker": gone})
    store.close()
    service = build_service(load_config(None, environ={}, overrides={"service": {"data_dir": str(data)}}),
                            now=lambda: AT, integrations=[])
    try:
        assert service.audit.verify().ok
        assert service.store.get("outbox", "e1")["lease_until"] is None
    finally:
        service.close()


def test_a_key_file_left_empty_by_a_kill_is_regenerated_and_both_keys_work(tmp_path):
    """A kill between creating vault.key (or secret.key) and writing it left an empty file, and the
    service could never start again (Fernet refuses an empty key)."""
    from bot.config import load_config
    from bot.service import secret_key
    from bot.vault import KEY_FILE, Vault

    data = tmp_path / "data"
    data.mkdir()
    (data / KEY_FILE).write_bytes(b"")
    (data / "secret.key").write_text("")
    vault = Vault(data)
    vault.write("x/y.bin", b"kept")
    assert Vault(data).read("x/y.bin") == b"kept"  # the same key next time
    config = load_config(None, environ={}, overrides={"service": {"data_dir": str(data)}})
    assert len(secret_key(config)) == 64 and secret_key(config) == secret_key(config)
    assert (data / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert not list(data.glob(".*.tmp"))


def _killed_at_the_first_flag(service):
    """The process dies right after the change before a flag was committed, before the flag."""
    real = service.cases.flag

    def dies(*args, **kwargs):
        service.cases.flag = real
        raise KeyboardInterrupt("killed")

    service.cases.flag = dies


def test_killed_between_asking_for_identity_and_its_flags_the_restart_raises_them(tmp_path):
    from tests.identity_support import Clock, email_message, make_service, run_outbox

    clock = Clock()
    on_file = {"alice@shop.example": {"order_reference": "A1001"}}
    service, _, _ = make_service(tmp_path, clock, on_file)
    case_id = service.components["intake"].receive(email_message("al1ce@shop.example")).case_id
    service.cases.record(case_id, "test_identifiers", "test",
                         lambda c: c.subject.identifiers.update(order_reference="A1001"))
    _killed_at_the_first_flag(service)
    with pytest.raises(KeyboardInterrupt):
        run_outbox(service)
    assert service.cases.get(case_id).state == "awaiting_identity" and not service.cases.get(case_id).flags
    service.close()
    service, _, _ = make_service(tmp_path, clock, on_file)  # restarted: the effect runs again
    run_outbox(service)
    assert [f.code for f in service.cases.get(case_id).flags] == ["sender_differs_from_file"]
    service.close()


def test_killed_between_a_failed_gathering_and_its_flag_the_restart_raises_it(tmp_path):
    from tests.identity_support import Clock, make_service, run_outbox

    class SourceDown:
        complete = False
        records: list = []
        sources = {"shop_db": {"status": "timeout", "error": "no answer in 30 s"}}

    class Gatherer:
        def gather(self, query, rights):
            return SourceDown()

    clock = Clock()
    service, _, _ = make_service(tmp_path, clock)
    case = service.cases.open(received_at=clock(), rights=["access"], language="en", channel="desk",
                              requester=Person(email="bob@shop.example"))
    service.components["gatherer"] = Gatherer()
    service.cases.transition(case.id, "verify", "agent:test")
    _killed_at_the_first_flag(service)
    with pytest.raises(KeyboardInterrupt):
        run_outbox(service)
    assert service.cases.get(case.id).state == "gathering_failed" and not service.cases.get(case.id).flags
    service.close()
    service, _, _ = make_service(tmp_path, clock)
    service.components["gatherer"] = Gatherer()
    run_outbox(service)
    flags = service.cases.get(case.id).flags
    assert [f.code for f in flags] == ["sources_failed"] and "shop_db" in flags[0].detail
    service.close()


OPENER = """
import sys
from datetime import datetime, timezone
from bot.config import load_config
from bot.models import Person
from bot.service import build_service
config = load_config(None, environ={}, overrides={"service": {"data_dir": sys.argv[1]}})
service = build_service(config, integrations=[])
service.cases.open(received_at=datetime(2026, 3, 2, 9, tzinfo=timezone.utc), rights=["access"], language="en",
                   channel="desk", requester=Person(email="bob@shop.example"))
"""


def test_an_audit_event_parked_by_a_killed_process_is_written_when_the_service_starts(tmp_path):
    """Not two minutes later by the periodic flush, after newer events of the same case."""
    from bot.config import load_config
    from bot.service import build_service

    data = tmp_path / "data"
    killed_at("store.case_committed:1", OPENER, str(data))
    store = open_store("", data)
    assert len(store.find("audit_pending")) == 1 and store.count("cases") == 1
    store.close()
    service = build_service(load_config(None, environ={}, overrides={"service": {"data_dir": str(data)}}),
                            now=lambda: AT, integrations=[])
    try:
        assert service.store.find("audit_pending") == []
        (case,) = service.cases.all()
        service.cases.transition(case.id, "verify", "agent:test")
        assert [e["action"] for e in service.audit.events(case.id)] == ["open", "verify"]
    finally:
        service.close()
