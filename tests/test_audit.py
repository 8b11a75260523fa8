"""The audit trail: any change, removal or reordering of a line is detected and named."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.audit import AUDIT_FILE, FileAuditLog
from bot.cli import main as cli_main

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)


def _trail(tmp_path: Path, n: int = 6, key: bytes | None = None) -> FileAuditLog:
    audit = FileAuditLog(tmp_path, key=key)
    for i in range(n):
        audit.append(actor="system", action="open" if i == 0 else "verify", at=T0, case_id=f"c{i % 2}",
                     case_ref=f"DSR-261125-AAAA{i}", before="received", after="verified")
    return audit


def _lines(tmp_path: Path) -> list[str]:
    return (tmp_path / AUDIT_FILE).read_text().splitlines(keepends=True)


def _write(tmp_path: Path, lines: list[str]) -> None:
    (tmp_path / AUDIT_FILE).write_text("".join(lines))


def test_intact_trail_verifies(tmp_path: Path) -> None:
    result = _trail(tmp_path).verify()
    assert result.ok and result.lines == 6


@pytest.mark.parametrize("line", range(6))
def test_changed_line_is_named(tmp_path: Path, line: int) -> None:
    audit = _trail(tmp_path)
    lines = _lines(tmp_path)
    event = json.loads(lines[line])
    event["actor"] = "agent:mallory"
    lines[line] = json.dumps(event) + "\n"
    _write(tmp_path, lines)
    result = audit.verify()
    assert not result.ok and result.broken_line == line + 1


@pytest.mark.parametrize("line", range(6))
def test_removed_line_is_detected(tmp_path: Path, line: int) -> None:
    audit = _trail(tmp_path)
    lines = _lines(tmp_path)
    del lines[line]
    _write(tmp_path, lines)
    result = audit.verify()
    assert not result.ok
    assert result.broken_line == min(line + 1, 6)


@pytest.mark.parametrize("a,b", [(0, 1), (2, 4), (4, 5)])
def test_reordered_lines_are_detected(tmp_path: Path, a: int, b: int) -> None:
    audit = _trail(tmp_path)
    lines = _lines(tmp_path)
    lines[a], lines[b] = lines[b], lines[a]
    _write(tmp_path, lines)
    result = audit.verify()
    assert not result.ok and result.broken_line == a + 1


def test_recomputed_chain_fails_with_a_key(tmp_path: Path) -> None:
    """With a key, someone who edits a line and recomputes plain hashes is still caught."""
    import hashlib

    audit = _trail(tmp_path, key=b"secret-outside-the-data-dir")
    lines = [json.loads(line) for line in _lines(tmp_path)]
    lines[2]["actor"] = "agent:mallory"
    prev = lines[1]["hash"]
    for event in lines[2:]:
        event["prev"] = prev
        body = {k: v for k, v in event.items() if k != "hash"}
        event["hash"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        prev = event["hash"]
    _write(tmp_path, [json.dumps(e) + "\n" for e in lines])
    assert audit.verify().broken_line == 3


def test_cli_verify_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _trail(tmp_path)
    assert cli_main(["audit", "verify", "--data-dir", str(tmp_path)]) == 0
    lines = _lines(tmp_path)
    lines[3] = lines[3].replace('"verify"', '"approve"')
    _write(tmp_path, lines)
    assert cli_main(["audit", "verify", "--data-dir", str(tmp_path)]) == 1
    assert "line 4" in capsys.readouterr().out


def test_events_carry_no_personal_data(service) -> None:  # noqa: ANN001
    from bot.models import Person

    case = service.cases.open(received_at=service.now(), rights=["access"], language="fr", channel="email",
                              requester=Person(email="camille@example.fr", name="Camille Martin"))
    service.cases.transition(case.id, "refuse", "agent:ana", detail={"reason": "Camille Martin asked twice"})
    text = (service.data_dir / AUDIT_FILE).read_text()
    assert "camille" not in text.lower() and "Martin" not in text
    assert "reason_sha256" in text
