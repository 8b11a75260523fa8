"""Recovery from a kill at the worst moment, one mechanism at a time (the campaign mixes them all).

- the audit file: killed after an event line, before its head (the next append used to reuse the
  sequence number and break the chain), and a line cut in the middle.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime, timezone

from bot.audit import AUDIT_FILE, HEAD_FILE, FileAuditLog
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
