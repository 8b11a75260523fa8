"""The legal clock against every row of the legal test cases, and other countries' calendars."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from bot import clock
from bot.cli import main as cli_main
from tests.shared import REPO, shared_dir

LOCAL_COPY = Path(__file__).parent / "data" / "deadline_cases.tsv"


def _table() -> Path:
    try:
        return shared_dir() / "legal" / "deadline_cases.tsv"
    except FileNotFoundError:
        return LOCAL_COPY


def _rows() -> list[dict[str, str]]:
    with open(_table(), encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _jurisdiction(calendar_name: str) -> clock.Jurisdiction:
    return {
        "WEEKENDS-ONLY": clock.Jurisdiction(country=None),
        "FR": clock.Jurisdiction(country="FR"),
        "FR-AM": clock.Jurisdiction(country="FR", subdivision="alsace-moselle"),
    }[calendar_name]


def test_local_copy_matches_shared_table() -> None:
    try:
        shared = (shared_dir() / "legal" / "deadline_cases.tsv").read_text(encoding="utf-8")
    except FileNotFoundError:
        pytest.skip("no shared/ beside this checkout; the local copy is used")
    assert LOCAL_COPY.read_text(encoding="utf-8") == shared


@pytest.mark.parametrize("row", _rows(), ids=lambda r: r["case_id"])
def test_every_legal_case(row: dict[str, str]) -> None:
    received = date.fromisoformat(row["clock_start_date"])
    result = clock.deadlines(received, _jurisdiction(row["holiday_calendar"]))
    assert result.due.isoformat() == row["expected_due_date"], row["rule_note"]
    assert result.extended_due.isoformat() == row["expected_extended_due_date"], row["rule_note"]


@pytest.mark.parametrize("row", _rows()[:6] + _rows()[-4:], ids=lambda r: r["case_id"])
def test_cli_prints_the_same_json(row: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    args = ["deadline", row["clock_start_date"]]
    cal = row["holiday_calendar"]
    args += ["--country", "none"] if cal == "WEEKENDS-ONLY" else ["--country", "FR"]
    if cal == "FR-AM":
        args += ["--subdivision", "57"]
    assert cli_main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"received": row["clock_start_date"], "due": row["expected_due_date"],
                       "extended_due": row["expected_extended_due_date"]}


@pytest.mark.parametrize("country,subdivision,received,due", [
    # England: 25 Dec 2026 (Fri) Christmas, 28 Dec (Mon) substitute Boxing Day -> Tue 29 Dec
    ("GB", "ENG", "2026-11-25", "2026-12-29"),
    # Scotland: 2 Jan is a bank holiday there but not in England
    ("GB", "SCT", "2026-12-02", "2027-01-05"),
    ("GB", "ENG", "2026-12-02", "2027-01-04"),
    # Bavaria: Epiphany 6 Jan 2027 (Wed) is a holiday -> Thu 7 Jan; Berlin: not a holiday
    ("DE", "BY", "2026-12-06", "2027-01-07"),
    ("DE", "BE", "2026-12-06", "2027-01-06"),
    # Bavaria: Corpus Christi 27 May 2027 (Thu)
    ("DE", "BY", "2027-04-27", "2027-05-28"),
])
def test_other_countries(country: str, subdivision: str, received: str, due: str) -> None:
    result = clock.deadlines(date.fromisoformat(received), clock.Jurisdiction(country, subdivision))
    assert result.due.isoformat() == due


def test_unknown_calendar_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(clock.UnknownCalendar, match="XX"):
        clock.validate_jurisdiction(clock.Jurisdiction("XX"))
    assert cli_main(["deadline", "2026-01-05", "--country", "FR", "--subdivision", "nowhere"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_receipt_day_is_the_controllers_local_day() -> None:
    paris = clock.Jurisdiction("FR")
    late_evening_utc = datetime(2026, 1, 30, 23, 30, tzinfo=timezone.utc)  # already 31 Jan in Paris
    assert clock.receipt_date(late_evening_utc, paris) == date(2026, 1, 31)
    assert clock.due_date(clock.receipt_date(late_evening_utc, paris), paris) == date(2026, 3, 2)


def test_extension_notice_and_reminders() -> None:
    assert clock.last_extension_notice_day(date(2026, 1, 31)) == date(2026, 2, 28)
    assert clock.reminder_dates(date(2026, 12, 28), [7, 3, 1]) == [date(2026, 12, 21), date(2026, 12, 25),
                                                                     date(2026, 12, 27)]
    assert clock.urgency(date(2026, 12, 28), date(2026, 12, 29)) == "overdue"
    assert clock.urgency(date(2026, 12, 28), date(2026, 12, 22)) == "due_soon"
    assert clock.urgency(date(2026, 12, 28), date(2026, 11, 25)) == "on_track"


def test_installed_command_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "bot", "deadline", "2026-11-25"], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout
    assert json.loads(out) == {"received": "2026-11-25", "due": "2026-12-28", "extended_due": "2027-02-25"}
