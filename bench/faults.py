"""Fault-suite figure: kill -9 at sampled checkpoints of the real flow, then count what was lost or doubled.

    python bench/faults.py [--kill-points 100] [--seed 1] [--requests 6] [--store tinydb|postgresql]

Runs the campaign of tests/faults/campaign.py: rounds of `--requests` mails APPENDed to a throw-away
Dovecot, each brought to the end (verified, gathered from the demo shop, drafted, approved,
delivered through the portal, closed; a Zendesk ticket, notes and Slack posts on the way) by
runner lives killed at (checkpoint, n) kill points drawn with the seed, until `--kill-points`
distinct points have killed a life. Every round is then checked
(tests/faults/checks.py). Prints the kill points tried, requests lost (target 0), duplicates by kind
(target 0; mails are at least once over SMTP: a kill between the server's acceptance and the
outbox's record of it sends the mail again, with the same Message-ID, and each such duplicate must
be explained by a kill in that window), the wall time and this command.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults.campaign import run_campaign  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kill-points", type=int, default=100, help="distinct (checkpoint, n) points to kill at")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=6, help="requests per round (one of each demo sender)")
    parser.add_argument("--kills-per-round", type=int, default=8)
    parser.add_argument("--store", choices=["tinydb", "postgresql"], default="tinydb")
    parser.add_argument("--verbose", action="store_true", help="print each kill as it happens")
    args = parser.parse_args()

    started = time.monotonic()
    report = run_campaign(args.kill_points, args.seed, requests_per_round=args.requests,
                          kills_per_round=args.kills_per_round, postgres=args.store == "postgresql",
                          log=print if args.verbose else (lambda line: None))
    findings = report.findings
    kinds = ["cases", "tickets", "notes", "slack_posts", "emails"]
    print(f"command:               python {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(f"store:                 {args.store}")
    print(f"kill points tried:     {report.distinct_points} distinct (checkpoint, n), {len(report.kills)} kills, "
          f"{report.lives} lives, {report.rounds} rounds (+1 uninterrupted census round)")
    print(f"kills by stage:        {json.dumps(report.by_stage())}")
    print(f"requests:              {report.requests}")
    print(f"requests lost:         {findings.lost}  (target 0)")
    print("duplicates:            " + ", ".join(f"{k} {findings.duplicates.get(k, 0)}" for k in kinds)
          + "  (target 0)")
    print(f"  of which emails explained by a kill between SMTP acceptance and the outbox record: "
          f"{findings.duplicates.get('emails', 0) - findings.unexplained}; unexplained: {findings.unexplained}")
    print(f"problems:              {len(findings.problems)}")
    for problem in findings.problems[:20]:
        print(f"  - {problem}")
    print(f"wall time:             {time.monotonic() - started:.0f} s")
    return 0 if not findings.problems and not findings.lost else 1


if __name__ == "__main__":
    sys.exit(main())
