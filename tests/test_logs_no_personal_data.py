"""No personal data and no secret in any log line: the demo's whole flow with every logger at DEBUG.

The demo service (bot/demo.py, its shop bot/demo_shop.py) with its mailbox on a throw-away Dovecot,
Slack on the local fake, and its web app served by waitress. A customer's request mail arrives
through the mailbox, is acknowledged, verified by code, gathered from every demo source, drafted
(PDF included), approved on the desk, delivered, and downloaded from the portal (tests/demo_flow.py).
Every logger logs at DEBUG into one handler (the libraries' own levels are reset; only the levels
dsarbot pins on purpose, in bot/logs.py, stay), and each line, tracebacks included, is searched for
the demo people's e-mails, names, phones, postal addresses, birthdays, IPs, card numbers and order
references, the words of the request, and the secrets (codes, link tokens, passwords, API tokens).
"""
from __future__ import annotations

import importlib
import json
import logging
import re
from collections import Counter
from typing import Iterator

import pytest

from bot.demo_shop import DEMO_CUSTOMERS, OTHER_PERSON
from bot.logs import QUIET
from tests.demo_flow import AGENT_PASSWORD, DemoFlow, request_mail
from tests.fakes import slack as fake_slack
from tests.fakes.slack import FakeSlack
from tests.servers.dovecot import dovecot, imap_account  # noqa: F401 (fixtures)

#: Imported first so that whatever level they give themselves at import is reset below.
LIBRARIES = ["waitress", "werkzeug", "urllib3", "requests", "imapclient", "slack_sdk", "slack_bolt", "weasyprint",
             "fontTools.subset", "fontTools.ttLib", "mailparser", "apscheduler", "sqlalchemy", "tinydb", "pyzipper",
             "jinja2", "flask", "holidays", "pydyf", "tinycss2", "cssselect2", "PIL", "pymysql", "cryptography"]

REQUEST_LINES = [
    "Bonjour, je suis Camille Martin, née le 17/04/1988,",
    "domiciliée 12 rue des Lilas, 69003 Lyon, joignable au 06 12 34 56 78.",
    "En application de l'article 15 du RGPD, je souhaite obtenir une copie",
    "de toutes les données personnelles que vous détenez sur moi, y compris",
    "celles de ma commande KXQBRNTWE et de mon programme de fidélité FID-0001.",
    "Mon voisin Jean-Baptiste Lefebvre-Quintin peut en témoigner.",
]


#: People attach their ID to such requests, named after themselves.
ATTACHMENT_NAME = "CNI-Camille-MARTIN-recto-verso.pdf"


class Capture(logging.Handler):
    """Every record, formatted with its traceback, whatever its logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def all_logs() -> Iterator[Capture]:
    for name in LIBRARIES:
        importlib.import_module(name)
    manager = logging.root.manager
    saved = {name: logger.level for name, logger in manager.loggerDict.items() if isinstance(logger, logging.Logger)}
    for name in saved:  # dsarbot pins its own exceptions (bot.logs.QUIET) when the service is built
        logging.getLogger(name).setLevel(logging.NOTSET)
    root = logging.getLogger()
    root_level = root.level
    root.setLevel(logging.DEBUG)
    capture = Capture()
    root.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(root_level)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def personal_data() -> dict[str, str]:
    """value -> what it is, for every demo person (values short enough to be common words are left out)."""
    found: dict[str, str] = {}
    for person in [*DEMO_CUSTOMERS, OTHER_PERSON]:
        who = person.get("email", "")
        name = person.get("name") or f"{person['firstname']} {person['lastname']}"
        values = {"email": who, "name": name, "last name": name.split()[-1], "phone": person.get("phone"),
                  "phone digits": re.sub(r"\D", "", person.get("phone") or ""), "birthday": person.get("birthday"),
                  "ip": person.get("ip"), "visitor id": person.get("visitor_id")}
        address = person.get("address") or {}
        values.update({"street": address.get("address1"), "postcode and city":
                       f"{address.get('postcode')} {address.get('city')}" if address else None})
        for order in person.get("orders", []):
            values.update({f"order {order['id']}": order["reference"], f"card {order['id']}": order["card"],
                           f"tracking {order['id']}": order["tracking"]})
        if person.get("loyalty"):
            values["loyalty id"] = person["loyalty"]["member_id"]
        for kind, value in values.items():
            if value and len(value) >= 5:
                found[value] = f"{kind} of {who}"
    for line in REQUEST_LINES:
        found[line] = "the request's text"
    found["Lefebvre-Quintin"] = "a name in the request's text"
    found[ATTACHMENT_NAME] = "the name of the file attached to the request"
    return found


def secrets_of(flow: DemoFlow, imap_password: str) -> dict[str, str]:
    found = {AGENT_PASSWORD: "the agent's password", imap_password: "the mailbox password",
             fake_slack.TOKEN: "the Slack bot token", fake_slack.SIGNING_SECRET: "the Slack signing secret",
             (flow.service.data_dir / "secret.key").read_text().strip(): "the service's secret key"}
    for mail in flow.sent_mail():
        body = flow.body(mail)
        for code in re.findall(r"(?m): (\d{6,})\s*$", body):
            found[code] = f"a one-time code ({mail['Subject']})"
        for token in re.findall(r"/(?:verify|portal)/([A-Za-z0-9_-]{16,})", body):
            found[token] = f"a link token ({mail['Subject']})"
    return found


def test_the_whole_demo_flow_logs_no_personal_data_and_no_secret(tmp_path, imap_account, all_logs):  # noqa: F811
    camille = DEMO_CUSTOMERS[0]
    slack_api = FakeSlack().start()
    flow = DemoFlow.start(tmp_path / "demo", imap_account, http=True, slack={
        "enabled": True, "bot_token": fake_slack.TOKEN, "signing_secret": fake_slack.SIGNING_SECRET,
        "channel": fake_slack.CHANNEL, "approvers": ["U0APPROVER"], "api_base_url": slack_api.base_url})
    try:
        raw = request_mail(camille["email"], f"{camille['firstname']} {camille['lastname']}",
                           "Demande d'accès à mes données (RGPD)", "\n".join(REQUEST_LINES) + "\n",
                           [(ATTACHMENT_NAME, "application/pdf", b"%PDF-1.4 a scan of an identity card")])
        case, archive = flow.whole_request(raw)
        slack_api.add_user("U0AGENT")
        answer = flow.slack_command(slack_api, "U0AGENT", case.ref)  # an agent looks the case up in Slack
        assert case.ref in json.dumps(answer)
        secrets = secrets_of(flow, imap_account.password)
    finally:
        flow.close()
        slack_api.stop()
    slack_api.api.assert_clean()
    assert case.state == "delivered" and archive.startswith(b"PK"), flow.events

    searched = {**personal_data(), **secrets}
    leaks = [(line.split(" ", 2)[1].rstrip(":"), what, line) for line in all_logs.lines
             for value, what in searched.items() if value in line]
    by_logger = Counter(name for name, _, _ in leaks)
    assert not leaks, (f"{len(leaks)} leak(s) in {len(all_logs.lines)} log lines, by logger: {dict(by_logger)}\n"
                       + "\n".join(f"{what} in: {line[:240]}" for _, what, line in leaks[:30]))

    # ...and the capture could have seen them:
    assert len(all_logs.lines) > 50, "the capture saw almost nothing: is logging really at DEBUG?"
    assert any(line.startswith("DEBUG ") for line in all_logs.lines)
    heard = {line.split(" ", 2)[1].rstrip(":").split(".")[0] for line in all_logs.lines}
    assert {"bot", "integrations", "slack_sdk", "sqlalchemy"} <= heard, sorted(heard)
    for name in ("waitress", "werkzeug", "urllib3", "imapclient", "slack_sdk", "slack_bolt", "weasyprint"):
        level = logging.getLogger(name).getEffectiveLevel()  # could it have said anything?
        assert level == QUIET.get(name, (logging.DEBUG,))[0], f"{name} logs at {logging.getLevelName(level)} only"
    # A level set during the flow, by a library or by a module of ours, would hide lines from this test:
    # only the pins bot.logs declares, with their reasons, may stand.
    bolt = QUIET["integrations.slack_app.bolt"][0]  # bolt gives its middlewares and listeners the app logger's level
    pinned = {name: logging.getLevelName(logger.level) for name, logger in logging.root.manager.loggerDict.items()
              if isinstance(logger, logging.Logger) and logger.level and name not in QUIET
              and not ((name == "dsarbot" or name.startswith(("slack_bolt.", "dsarbot:"))) and logger.level == bolt)}
    assert not pinned, f"loggers that set their own level during the flow: {pinned}"
