"""bot.faults: checkpoints cost nothing unarmed, kill exactly at the n-th hit armed, and match the catalogue."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot import faults
from tests.shared import REPO

HITS = """
from bot.faults import checkpoint
for i in range(1, 6):
    checkpoint("store.audit_line")
    checkpoint("outbox.claimed")
    print(i, flush=True)
"""


def run_hits(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HITS], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(REPO), **env})


def test_unarmed_checkpoints_do_nothing(tmp_path):
    done = run_hits(tmp_path)
    assert done.returncode == 0 and done.stdout.split() == ["1", "2", "3", "4", "5"]


def test_armed_the_process_dies_by_sigkill_at_the_nth_hit_and_says_where(tmp_path):
    log, trace = tmp_path / "fired", tmp_path / "trace"
    killed = run_hits(tmp_path, DSARBOT_FAULT_KILL_AT="outbox.claimed:3", DSARBOT_FAULT_LOG=str(log),
                      DSARBOT_FAULT_TRACE=str(trace))
    assert killed.returncode == -signal.SIGKILL
    assert killed.stdout.split() == ["1", "2"]  # the third round never printed
    assert log.read_text() == "outbox.claimed:3\n"
    assert trace.read_text().split() == ["store.audit_line", "outbox.claimed"] * 3


def test_a_malformed_kill_point_is_refused_with_the_names():
    for spec in ("outbox.claimed", "outbox.claimed:0", "nowhere.at_all:1", "outbox.claimed:x"):
        with pytest.raises(ValueError, match="expected <checkpoint>:<n>"):
            faults.arm({"DSARBOT_FAULT_KILL_AT": spec})
    faults.arm({})
    assert not faults.armed()


def test_every_checkpoint_in_the_catalogue_is_called_in_the_product_and_no_other():
    called: list[str] = []
    for folder in ("bot", "integrations"):
        for path in (REPO / folder).rglob("*.py"):
            if path.name == "faults.py":
                continue  # its docstring shows the call
            called += re.findall(r'checkpoint\("([a-z_.]+)"\)', path.read_text(encoding="utf-8"))
    assert set(called) == set(faults.CHECKPOINTS)
    # one name, one place; CaseBook commits in two (open, and every other change): one point
    assert {name for name in called if called.count(name) > 1} <= {"store.case_committed"}
    assert all(name.split(".")[0] in {"intake", "gather", "draft", "deliver", "outbox", "store"} for name in called)
