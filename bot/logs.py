"""Logging: the service's set-up, and the library loggers kept quiet because they would log personal data.

Whatever level the operator chooses (`[service] log_level`, DEBUG included), these loggers never go
below their pin: each would otherwise write customers' data or secrets into the logs. Every pin is
applied by `quiet_libraries()`, which `build_service` calls, so tests and embedded uses get them too;
tests/test_logs_no_personal_data.py runs the whole demo at DEBUG against this table.
"""
from __future__ import annotations

import logging

#: logger name -> (the lowest level it may log at, why).
QUIET: dict[str, tuple[int, str]] = {
    "imapclient": (logging.INFO, "at DEBUG it logs every IMAP command and response: FETCH answers are whole mails"),
    "sqlalchemy.engine": (logging.WARNING, "at INFO it logs every statement with its parameters (the subject's "
                                           "e-mail), at DEBUG every row fetched from the shop's database"),
    "mailparser": (logging.ERROR, "at DEBUG it logs attachment file names (people name their ID scans after "
                                  "themselves); it warns about every part type it does not render"),
    "urllib3.connectionpool": (logging.INFO, "at DEBUG it logs every request line, query string included: the "
                                             "subject's e-mail in SaaS lookups, WooCommerce's query credentials"),
    "integrations.slack_app.bolt": (logging.WARNING, "bolt logs request bodies (what Slack users typed) at INFO "
                                                     "and DEBUG"),
}

#: Progress chatter, not personal data: kept out of the service log at any level but DEBUG's.
CHATTY = ("apscheduler", "weasyprint", "fontTools", "waitress.queue")


def quiet_libraries() -> None:
    for name, (level, _why) in QUIET.items():
        logging.getLogger(name).setLevel(level)


def configure(level: str) -> None:
    """The service's log format and level (`[service] log_level`), with the pins above."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
    quiet_libraries()
