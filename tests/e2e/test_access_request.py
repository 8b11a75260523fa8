"""From a customer's e-mail to the delivered answer, on real local parts, and an impostor who gets nothing.

The service runs for real (tests/e2e/stack.py): mail arrives through IMAP IDLE, effects run on the
scheduler's outbox ticks, the customer's pages are used in Debian's Chromium, and Slack's click is
posted to the service's own HTTP port, signed as Slack signs it. The test waits with timeouts,
never with fixed sleeps.
"""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from bot import clock
from bot.drafting import read_verified
from bot.identity_review import vault_of
from bot.models import State
from tests.dbs import mariadb_database, run_sql
from tests.e2e.stack import (ACCESS_REQUEST_FR, CUSTOMER, CUSTOMER_MARKS, IMPOSTOR, NAMESAKE_MARKS, PRIVACY, Stack,
                             code_in, link_in, request_mail, running_stack, shop_rows, text_of, wait_until)
from tests.fakes.people import NAMESAKE
from tests.servers.dovecot import dovecot, imap_account  # noqa: F401 - fixtures
from tests.servers.smtp import smtp_sink  # noqa: F401 - fixture
from tests.shared import REPO, shared_dir

SCHEMA = REPO / "bot" / "drafting" / "schema" / "export.schema.json"
ACK = "Nous avons bien reçu votre demande"
CODE = "Votre code de vérification"
READY = "Votre réponse est prête"
PORTAL_CODE = "Votre code pour ouvrir votre réponse"


@pytest.fixture(scope="module")
def shop_url():
    """The shop's database on MariaDB: the real PrestaShop 8.1 schema, the customer and her namesake."""
    with mariadb_database(shared_dir() / "schemas" / "prestashop" / "mariadb.sql") as url:
        run_sql(url, shop_rows())
        yield url


@pytest.fixture
def stack(tmp_path, imap_account, smtp_sink, shop_url):
    with running_stack(tmp_path, imap_account, smtp_sink, shop_url) as running:
        yield running


@pytest.fixture
def customer_page(browser):
    context = browser.new_context(locale="fr-FR", accept_downloads=True)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def local(stack: Stack, link: str) -> str:
    assert link.startswith(stack.service.config.service.base_url + "/")  # links name the service's own URL
    return link


def enter_code(page, code: str, button: str) -> None:
    page.get_by_label("Code à usage unique").fill(code)
    page.get_by_role("button", name=button).click()


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", *args, "--data-dir", str(data_dir)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "answer.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout


def readable(files: dict[str, bytes], tmp_path: Path) -> str:
    """Everything the customer can read in the downloaded answer: PDF text, HTML, JSON, every CSV."""
    parts = []
    for name, data in files.items():
        if name.endswith(".pdf"):
            parts.append(pdf_text(data, tmp_path))
        elif name.endswith(".zip"):
            parts += [d.decode("utf-8") for d in unzip(data).values()]
        else:
            parts.append(data.decode("utf-8"))
    return "\n".join(parts)


def test_an_access_request_by_email_is_answered_on_time_with_her_data_only(stack, customer_page, tmp_path):
    service, zendesk, page = stack.service, stack.zendesk, customer_page

    # 1. Camille writes to the privacy mailbox, in French.
    stack.send(request_mail(CUSTOMER, "Demande d'accès à mes données", ACCESS_REQUEST_FR))
    case = stack.case_from(CUSTOMER)
    assert (case.rights, case.language, case.channel) == (["access"], "fr", "email")

    # 2. The acknowledgement: her reference and the legal due date.
    ack = stack.mail(CUSTOMER, ACK)
    assert case.ref in ack["Subject"] and ack["Auto-Submitted"] == "auto-replied"
    due = case.due
    months = "janvier février mars avril mai juin juillet août septembre octobre novembre décembre".split()
    assert f"{due.day} {months[due.month - 1]} {due.year}" in text_of(ack).replace("1er ", "1 ")

    # 3. The Zendesk ticket, with the deadline fields.
    ticket = stack.ticket(case)
    assert zendesk.field(ticket, "case_ref") == case.ref and zendesk.field(ticket, "due") == due.isoformat()
    assert zendesk.field(ticket, "received") == clock.receipt_date(case.received_at, service.cases.jurisdiction).isoformat()
    assert zendesk.field(ticket, "right") == "access"
    assert "dsar_access" in zendesk.tickets[ticket]["tags"]

    # 4. The code goes to the address on file, and she types it in the browser.
    code_mail = stack.mail(CUSTOMER, CODE)
    assert service.cases.get(case.id).verification["challenges"][0]["basis"] == "on_file"
    page.goto(local(stack, link_in(code_mail, "verify")))
    enter_code(page, code_in(code_mail), "Confirmer")
    assert page.get_by_role("heading", name="Identité confirmée").is_visible()

    # 5. The playbook gathers from the shop database, Brevo and the event log; the draft is ready.
    case = stack.wait_state(case.id, State.DRAFTED, timeout=60)
    assert {name: s["status"] for name, s in case.gathering["sources"].items()} == \
        {"shop": "ok", "newsletter": "ok", "events": "ok"}
    assert wait_until(lambda: zendesk.field(ticket, "state") == "drafted", "the ticket shows the draft state")

    # 6. The draft reaches the ticket as one internal note with the letter and the files.
    note = wait_until(lambda: next((n for n in zendesk.notes(ticket) if n["attachments"]), None),
                      "the draft note on the ticket")
    assert note["public"] is False and case.ref in note["body"]
    attached = {a["file_name"] for a in note["attachments"]}
    assert {f"{case.ref}-answer.pdf", f"{case.ref}-data.json", f"{case.ref}-data-csv.zip"} <= attached

    # 7. Approval in Slack: the approver clicks the button on the posted message, bound to the draft hash.
    message = stack.approval_message(case)
    value = json.loads(next(e["value"] for b in message["blocks"] for e in b.get("elements", [])
                            if e.get("action_id") == "dsar_approve"))
    assert value["h"] == case.draft["hash"]
    assert stack.click_approve(message).status_code == 200
    case = stack.wait_state(case.id, State.APPROVED, State.DELIVERED)
    assert case.approval["by"] == "slack:U0DPO" and case.approval["draft_hash"] == value["h"]

    # 8. The delivery mail: a portal link, no data in the mail.
    ready = stack.mail(CUSTOMER, READY)
    assert not list(ready.iter_attachments()) and stack.wait_state(case.id, State.DELIVERED)

    # 9. The portal: a fresh code, then the download (a POST) in the browser.
    page.goto(local(stack, link_in(ready, "portal")))
    page.get_by_role("button", name="M'envoyer un code").click()
    enter_code(page, code_in(stack.mail(CUSTOMER, PORTAL_CODE)), "Ouvrir")
    with page.expect_download() as download:
        page.get_by_role("button", name="Télécharger ma réponse").click()
    files = unzip(Path(download.value.path()).read_bytes())
    assert sorted(files) == sorted([f"{case.ref}-answer.pdf", f"{case.ref}-answer.html", f"{case.ref}-data.json",
                                    f"{case.ref}-data-csv.zip"])

    # 10. Her records from the three systems, and nobody else's.
    exported = json.loads(files[f"{case.ref}-data.json"])
    jsonschema.validate(exported, json.loads(SCHEMA.read_text(encoding="utf-8")))
    assert exported["data_subject"]["email"] == CUSTOMER
    assert set(exported["summary"]["systems"]) == {"PrestaShop", "Brevo", "Matomo"}
    assert all(count > 0 for count in exported["summary"]["systems"].values())
    text = readable(files, tmp_path)
    for mark in CUSTOMER_MARKS:
        assert mark in text, mark
    for mark in NAMESAKE_MARKS:
        assert mark not in text, mark

    # 11. Whatever left went to her address only; the namesake got nothing.
    assert {tuple(e.rcpt_tos) for e in stack.smtp.envelopes} == {(CUSTOMER,)}
    subjects = [str(m["Subject"]) for m in stack.mails(CUSTOMER)]
    assert len(subjects) == 4 and all(f"[{case.ref}] {s}" in subject
                                      for s, subject in zip((ACK, CODE, READY, PORTAL_CODE), subjects)), subjects

    # 12. The audit trail verifies and the register of requests shows the case answered on time.
    verified = cli("audit", "verify", data_dir=service.data_dir)
    assert verified.returncode == 0 and "audit trail intact" in verified.stdout, verified.stdout + verified.stderr
    exported_register = cli("audit", "export", "--format", "csv", data_dir=service.data_dir)
    assert exported_register.returncode == 0, exported_register.stderr
    (row,) = [r for r in csv.DictReader(io.StringIO(exported_register.stdout)) if r["reference"] == case.ref]
    assert (row["state"], row["outcome"], row["on_time"]) == ("delivered", "answered", "yes")
    assert "approve by slack:U0DPO" in row["decisions"]
    assert wait_until(lambda: zendesk.field(ticket, "state") == "delivered", "the ticket shows the delivery")


def test_an_impostor_on_a_lookalike_address_gets_nothing_of_hers(stack, customer_page):
    service, page = stack.service, customer_page

    # The customer and an impostor writing as her from a lookalike address (rn for m, 1 for l),
    # naming her order and asking for the data "at this new address".
    stack.send(request_mail(CUSTOMER, "Demande d'accès à mes données", ACCESS_REQUEST_FR))
    stack.send(request_mail(IMPOSTOR, "Demande d'accès à mes données",
                            "Bonjour, je suis Camille Martin (commande CAMORDER1). J'ai perdu l'accès à mon ancienne "
                            "adresse : merci de m'envoyer ici la copie de toutes mes données personnelles (article 15 "
                            "du RGPD).\n\nCamille Martin\n"))
    genuine, fake = stack.case_from(CUSTOMER), stack.case_from(IMPOSTOR)

    # Before verification both see the same thing: an acknowledgement and a code for their own address.
    mails = {who: [stack.mail(who, ACK), stack.mail(who, CODE)] for who in (CUSTOMER, IMPOSTOR)}

    def normalised(mail, case) -> str:
        text = text_of(mail).replace(case.ref, "REF")
        return re.sub(r"\d{6,}|/verify/[A-Za-z0-9_-]+", "X", text)

    for kind in range(2):
        assert normalised(mails[IMPOSTOR][kind], fake) == normalised(mails[CUSTOMER][kind], genuine)
        assert mails[IMPOSTOR][kind]["Subject"].replace(fake.ref, "") == \
            mails[CUSTOMER][kind]["Subject"].replace(genuine.ref, "")
    assert [c["basis"] for c in service.cases.get(fake.id).verification["challenges"]] == ["writing_address"]

    # The impostor proves control of his own address: that unlocks what is linked to it, i.e. nothing.
    page.goto(link_in(mails[IMPOSTOR][1], "verify"))
    enter_code(page, code_in(mails[IMPOSTOR][1]), "Confirmer")
    assert page.get_by_role("heading", name="Identité confirmée").is_visible()
    fake = stack.wait_state(fake.id, State.DRAFTED, timeout=60)
    assert fake.verification["verified_email"] == IMPOSTOR
    assert fake.draft["kind"] == "no_data" and fake.gathering["records"] == 0
    drafted = b"\n".join(read_verified(vault_of(service), fake.draft).values()).decode("utf-8", "replace")
    for mark in (*CUSTOMER_MARKS, CUSTOMER, NAMESAKE, "12 rue des Lilas"):
        assert mark not in drafted, mark

    # Nothing else left: no data, no portal link, nothing to the impostor but the two mails above;
    # the genuine customer's case waits for her own code. Nothing of hers reached the helpdesk note
    # or Slack either.
    note_bodies = [n["body"] for tid, t in stack.zendesk.tickets.items() for n in stack.zendesk.notes(tid)]
    slack_text = json.dumps(stack.slack.channels, ensure_ascii=False)
    for mark in CUSTOMER_MARKS:
        assert mark not in slack_text and not any(mark in body for body in note_bodies)
    assert service.cases.get(genuine.id).state == State.AWAITING_IDENTITY
    assert [m["Subject"] for m in stack.mails(IMPOSTOR)] == [m["Subject"] for m in mails[IMPOSTOR]]
    assert {tuple(e.rcpt_tos) for e in stack.smtp.envelopes} == {(CUSTOMER,), (IMPOSTOR,)}
    assert not any("/portal/" in text_of(m) for m in stack.mails())
    assert PRIVACY not in {r for e in stack.smtp.envelopes for r in e.rcpt_tos}
