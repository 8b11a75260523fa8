"""The `dsarbot` command: serve, demo, deadline, audit, classify, and the commands integrations add."""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Callable

from bot import clock
from bot.config import ConfigError, load_config

#: Sub-commands added by other modules: name -> (configure parser, run). Kept as import paths so
#: that `dsarbot deadline` does not import Flask or the integrations.
EXTRA_COMMANDS: dict[str, str] = {
    "store": "bot.store.migrate",
    "agent": "bot.agent_cli",
    "draft": "bot.drafting.cli",
    "sources": "bot.sources_cli",
    "classify": "bot.cli_classify",
}


def _configure_logging(level: str) -> None:
    from bot.logs import configure

    configure(level)


def cmd_deadline(args: argparse.Namespace) -> int:
    try:
        received = date.fromisoformat(args.received)
    except ValueError:
        print(f"dsarbot deadline: {args.received!r} is not a date (use YYYY-MM-DD)", file=sys.stderr)
        return 2
    jurisdiction = clock.Jurisdiction(country=None if args.country.lower() in ("", "none") else args.country,
                                      subdivision=args.subdivision or None)
    try:
        clock.validate_jurisdiction(jurisdiction)
    except clock.UnknownCalendar as exc:
        print(f"dsarbot deadline: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(clock.deadlines(received, jurisdiction).as_json()))
    return 0


def _load(args: argparse.Namespace):
    overrides = {"service": {"data_dir": args.data_dir}} if getattr(args, "data_dir", None) else None
    return load_config(args.config, overrides=overrides)


def cmd_audit(args: argparse.Namespace) -> int:
    from bot.service import open_audit
    from bot.store import open_store

    config = _load(args)
    store = open_store(config.store.url, config.data_path)
    audit = open_audit(config, store)
    try:
        return _audit_command(args, config, store, audit)
    finally:
        store.close()


def _audit_command(args: argparse.Namespace, config, store, audit) -> int:  # noqa: ANN001
    if args.audit_command == "verify":
        result = audit.verify()
        if result.ok:
            print(f"audit trail intact: {result.lines} events")
            return 0
        print(f"audit trail BROKEN at line {result.broken_line}: {result.reason}")
        return 1
    from bot.config import jurisdiction_of
    from bot.models import Case
    from bot.request_register import to_csv

    cases = [Case.from_doc(d) for d in store.find("cases")]
    text = to_csv(cases, jurisdiction_of(config))
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.runtime import serve

    config = _load(args)
    _configure_logging(config.service.log_level)
    return serve(config)


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    _configure_logging("INFO")
    return run_demo(data_dir=args.data_dir, host=args.host, port=args.port, keep=args.keep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dsarbot", description=__doc__)
    parser.add_argument("--config", "-c", default=os.environ.get("DSARBOT_CONFIG") or None,
                        help="TOML configuration file (see config/dsarbot.example.toml); default: $DSARBOT_CONFIG")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the service (web app, webhooks, mailbox, scheduler)")
    p.add_argument("--data-dir", help="override [service] data_dir")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="run the service on a fresh data dir with a seeded demo shop")
    p.add_argument("--data-dir", default="demo-data", help="where the demo keeps its data (wiped first)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--keep", action="store_true", help="keep the data dir from a previous demo")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("deadline", help="print the legal due dates for a date of receipt, as JSON")
    p.add_argument("received", metavar="RECEIVED_DATE", help="YYYY-MM-DD")
    p.add_argument("--country", default="FR", help="ISO country code for public holidays ('none': weekends only)")
    p.add_argument("--subdivision", default="", help="e.g. 57 or alsace-moselle, ENG, BY")
    p.set_defaults(func=cmd_deadline)

    p = sub.add_parser("audit", help="verify the audit trail or export the register of requests")
    p.add_argument("audit_command", choices=["verify", "export"])
    p.add_argument("--format", choices=["csv"], default="csv")
    p.add_argument("--out", help="write the export here instead of stdout")
    p.add_argument("--data-dir", help="override [service] data_dir")
    p.set_defaults(func=cmd_audit)

    for name, path in EXTRA_COMMANDS.items():
        module = __import__(path, fromlist=["configure"])
        module.configure(sub.add_parser(name, help=module.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"dsarbot: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
