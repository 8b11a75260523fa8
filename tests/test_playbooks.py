"""The shipped playbooks and their validation."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.models import Right
from bot.playbooks import PlaybookError, Playbooks

REPO = Path(__file__).resolve().parents[1]


def test_every_right_has_a_shipped_playbook():
    playbooks = Playbooks(REPO / "playbooks")
    assert set(playbooks.by_right) == {r.value for r in Right}
    assert playbooks.portable_only("portability") and not playbooks.portable_only("access")
    # portability and erasure ask the same sources as access
    assert playbooks.steps_for("erasure") == playbooks.steps_for("access") == playbooks.steps_for("portability")


def test_playbook_errors_say_what_to_fix(tmp_path):
    (tmp_path / "access.yaml").write_text("right: access\nsteps:\n  - {source: shop, sources: all}\n")
    with pytest.raises(PlaybookError, match="exactly one of"):
        Playbooks(tmp_path)
    (tmp_path / "access.yaml").write_text("right: access\nsteps:\n  - {sources: all}\n")
    with pytest.raises(PlaybookError, match="no playbook for right 'erasure'"):
        Playbooks(tmp_path)
    for right in Right:
        if right.value != "access":
            (tmp_path / f"{right.value}.yaml").write_text(f"right: {right.value}\nextends: {right.value}\n")
    with pytest.raises(PlaybookError, match="circle"):
        Playbooks(tmp_path)
    (tmp_path / "objection.yaml").write_text("right: objection\nsteps:\n  - {sources: all, accepts: [phone]}\n")
    with pytest.raises(PlaybookError, match="cannot identify"):
        Playbooks(tmp_path)
