"""`dsarbot demo`: the service on a fresh embedded store with a seeded demo shop.

What a newcomer sees: requests arriving, each with its legal clock, in the built-in desk.
Seeding goes through the same code paths as production (CaseBook, intake), never around them.
"""
from __future__ import annotations

import secrets
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.config import Config, load_config
from bot.demo_shop import demo_sources, seed_demo_shop
from bot.models import Channel, Person, Right, utcnow
from bot.service import Service, build_service

DEMO_CASES = [
    # (days ago received, rights, language, channel, requester)
    (27, [Right.ACCESS], "fr", Channel.EMAIL, Person(email="camille.martin@example.fr", name="Camille Martin")),
    (12, [Right.ERASURE, Right.WITHDRAW_CONSENT], "en", Channel.FORM, Person(email="sam.jones@example.co.uk",
                                                                             name="Sam Jones")),
    (2, [Right.ACCESS, Right.PORTABILITY], "fr", Channel.EMAIL, Person(email="leo.dubois@example.fr",
                                                                       name="Léo Dubois")),
    (40, [Right.RECTIFICATION], "fr", Channel.DESK, Person(email="ines.roux@example.fr", name="Inès Roux")),
]


DEMO_AGENT = "agent"


def demo_config(data_dir: Path, host: str, port: int, agent_password: str = "",
                **sections: dict[str, Any]) -> Config:
    """The demo's configuration; `sections` add to it (tests plug in a mailbox or Slack)."""
    from werkzeug.security import generate_password_hash

    agents = {DEMO_AGENT: generate_password_hash(agent_password)} if agent_password else {}
    overrides: dict[str, dict[str, Any]] = {
        "service": {"data_dir": str(data_dir), "host": host, "port": port,
                    "base_url": f"http://{host}:{port}", "shop_name": "La Boutique Démo"},
        "desk": {"agents": agents},
        # The embedded shop's systems (bot.demo_shop), described by config/register.yaml.
        "playbooks": {"sources": demo_sources(Path(data_dir) / "shop")},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_config(None, environ={}, overrides=overrides)


def seed(service: Service) -> None:
    now = service.now()
    seed_demo_shop(service.data_dir / "shop", now)
    for days_ago, rights, language, channel, person in DEMO_CASES:
        case = service.cases.open(received_at=now - timedelta(days=days_ago, hours=2), rights=[str(r) for r in rights],
                                  language=language, channel=str(channel), requester=person)
        if days_ago >= 40:
            service.cases.transition(case.id, "verify", "system")


def run_demo(data_dir: str, host: str, port: int, keep: bool = False) -> int:
    from bot.runtime import serve_app, start_background

    path = Path(data_dir)
    if path.exists() and not keep:
        shutil.rmtree(path)
    password = secrets.token_urlsafe(9)  # new each start: a demo left running is not an open door
    config = demo_config(path, host, port, agent_password=password)
    service = build_service(config, now=utcnow)
    if not keep:
        seed(service)
    start_background(service)
    print(f"\n  dsarbot demo is running: open http://{host}:{port}/desk/\n"
          f"  log in as {DEMO_AGENT!r} with password {password!r}\n"
          f"  data in {path.resolve()} (wiped at the next demo start; --keep keeps it)\n"
          f"  stop with Ctrl+C\n", flush=True)
    serve_app(service, host, port)
    return 0
