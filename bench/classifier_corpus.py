"""Accuracy of the classifier on the shared corpus (../shared/corpus/labels.tsv).

    python -m bench.classifier_corpus [--json]

Prints accuracy of kind, main right, full rights set and language: overall, per language and per
right, then every file classified wrongly. The corpus measures; it is never a source of lexicon
phrases (see bot/classifier/lexicons/README.md).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.classifier import make_classifier  # noqa: E402
from bot.mailparse import parse_email  # noqa: E402
from tests.shared import shared_dir  # noqa: E402

OWN_ADDRESSES = ["confidentialite@shop.example"]  # the corpus letters are addressed to it, as in production


@dataclass
class Row:
    file: str
    kind: str
    rights: list[str]
    language: str
    got_kind: str = ""
    got_rights: list[str] = field(default_factory=list)
    got_language: str = ""
    cues: list[str] = field(default_factory=list)

    @property
    def kind_ok(self) -> bool:
        return self.kind == self.got_kind

    @property
    def main_ok(self) -> bool:
        return bool(self.got_rights) and self.got_rights[0] == self.rights[0]

    @property
    def set_ok(self) -> bool:
        return set(self.got_rights) == set(self.rights)

    @property
    def language_ok(self) -> bool:
        return self.language == self.got_language


@dataclass
class Report:
    rows: list[Row]

    @property
    def requests(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "request"]

    @property
    def automatic_taken_as_requests(self) -> list[Row]:
        return [r for r in self.rows if r.kind in ("auto_reply", "bounce") and r.got_kind == "request"]

    def accuracy(self) -> dict[str, float]:
        return {"kind": _rate(self.rows, "kind_ok"), "main_right": _rate(self.requests, "main_ok"),
                "rights_set": _rate(self.requests, "set_ok"), "language": _rate(self.rows, "language_ok")}

    def per_language(self) -> dict[str, dict[str, float | int]]:
        groups: dict[str, list[Row]] = defaultdict(list)
        for row in self.rows:
            groups[row.language].append(row)
        out = {}
        for language, rows in sorted(groups.items()):
            requests = [r for r in rows if r.kind == "request"]
            out[language] = {"files": len(rows), "kind": _rate(rows, "kind_ok"), "language": _rate(rows, "language_ok"),
                             "requests": len(requests), "main_right": _rate(requests, "main_ok"),
                             "rights_set": _rate(requests, "set_ok")}
        return out

    def per_right(self) -> dict[str, dict[str, float | int]]:
        """Per right: as the main right (accuracy), and anywhere in the set (recall / precision)."""
        out = {}
        rights = sorted({r for row in self.requests for r in row.rights})
        for right in rights:
            main = [r for r in self.requests if r.rights[0] == right]
            expected = [r for r in self.requests if right in r.rights]
            predicted = [r for r in self.rows if right in r.got_rights]
            out[right] = {"as_main": len(main), "main_right": _rate(main, "main_ok"),
                          "in_set": len(expected),
                          "recall": sum(right in r.got_rights for r in expected) / len(expected) if expected else 1.0,
                          "precision": sum(right in r.rights for r in predicted) / len(predicted) if predicted else 1.0}
        return out

    def misclassified(self) -> list[Row]:
        return [r for r in self.rows if not (r.kind_ok and r.language_ok and (r.kind != "request" or r.set_ok))]


def _rate(rows: list[Row], attribute: str) -> float:
    return sum(getattr(r, attribute) for r in rows) / len(rows) if rows else 1.0


def evaluate(corpus: Path | None = None) -> Report:
    corpus = corpus or shared_dir() / "corpus"
    classify = make_classifier(OWN_ADDRESSES)
    rows = []
    with open(corpus / "labels.tsv", encoding="utf-8", newline="") as handle:
        for label in csv.DictReader(handle, delimiter="\t"):
            row = Row(label["file"], label["kind"], [r for r in label["rights"].split(",") if r], label["language"])
            result = classify(parse_email((corpus / row.file).read_bytes()).message)
            row.got_kind, row.got_rights, row.got_language, row.cues = (result.kind, result.rights, result.language,
                                                                        result.cues)
            rows.append(row)
    return Report(rows)


def _pct(value: float) -> str:
    return f"{100 * value:5.1f}%"


def print_report(report: Report) -> None:
    acc = report.accuracy()
    print(f"corpus: {len(report.rows)} files, {len(report.requests)} requests")
    print(f"kind {_pct(acc['kind'])} | main right {_pct(acc['main_right'])} | rights set {_pct(acc['rights_set'])}"
          f" | language {_pct(acc['language'])}")
    print(f"auto-replies or bounces taken as requests: {len(report.automatic_taken_as_requests)}")
    print("\nper language        files  kind    language  requests  main right  rights set")
    for language, s in report.per_language().items():
        print(f"  {language:<16} {s['files']:>5}  {_pct(s['kind'])}  {_pct(s['language'])}   {s['requests']:>5}"
              f"     {_pct(s['main_right'])}     {_pct(s['rights_set'])}")
    print("\nper right           as main  main right  in set  recall  precision")
    for right, s in report.per_right().items():
        print(f"  {right:<17} {s['as_main']:>7}  {_pct(s['main_right'])}     {s['in_set']:>5}  {_pct(s['recall'])}"
              f"  {_pct(s['precision'])}")
    wrong = report.misclassified()
    print(f"\nmisclassified: {len(wrong)}")
    for row in wrong:
        print(f"  {row.file}: expected {row.kind} {row.rights} {row.language}, got {row.got_kind} {row.got_rights}"
              f" {row.got_language}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--cues", action="store_true", help="show the cues of misclassified files")
    args = parser.parse_args(argv)
    report = evaluate()
    if args.json:
        print(json.dumps({"accuracy": report.accuracy(), "per_language": report.per_language(),
                          "per_right": report.per_right(),
                          "misclassified": [r.file for r in report.misclassified()]}, indent=2))
    else:
        print_report(report)
        if args.cues:
            for row in report.misclassified():
                print(f"\n{row.file}:\n    " + "\n    ".join(row.cues))
    return 0


if __name__ == "__main__":
    sys.exit(main())
