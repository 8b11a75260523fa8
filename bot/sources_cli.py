"""`dsarbot sources check`: validate the register and playbooks, and test every data source's connection."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "check the register, the playbooks and every data source ([playbooks] sources)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources_command", choices=["check"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.config import load_config
    from bot.gathering import build_gatherer
    from bot.models import utcnow

    config = load_config(args.config)
    if not config.playbooks.sources:
        print("no data sources configured: add [[playbooks.sources]] tables to the configuration")
        return 1
    gatherer = build_gatherer(config.playbooks, config.data_path, utcnow, Path.cwd())  # ConfigError: main() says it
    problems = gatherer.check()
    for name, source in gatherer.sources.items():
        problem = problems.get(name)
        print(f"{'FAIL' if problem else 'ok  '} {name} ({source.system}){': ' + problem if problem else ''}")
    return 1 if any(problems.values()) else 0
