"""`dsarbot demo`: the whole product on a laptop: requests arrive by mail, the desk, the customer's pages.

Requests arrive in a local Maildir folder (`<data dir>/maildir/new/`), read by the real Maildir
channel (integrations.maildir) with the real parser, classifier and intake; mail we send is written
to `<data dir>/sent-mail/` and shown on the desk's "Sent mail" page. The shop is the embedded demo
shop (bot.demo_shop). Seeding goes through the same code paths as production (a delivery into the
folder, CaseBook for a request an agent typed in), never around them.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.config import Config, load_config
from bot.demo_shop import DEMO_CUSTOMERS, demo_sources, seed_demo_shop
from bot.i18n import t
from bot.models import Case, Channel, Person, Right, utcnow
from bot.service import Service, build_service

DEMO_AGENT = "agent"
INBOX = Path(__file__).with_name("demo_inbox")  # the seeded mails, as a customer's mail program wrote them
BANNER = Path(__file__).parent / "templates" / "demo"
#: Whose request the banner walks through (the first seeded mail): a customer on file.
WALKED = DEMO_CUSTOMERS[0]["email"]
READY_SECONDS = 60  # how long the banner waits for the walked request's code mail

#: A request an agent recorded at the desk weeks ago (a phone call): shows a case due soon.
RECORDED = [(25, [Right.ACCESS, Right.PORTABILITY], "fr", Person(email="leo.dubois@example.fr", name="Léo Dubois"))]


def demo_config(data_dir: Path, host: str, port: int, agent_password: str = "",
                **sections: dict[str, Any]) -> Config:
    """The demo's configuration; `sections` add to it (tests plug in a mailbox or Slack)."""
    from werkzeug.security import generate_password_hash

    agents = {DEMO_AGENT: generate_password_hash(agent_password)} if agent_password else {}
    overrides: dict[str, dict[str, Any]] = {
        "service": {"data_dir": str(data_dir), "host": host, "port": port,
                    "base_url": f"http://{host}:{port}", "shop_name": "La Boutique Démo",
                    "privacy_address": "confidentialite@boutique-demo.example"},
        "smtp": {"from_address": "confidentialite@boutique-demo.example",
                 "from_name": "La Boutique Démo - Données personnelles"},
        "desk": {"agents": agents},
        "maildir": {"enabled": True, "path": str(Path(data_dir) / "maildir"), "poll_seconds": 2},
        # The embedded shop's systems (bot.demo_shop), described by config/register.yaml.
        "playbooks": {"sources": demo_sources(Path(data_dir) / "shop")},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_config(None, environ={}, overrides=overrides)


def deliver_mail(maildir: Path, raw: bytes, name: str, at: datetime) -> Path:
    """Deliver one mail the way a mail server does: write into tmp/, rename into new/."""
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    unique = f"{int(at.timestamp())}.demo{secrets.token_hex(4)}.{name}"
    tmp = maildir / "tmp" / unique
    tmp.write_bytes(raw)
    os.utime(tmp, (at.timestamp(), at.timestamp()))
    target = maildir / "new" / unique
    os.replace(tmp, target)
    return target


def seed(service: Service) -> None:
    """The demo shop, a request recorded at the desk weeks ago, and today's mail arriving in the folder."""
    now = service.now()
    seed_demo_shop(service.data_dir / "shop", now)
    for days_ago, rights, language, person in RECORDED:
        service.cases.open(received_at=now - timedelta(days=days_ago, hours=2), rights=[str(r) for r in rights],
                           language=language, channel=str(Channel.DESK), requester=person)
    for path in sorted(INBOX.glob("*.eml")):
        deliver_mail(Path(service.config.maildir.path), path.read_bytes(), path.stem, now)


def walked_case(service: Service) -> Case | None:
    return next((c for c in service.cases.all() if c.requester.email == WALKED), None)


def wait_for_code(service: Service, seconds: float = READY_SECONDS,
                  pause: Callable[[float], None] = time.sleep) -> tuple[Case | None, str]:
    """The walked request's case and its verification link, once its code mail is out (bounded wait)."""
    from bot.verification import verifier_of

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        case = walked_case(service)
        challenges = case.verification.get("challenges", []) if case else []
        if case and challenges and challenges[0].get("sent_at"):
            return case, verifier_of(service).link_token(case, 0)
        pause(0.2)
    return walked_case(service), ""


def banner(service: Service, password: str, case: Case | None, token: str) -> str:
    env = Environment(loader=FileSystemLoader(BANNER), undefined=StrictUndefined, keep_trailing_newline=True)
    base = service.config.service.base_url.rstrip("/")
    return env.get_template("banner.txt").render(
        base=base, agent=DEMO_AGENT, password=password, case=case, verify_link=f"{base}/verify/{token}" if token else "",
        maildir=Path(service.config.maildir.path).resolve(), data_dir=service.data_dir.resolve())


class Narrator:
    """Prints one line per change of state on the console, so the pipeline can be watched (no personal data)."""

    def __init__(self, service: Service, out: Callable[[str], None] = print) -> None:
        self.service = service
        self.out = out
        self.seen: dict[str, str] = {}
        self.ignored = 0

    def _time(self) -> str:
        return f"{self.service.now().astimezone():%H:%M:%S}"

    def __call__(self) -> None:
        for case in sorted(self.service.cases.all(), key=lambda c: c.received_at):
            state = str(case.state)
            if self.seen.get(case.id) != state:
                self.seen[case.id] = state
                what = t(f"demo.narrate.{state}", "en", channel=case.channel, rights=", ".join(case.rights))
                self.out(f"  {self._time()}  {case.ref}  {t(f'state.{state}', 'en')}: {what}")
        ignored = self.service.store.count("ignored")
        if ignored > self.ignored:
            for _ in range(ignored - self.ignored):
                self.out(f"  {self._time()}  {'-' * 16}  {t('demo.narrate.ignored', 'en')}")
            self.ignored = ignored


def _quiet_console(log_file: Path) -> None:
    """The service's log goes to a file; the console keeps the banner and the narration readable."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(logging.ERROR)
    root.addHandler(console)
    for noisy in ("apscheduler", "weasyprint", "fontTools", "waitress.queue"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_demo(data_dir: str, host: str, port: int, keep: bool = False) -> int:
    from bot.runtime import serve_app, start_background

    path = Path(data_dir)
    if path.exists() and not keep:
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    _quiet_console(path / "dsarbot.log")
    password = secrets.token_urlsafe(9)  # new each start: a demo left running is not an open door
    config = demo_config(path, host, port, agent_password=password)
    service = build_service(config, now=utcnow)
    if not keep:
        seed(service)
    narrator = Narrator(service)
    service.add_job("demo.narrate", narrator, seconds=1)
    start_background(service)

    def announce() -> None:
        case, token = wait_for_code(service)
        print(banner(service, password, case, token), flush=True)

    threading.Thread(target=announce, name="demo-banner", daemon=True).start()
    serve_app(service, host, port)
    return 0
