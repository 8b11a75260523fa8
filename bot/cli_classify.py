"""`dsarbot classify FILE...`: one JSON line per .eml file (kind, rights, language, confidence).

Imports nothing heavy at module level: `bot.cli` loads every command's module to build its parser,
and `dsarbot deadline` must stay quick.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "classify .eml files: one JSON line per file (kind, rights, language, confidence)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help=".eml files (raw RFC 5322 messages)")
    parser.add_argument("--cues", action="store_true", help="also print the cues that decided")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.classifier import classifier_for, make_classifier
    from bot.mailparse import parse_email

    if getattr(args, "config", None):
        from bot.config import load_config

        classify = classifier_for(load_config(args.config))
    else:
        classify = make_classifier()
    status = 0
    for name in args.files:
        try:
            raw = Path(name).read_bytes()
        except OSError as exc:
            print(json.dumps({"file": name, "error": exc.strerror or type(exc).__name__}), flush=True)
            status = 1
            continue
        parsed = parse_email(raw)
        result = classify(parsed.message)
        line: dict[str, object] = {"file": name, "kind": result.kind, "rights": result.rights,
                                   "language": result.language, "confidence": round(result.confidence, 2)}
        if parsed.message.parse_error:
            line["parse_error"] = parsed.message.parse_error
        if args.cues:
            line["cues"] = result.cues
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return status
