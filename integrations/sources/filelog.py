"""Find a subject's lines in large log files (JSON lines or CSV, optionally gzipped), streamed in chunks.

A file of several GB is never loaded whole: it is read in blocks of a few MB, and only the lines
whose raw bytes contain one of the subject's identifiers are decoded; then the designated field
must really equal the identifier (an e-mail quoted in another field does not match). E-mails are
searched case-insensitively; other identifiers are searched next to their field name (JSON) or
between separators (CSV), so a customer id `42` does not decode every line holding 420.
"""
from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

from bot.identity import check_kind, normalise_value
from integrations.base import Misconfigured, NotReady

BLOCK = 8 * 1024 * 1024
MAX_LINE = 64 * 1024 * 1024
FORMATS = ("jsonl", "csv")


JSON_END = frozenset(b", } ] \t \r \n".split(b" ")) | {b" "}
CSV_EDGE = frozenset(b", ; \t | \" \r \n".split(b" ")) | {b" "}


@dataclass(frozen=True)
class Needle:
    """A lower-cased byte string; `before`/`after`: the bytes allowed around it (None: anything)."""

    text: bytes
    before: frozenset[bytes] | None = None
    after: frozenset[bytes] | None = None


@dataclass(frozen=True)
class Hit:
    """One matching line: its file, byte offset (a stable record id) and decoded fields."""

    path: Path
    offset: int
    fields: dict[str, Any]
    matched_on: list[str]


def field_value(fields: Mapping[str, Any], path: str) -> Any:
    """`user.email` reads fields["user"]["email"]; a flat key containing dots is tried first."""
    if path in fields:
        return fields[path]
    value: Any = fields
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def open_log(path: Path) -> BinaryIO:
    try:
        return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")  # type: ignore[return-value]
    except FileNotFoundError:
        raise NotReady(f"log file {path.name} disappeared while reading") from None
    except PermissionError:
        raise Misconfigured(f"log file {path.name} is not readable by the service user") from None


def blocks_of_lines(handle: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(offset, block) pairs where each block ends at a line end; memory stays near BLOCK."""
    offset, carry = 0, b""
    while True:
        chunk = handle.read(BLOCK)
        if not chunk:
            if carry:
                yield offset, carry
            return
        data = carry + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            if len(data) > MAX_LINE:
                raise Misconfigured("a line is longer than 64 MB: this file is not JSON lines or CSV")
            carry = data
            continue
        yield offset, data[:cut + 1]
        offset += cut + 1
        carry = data[cut + 1:]


class Matcher:
    """The subject's identifiers as byte patterns, plus the exact check after decoding."""

    def __init__(self, match: Mapping[str, str], fmt: str) -> None:
        self.match = {check_kind(kind, "log match"): path for kind, path in match.items()}
        self.fmt = fmt

    def patterns(self, known: Mapping[str, list[str]]) -> list[Needle]:
        """Byte strings whose presence makes a line worth decoding (searched in the lower-cased line)."""
        needles: list[Needle] = []
        for kind, path in self.match.items():
            key = path.rsplit(".", 1)[-1].lower().encode("utf-8")
            for value in known.get(kind, []):
                raw = value.lower().encode("utf-8")
                if kind == "email":
                    needles.append(Needle(raw))
                    escaped = json.dumps(value)[1:-1].lower().encode("ascii")  # as ensure_ascii writers spell it
                    if escaped != raw:
                        needles.append(Needle(escaped))
                elif self.fmt == "jsonl":
                    # Next to its key, so that customer id 42 does not decode every line holding 42 or 420.
                    for sep in (b":", b": "):
                        needles.append(Needle(b'"' + key + b'"' + sep + raw, after=JSON_END))
                        needles.append(Needle(b'"' + key + b'"' + sep + b'"' + raw + b'"'))
                else:
                    needles.append(Needle(raw, before=CSV_EDGE, after=CSV_EDGE))
        return needles

    def check(self, fields: Mapping[str, Any], known: Mapping[str, list[str]]) -> list[str]:
        """The identifier kinds whose field really holds one of the subject's values."""
        hits = []
        for kind, path in self.match.items():
            value = normalise_value(kind, field_value(fields, path))
            if value is not None and value in known.get(kind, ()):
                hits.append(kind)
        return hits


def candidate_lines(block: bytes, needles: list[Needle]) -> list[tuple[int, int]]:
    """(start, end) of every line in `block` holding a needle, case-insensitively, at a field edge if asked."""
    spans: set[tuple[int, int]] = set()
    if not needles:
        return []
    lowered = block.lower()
    size = len(block)
    for needle in needles:
        pos = lowered.find(needle.text)
        while pos >= 0:
            start = block.rfind(b"\n", 0, pos) + 1
            end = block.find(b"\n", pos)
            end = size if end < 0 else end
            after = pos + len(needle.text)
            ok_before = needle.before is None or pos == start or lowered[pos - 1:pos] in needle.before
            ok_after = needle.after is None or after >= end or lowered[after:after + 1] in needle.after
            if ok_before and ok_after:
                spans.add((start, end))
                pos = lowered.find(needle.text, end)
            else:
                pos = lowered.find(needle.text, pos + 1)
    return sorted(spans)


def expand_paths(pattern: Path) -> list[Path]:
    return [Path(p) for p in sorted(glob.glob(str(pattern)))] if any(c in str(pattern) for c in "*?[") \
        else [pattern]


@dataclass
class ScanStats:
    """What a scan could not read: lines mentioning the subject that did not decode must be reported."""

    undecodable: int = 0
    bytes_read: int = 0


def scan(paths: list[Path], fmt: str, matcher: Matcher, known: Mapping[str, list[str]], stats: ScanStats,
         delimiter: str = ",", deadline: float | None = None) -> Iterator[Hit]:
    """Every line of the files whose designated fields hold one of the known identifiers.

    `deadline` (a time.monotonic() value) stops a scan that outlives its source's time limit.
    """
    needles = matcher.patterns(known)
    if not needles:
        return
    for path in paths:
        with open_log(path) as handle:
            header: list[str] | None = None
            if fmt == "csv":
                first = handle.readline()
                header = next(csv.reader(io.StringIO(first.decode("utf-8-sig"))), [])
                base = len(first)
            else:
                base = 0
            for offset, block in blocks_of_lines(handle):
                stats.bytes_read += len(block)
                if deadline is not None and time.monotonic() > deadline:
                    raise NotReady(f"reading {path.name} took longer than the source's time limit")
                for start, end in candidate_lines(block, needles):
                    line = block[start:end].strip()
                    if not line:
                        continue
                    fields = decode_line(line, fmt, header, delimiter)
                    if fields is None:
                        stats.undecodable += 1
                        continue
                    kinds = matcher.check(fields, known)
                    if kinds:
                        yield Hit(path, base + offset + start, fields, kinds)


def decode_line(line: bytes, fmt: str, header: list[str] | None, delimiter: str) -> dict[str, Any] | None:
    text = line.decode("utf-8", errors="replace")
    if fmt == "jsonl":
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None  # a truncated last line of a file being written
        return value if isinstance(value, dict) else None
    row = next(csv.reader([text], delimiter=delimiter), [])
    if header is None or len(row) != len(header):
        return None
    return dict(zip(header, row))
