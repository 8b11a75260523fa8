"""Corpus-seeded mutations: real mail (`shared/corpus/*.eml`) bent by bit flips, truncations, duplicated or
dropped headers, stray CR/LF/NUL, swapped boundaries, charsets and transfer encodings, and splices.

`mutations(n_files)` draws (file index, operations); `mutate(raw, ops, corpus)` applies them, a pure
function, so a failing example prints everything needed to replay it. The Message-ID is replaced by
`<mut-@@UNIQ@@@corpus.example>` first (the fuzz target fills in a fresh number), so that each mutant
is a new mail rather than a replay of its original.
"""
from __future__ import annotations

import re
from typing import Sequence

from hypothesis import strategies as st

from tests.shared import shared_dir

Op = tuple  # ("flip", where, bit) | ("truncate", where) | ("dup_header", which, times) | ...

_MSGID = re.compile(rb"(?im)^message-id:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*")
_HEADER_START = re.compile(rb"(?m)^(?![ \t])[^\r\n]*:")


def corpus_files() -> list[bytes]:
    return [p.read_bytes() for p in sorted((shared_dir() / "corpus").glob("*.eml"))]


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(headers, separator, body)."""
    match = re.search(rb"\r?\n\r?\n", raw)
    if not match:
        return raw, b"", b""
    return raw[:match.start()], match.group(0), raw[match.end():]


def _headers(head: bytes) -> list[bytes]:
    """Logical header fields, each with its continuation lines."""
    starts = [m.start() for m in _HEADER_START.finditer(head)] or [0]
    if starts[0] != 0:
        starts.insert(0, 0)
    return [head[a:b] for a, b in zip(starts, starts[1:] + [len(head)])]


def fresh_message_id(raw: bytes) -> bytes:
    new = b"Message-ID: <mut-@@UNIQ@@@corpus.example>"
    if _MSGID.search(raw):
        return _MSGID.sub(lambda _: new, raw, count=1)
    return new + b"\r\n" + raw


def _at(raw: bytes, where: float) -> int:
    return min(len(raw), int(where * len(raw)))


def apply(raw: bytes, op: Op, corpus: Sequence[bytes]) -> bytes:
    kind = op[0]
    if kind == "flip" and raw:
        i = min(len(raw) - 1, _at(raw, op[1]))
        return raw[:i] + bytes([raw[i] ^ (1 << op[2])]) + raw[i + 1:]
    if kind == "truncate":
        return raw[:_at(raw, op[1])]
    if kind == "insert":
        i = _at(raw, op[1])
        return raw[:i] + op[2] + raw[i:]
    if kind == "delete":
        i = _at(raw, op[1])
        return raw[:i] + raw[i + op[2]:]
    head, sep, body = _split(raw)
    fields = _headers(head)
    if kind == "dup_header" and fields:
        field = fields[op[1] % len(fields)].rstrip(b"\r\n")
        return head + b"".join(b"\r\n" + field for _ in range(op[2])) + sep + body
    if kind == "drop_header":
        kept = [f for f in fields if not f.lower().lstrip(b"\r\n").startswith(op[1].lower() + b":")]
        return b"".join(kept) + sep + body
    if kind == "splice" and corpus:
        other_head, other_sep, other_body = _split(corpus[op[1] % len(corpus)])
        return head + (sep or other_sep or b"\r\n\r\n") + other_body[_at(other_body, op[2]):]
    if kind == "param":  # boundary=, charset=, Content-Transfer-Encoding: swapped for something else
        name, value = op[1], op[2]
        pattern = re.compile(rb"(?i)(" + re.escape(name) + rb")\"?[^\s;\"]*\"?")
        return pattern.sub(lambda m: m.group(1) + value, raw, count=1)
    return raw


def mutate(raw: bytes, ops: Sequence[Op], corpus: Sequence[bytes] = ()) -> bytes:
    raw = fresh_message_id(raw)
    for op in ops:
        raw = apply(raw, op, corpus)
    return raw


_where = st.floats(0, 1, allow_nan=False)
_ops = st.one_of(
    st.tuples(st.just("flip"), _where, st.integers(0, 7)),
    st.tuples(st.just("truncate"), _where),
    st.tuples(st.just("insert"), _where, st.sampled_from([b"\r", b"\n", b"\x00", b"\r\n\r\n", b"\r\n ", b"--", b"=?",
                                                         b"\xff\xfe", b"\xe2\x80\xae", b"=\r\n", b"<script>"])),
    st.tuples(st.just("delete"), _where, st.integers(1, 400)),
    st.tuples(st.just("dup_header"), st.integers(0, 60), st.sampled_from([1, 2, 50, 1000])),
    st.tuples(st.just("drop_header"), st.sampled_from([b"From", b"Date", b"Message-ID", b"Content-Type",
                                                       b"MIME-Version", b"Content-Transfer-Encoding", b"Subject"])),
    st.tuples(st.just("splice"), st.integers(0, 500), _where),
    st.tuples(st.just("param"), st.sampled_from([b"boundary=", b"charset=", b"Content-Transfer-Encoding: "]),
              st.sampled_from([b"", b"\"\"", b"x-unknown", b"base64", b"quoted-printable", b"utf-16", b"8bit",
                               b"\"a\"\"b\"", b"=?utf-8?q?x?=", b"x" * 300])),
)


def mutations(n_files: int) -> st.SearchStrategy[tuple[int, list[Op]]]:
    """(index of the corpus file, 1 to 6 operations)."""
    return st.tuples(st.integers(0, n_files - 1), st.lists(_ops, min_size=1, max_size=6))
