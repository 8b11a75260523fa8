"""`dsarbot draft CASE_REF --out DIR`: the letter and export files of a case, decrypted into a folder.

For agents who prefer files, and for checks. The files are read from the vault and verified against
the draft hash first. `--regenerate` gathers and drafts again (the case must not be approved yet;
a new draft needs a new approval).
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

HELP = "write a case's draft letter and export files into a folder (optionally re-gather and re-draft)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case_ref", metavar="CASE_REF", help="e.g. DSR-260301-ABCDE")
    parser.add_argument("--out", required=True, help="folder to write the files into (created, mode 700)")
    parser.add_argument("--regenerate", action="store_true", help="gather from the sources and draft again first")
    parser.add_argument("--data-dir", help="override [service] data_dir")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.cases import CaseNotFound, IllegalTransition
    from bot.cli import _load
    from bot.drafting.files import read_verified
    from bot.service import build_service
    from bot.vault import VaultError, safe_name, vault_of

    service = build_service(_load(args))
    try:
        try:
            case = service.cases.by_ref(args.case_ref)
        except CaseNotFound:
            print(f"dsarbot draft: no case {args.case_ref}", file=sys.stderr)
            return 1
        if args.regenerate:
            from bot.pipeline import prepare

            if service.component("gatherer") is None or service.component("drafter") is None:
                print("dsarbot draft: --regenerate needs a gatherer and a drafter (configure the sources)",
                      file=sys.stderr)
                return 1
            try:
                service.cases.transition(case.id, "start_gathering", f"cli:{getpass.getuser()}")
            except IllegalTransition as exc:
                print(f"dsarbot draft: {exc}", file=sys.stderr)
                return 1
            outcome = prepare(service, case.id)
            if not outcome.get("complete"):
                print(f"dsarbot draft: gathering incomplete, no new draft ({', '.join(outcome.get('failed', []))})",
                      file=sys.stderr)
                return 1
            case = service.cases.get(case.id)
        if not case.draft.get("files"):
            print(f"dsarbot draft: case {case.ref} has no draft yet (state {case.state})", file=sys.stderr)
            return 1
        try:
            contents = read_verified(vault_of(service), case.draft)
        except VaultError as exc:
            print(f"dsarbot draft: {exc}", file=sys.stderr)
            return 1
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, data in contents.items():
            target = out / safe_name(name)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            print(target)
        print(f"draft {case.draft['hash']} ({case.draft.get('kind', '')}, {len(contents)} files) for {case.ref}",
              file=sys.stderr)
        return 0
    finally:
        service.close()
