"""`dsarbot demo`: the seeded mail goes through the real Maildir channel and intake, and the banner says where to click."""
from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from bot.demo import WALKED, Narrator, banner, demo_config, seed, wait_for_code
from bot.models import State
from bot.service import build_service
from tests.gather_fakes import NOW
from tests.servers.dovecot import free_port
from tests.shared import REPO

LOOKALIKE = "carnille.martin@examp1e.fr"


@pytest.fixture
def demo(tmp_path):
    service = build_service(demo_config(tmp_path / "demo", "127.0.0.1", 8099, agent_password="pw"), now=lambda: NOW)
    seed(service)
    yield service
    service.close()


def run(service) -> None:
    """What the scheduler does, until nothing is left to do (bounded)."""
    service.component("maildir").poll()
    for _ in range(20):
        if not service.outbox.run_due():
            return
    raise AssertionError("the outbox keeps finding work")


def sent(service) -> list:
    folder = service.data_dir / "sent-mail"
    return [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]


def test_seeded_mail_opens_cases_through_the_maildir_and_codes_go_only_where_they_may(demo):
    run(demo)
    cases = {c.requester.email: c for c in demo.cases.all()}
    assert set(cases) == {WALKED, "sam.jones@example.co.uk", LOOKALIKE, "leo.dubois@example.fr"}
    assert demo.store.count("ignored") == 1  # the out-of-office reply: never answered
    assert list((Path(demo.config.maildir.path) / "new").iterdir()) == []
    assert cases[WALKED].rights == ["access"] and cases[WALKED].language == "fr"
    assert cases["sam.jones@example.co.uk"].rights[0] == "erasure" and cases["sam.jones@example.co.uk"].language == "en"
    assert cases["leo.dubois@example.fr"].channel == "desk" and cases["leo.dubois@example.fr"].state == State.RECEIVED
    for address in (WALKED, LOOKALIKE, "sam.jones@example.co.uk"):
        assert cases[address].state == State.AWAITING_IDENTITY
        # an acknowledgement and a code, to the writing address only (on file for Camille and Sam;
        # the lookalike is on file nowhere, so its code can only ever prove its own address)
        assert sorted(m["To"] for m in sent(demo) if cases[address].ref in m["Subject"]) == [address, address]
    assert [c["basis"] for c in cases[LOOKALIKE].verification["challenges"]] == ["writing_address"]
    assert [c["basis"] for c in cases[WALKED].verification["challenges"]] == ["on_file"]


def test_the_banner_says_where_to_click(demo):
    run(demo)
    case, token = wait_for_code(demo, seconds=1)
    assert case.requester.email == WALKED and token
    text = banner(demo, "s3cret-pw", case, token)
    base = "http://127.0.0.1:8099"
    for expected in (f"{base}/desk/", '"agent", password "s3cret-pw"', f"{base}/desk/sent-mail",
                     f"{base}/verify/{token}", f"{base}/desk/cases/{case.ref}", "maildir/new/", LOOKALIKE):
        assert expected in text
    assert len(text.splitlines()) < 40  # short enough to read


def test_the_narration_follows_each_case_without_personal_data(demo):
    lines: list[str] = []
    narrator = Narrator(demo, lines.append)
    run(demo)
    narrator()
    text = "\n".join(lines)
    assert len([line for line in lines if "Awaiting identity" in line]) == 3
    assert "never answered" in text
    for case in demo.cases.all():
        assert case.ref in text and case.requester.email not in text and case.requester.name not in text
    narrator()
    assert len(lines) == len(text.splitlines())  # nothing new, nothing printed


def test_the_demo_command_starts_and_prints_the_banner(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bot", "demo", "--port", str(port), "--data-dir",
                                str(tmp_path / "demo")], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("Stop with Ctrl+C" in line for line in output):
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
        text = "".join(output)
        assert "Stop with Ctrl+C" in text, text
        link = re.search(r"http://127\.0\.0\.1:\d+/verify/[A-Za-z0-9_-]+", text).group(0)
        with urllib.request.urlopen(link, timeout=10) as page:
            assert page.status == 200 and "Code à usage unique" in page.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/desk/login", timeout=10) as page:
            assert page.status == 200
    finally:
        process.terminate()
        process.wait(timeout=15)
        process.stdout.close()
