"""Parse + classify throughput on one core, over the shared corpus repeated.

    python -m bench.classify_throughput [--seconds 3]

Prints mails per CPU second for parsing, classifying, and both: for the whole corpus, for the
corpus without its few newsletters over 50 KB (images and PDFs), and for typical customer mail
(the held-out messages of tests/data as complete multipart mails with provider headers).
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.classifier import make_classifier  # noqa: E402
from bot.mailparse import parse_email  # noqa: E402
from tests.shared import shared_dir  # noqa: E402

TYPICAL_MAX_BYTES = 50 * 1024


def _rate(func, items: list, seconds: float) -> float:
    """Items per CPU second of this process (other load on the machine does not count), repeating
    the list until `seconds` of CPU time have passed (at least once)."""
    gc.collect()
    done = 0
    start = time.process_time()
    while True:
        for item in items:
            func(item)
        done += len(items)
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return done / elapsed


HELDOUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "classifier_heldout.yaml"


def customer_mails() -> list[bytes]:
    """The held-out messages as complete mails, the way a mailbox receives them from a big provider:
    a few Received and authentication headers, and a text part with its HTML twin."""
    import yaml
    from email.message import EmailMessage
    from html import escape

    data = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    raws = []
    for number, item in enumerate(data["requests"] + data["not_requests"]):
        mail = EmailMessage()
        for hop in range(3):
            mail["Received"] = (f"from mx{hop}.mail.example.net (mx{hop}.mail.example.net [192.0.2.{hop + 10}])"
                                f" by mail.shop.example with ESMTPS id {number:08d}{hop};"
                                f" Mon, 2 Mar 2026 09:30:0{hop} +0000")
        mail["Authentication-Results"] = "mail.shop.example; dkim=pass header.d=example.net; spf=pass"
        mail["DKIM-Signature"] = "v=1; a=rsa-sha256; d=example.net; s=s1; bh=" + "A" * 44 + "; b=" + "B" * 340
        mail["From"] = f"Customer {number} <customer{number}@example.net>"
        mail["To"] = "confidentialite@shop.example"
        mail["Subject"] = item.get("subject") or "Question"
        mail["Date"] = "Mon, 02 Mar 2026 09:30:00 +0000"
        mail["Message-ID"] = f"<heldout-{number}@example.net>"
        text = item["text"] + "\n\n--\nSent from my phone\n"
        mail.set_content(text)
        html = "<html><body><div dir='ltr'>" + escape(text).replace("\n", "<br>") + "</div></body></html>"
        mail.add_alternative(html, subtype="html")
        raws.append(bytes(mail))
    return raws


def measure(seconds: float = 3.0) -> dict[str, dict[str, float]]:
    raws = [p.read_bytes() for p in sorted((shared_dir() / "corpus").glob("*.eml"))]
    classify = make_classifier(["confidentialite@shop.example"])
    classify(parse_email(raws[0]).message)  # load the lexicons outside the measurement
    out = {}
    for name, subset in (("corpus", raws), ("corpus<50KB", [r for r in raws if len(r) <= TYPICAL_MAX_BYTES]),
                         ("customer", customer_mails())):
        messages = [parse_email(r).message for r in subset]
        out[name] = {
            "mails": len(subset), "avg_kb": sum(map(len, subset)) / len(subset) / 1024,
            "parse": _rate(parse_email, subset, seconds),
            "classify": _rate(classify, messages, seconds),
            "parse_and_classify": _rate(lambda raw: classify(parse_email(raw).message), subset, seconds),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent on each measurement")
    args = parser.parse_args(argv)
    for name, figures in measure(args.seconds).items():
        print(f"{name:<11} ({figures['mails']} mails, {figures['avg_kb']:.1f} KB on average): "
              f"parse {figures['parse']:,.0f}/s | classify {figures['classify']:,.0f}/s | "
              f"parse+classify {figures['parse_and_classify']:,.0f} mails/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
