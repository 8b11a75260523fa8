"""Raw RFC 5322 bytes -> a `Message` plus its attachments, never raising.

Every mail channel goes through `parse_email`. mail-parser reads the bodies and attachments; the
standard library parses the MIME tree first (so that its depth can be bounded before anything
walks it) and is the fallback when mail-parser fails. Whatever goes wrong is written in
`Message.parse_error` for an agent to see; limits applied on purpose (an attachment too big)
are in `ParsedMail.warnings`.
"""
from __future__ import annotations

import base64
import binascii
import email
import email.parser
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.header import decode_header
from email.message import Message as MimeMessage
from email.policy import Compat32
from email.utils import getaddresses
from typing import Callable

from bot.mailtext import clean_text, html_to_text, trim_quoted
from bot.models import Message, utcnow

log = logging.getLogger(__name__)  # mail-parser's own logger is kept at ERROR by bot.logs (file names)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # beyond this only the headers are read
MAX_MIME_DEPTH = 10  # parts nested deeper are not read (a hostile message can nest thousands)
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
MAX_TOTAL_ATTACHMENT_BYTES = 50 * 1024 * 1024
MAX_ATTACHMENTS = 50
MAX_TEXT_CHARS = 1_000_000  # of the kept text; the classifier reads far less
MAX_HEADER_CHARS = 8_192  # per header value
#: Raw header values are cut to this as the parser reads them, before anything parses their insides:
#: the email package's parameter and address parsers are quadratic (a 1 MB Content-Type took 35 s).
MAX_RAW_HEADER_CHARS = 16_384
MAX_HEADERS = 500
MAX_REFERENCES = 100
#: Lines starting with "--" (MIME boundaries) read: the email package builds an object per part, and
#: 60 MB of empty parts is millions of them (minutes, gigabytes). A mail with more is read up to there.
MAX_BOUNDARY_LINES = 10_000
MAX_FILENAME_CHARS = 200

_FOLDING_RE = re.compile(r"\r?\n[ \t]*")
_HEADER_UNSAFE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MSGID_RE = re.compile(r"<[^<>\s]{1,900}>")
_SURROGATE_RE = re.compile("[\udc80-\udcff]")  # raw 8-bit bytes, kept by the parser as surrogates


class _CappedPolicy(Compat32):
    """The email package's default policy, with every header value cut as it is read."""

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        return name, value[:MAX_RAW_HEADER_CHARS]


_POLICY = _CappedPolicy()


@dataclass
class ParsedMail:
    message: Message
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # (file name, content type, bytes)
    warnings: list[str] = field(default_factory=list)


# --- headers -----------------------------------------------------------------------------------------
def _bytes_to_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def decode_header_value(value: object) -> str:
    """Any header value -> one line of text: encoded words decoded, 8-bit bytes guessed, never raising."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable() and "=?" not in text:  # most headers: nothing to decode
        return text.strip()[:MAX_HEADER_CHARS]
    if _SURROGATE_RE.search(text):
        text = _bytes_to_text(text.encode("ascii", "surrogateescape"))
    text = _FOLDING_RE.sub(" ", text)
    if "=?" in text:
        text = _decode_encoded_words(text)
    return _HEADER_UNSAFE_RE.sub(" ", text).strip()[:MAX_HEADER_CHARS]


def _decode_encoded_words(text: str) -> str:
    try:
        parts = decode_header(text)
    except Exception:  # noqa: BLE001 - a malformed encoded word leaves the text as it came
        return text
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(chunk.decode(charset or "ascii"))
        except (LookupError, UnicodeDecodeError):
            out.append(_bytes_to_text(chunk))
    # decode_header returns unencoded runs as bytes with their spaces; encoded words carry none
    return "".join(out)


def _headers_of(mime: MimeMessage) -> dict[str, str]:
    headers: dict[str, str] = {}
    names: dict[str, str] = {}
    for index, (name, value) in enumerate(mime.raw_items()):
        if index >= MAX_HEADERS:
            break
        clean_name = _HEADER_UNSAFE_RE.sub("", decode_header_value(name))[:200]
        key = names.setdefault(clean_name.lower(), clean_name)
        decoded = decode_header_value(value)
        headers[key] = (headers[key] + "\n" + decoded)[:MAX_HEADER_CHARS * 4] if key in headers else decoded
    return headers


def _raw_header(mime: MimeMessage, name: str) -> str | None:
    """The header as it came, 8-bit bytes kept as surrogates (`get` would turn them into U+FFFD)."""
    lower = name.lower()
    for key, value in mime.raw_items():
        if key.lower() == lower:
            return value if isinstance(value, str) else str(value)
    return None


def _first_address(raw: object) -> tuple[str, str]:
    """(display name, address) of the first mailbox in an address header; ("", "") when none."""
    if raw is None:
        return "", ""
    text = raw if isinstance(raw, str) else str(raw)
    if _SURROGATE_RE.search(text):
        text = _bytes_to_text(text.encode("ascii", "surrogateescape"))
    text = _FOLDING_RE.sub(" ", text)
    try:
        pairs = getaddresses([text])
    except Exception:  # noqa: BLE001 - unparseable address header
        pairs = []
    for name, address in pairs:
        if "@" in address:
            return decode_header_value(name), _HEADER_UNSAFE_RE.sub("", address).strip()[:320]
    return decode_header_value(text), ""


def _address_from(parsed: list, position: int, raw: object) -> tuple[str, str] | None:
    """(name, address) from mail-parser's already parsed address list, when it found one in a plain
    ASCII header (it renders raw 8-bit bytes as escape sequences, which cannot be undone)."""
    if not isinstance(raw, str) or not raw.isascii():
        return None
    try:
        name, address = parsed[position][0]
    except (IndexError, TypeError, ValueError):
        return None
    if not isinstance(address, str) or "@" not in address:
        return None
    return decode_header_value(name or ""), decode_header_value(address).replace(" ", "")[:320]


# --- MIME tree ---------------------------------------------------------------------------------------
def _prune(mime: MimeMessage, max_depth: int) -> bool:
    """Drop parts nested deeper than `max_depth` (in place). True when something was dropped."""
    pruned = False
    stack = [(mime, 0)]
    while stack:
        part, depth = stack.pop()
        payload = part.get_payload()
        if not isinstance(payload, list):
            continue
        if depth >= max_depth:
            part.set_payload([])
            pruned = True
            continue
        stack.extend((child, depth + 1) for child in payload if isinstance(child, MimeMessage))
    return pruned


def _boundary_limit(raw: bytes) -> int:
    """Where the MAX_BOUNDARY_LINES-th boundary-like line starts, or the length of `raw`."""
    position = -1
    for _ in range(MAX_BOUNDARY_LINES):
        position = raw.find(b"\n--", position + 1)
        if position < 0:
            return len(raw)
    return position + 1


def _safe_filename(name: str, content_type: str, index: int) -> str:
    """A display name only: no directories, no control characters. Writers still choose their own path."""
    name = unicodedata.normalize("NFC", clean_text(name or "")).replace("\n", " ")
    name = re.split(r"[\\/]", name)[-1].strip().lstrip(".")
    if not name:
        subtype = content_type.split("/")[-1].split(";")[0].strip() or "bin"
        name = f"attachment-{index}.{re.sub(r'[^a-z0-9]', '', subtype.lower())[:10] or 'bin'}"
    return name[:MAX_FILENAME_CHARS]


class _Attachments:
    """Collects attachments within the per-file and total limits."""

    def __init__(self, warnings: list[str]) -> None:
        self.items: list[tuple[str, str, bytes]] = []
        self.total = 0
        self.warnings = warnings

    def add(self, filename: str, content_type: str, size_hint: int, read: Callable[[], bytes]) -> None:
        index = len(self.items) + 1
        shown = _safe_filename(filename, content_type, index)
        if len(self.items) >= MAX_ATTACHMENTS:
            self.warnings.append(f"attachment dropped: more than {MAX_ATTACHMENTS} attachments")
            return
        if size_hint > MAX_ATTACHMENT_BYTES or self.total + size_hint > MAX_TOTAL_ATTACHMENT_BYTES:
            self.warnings.append(f"attachment {shown!r} dropped: larger than the size limit")
            return
        data = read()
        if len(data) > MAX_ATTACHMENT_BYTES or self.total + len(data) > MAX_TOTAL_ATTACHMENT_BYTES:
            self.warnings.append(f"attachment {shown!r} dropped: larger than the size limit")
            return
        self.total += len(data)
        self.items.append((shown, (content_type or "application/octet-stream")[:200], data))


_lean_parser: type | None = None


def _mailparser_class() -> type:
    """mail-parser without its two summary dictionaries (`mail`, `mail_partial`), which decode every
    header twice and which we never read: a quarter of its cost. Should a later version rename the
    hook, the override is simply unused (slower, same result)."""
    global _lean_parser
    if _lean_parser is None:
        import mailparser  # imported here: only mail channels pay for it

        class LeanMailParser(mailparser.MailParser):
            def _make_mail(self, complete: bool = True) -> dict:  # noqa: ARG002
                return {}

        _lean_parser = LeanMailParser
    return _lean_parser


def _bodies_with_mailparser(mime: MimeMessage, attachments: _Attachments) -> tuple[list[str], list[str], list]:
    parsed = _mailparser_class()(mime)
    for item in parsed.attachments:
        payload = item.get("payload") or ""
        content_type = item.get("mail_content_type") or "application/octet-stream"
        if item.get("binary"):
            size = len(payload) * 3 // 4

            def read(payload: str = payload) -> bytes:
                try:
                    return base64.b64decode(payload)
                except (binascii.Error, ValueError):
                    return payload.encode("ascii", "replace")
        else:
            size = len(payload)

            def read(payload: str = payload) -> bytes:
                return payload.encode("utf-8", "surrogateescape")
        attachments.add(str(item.get("filename") or ""), content_type, size, read)
    return list(parsed.text_plain), list(parsed.text_html), [parsed.from_, parsed.reply_to]


def _bodies_with_stdlib(mime: MimeMessage, attachments: _Attachments) -> tuple[list[str], list[str], list]:
    plain: list[str] = []
    html: list[str] = []
    for part in mime.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = part.get_filename()
        disposition = (part.get_content_disposition() or "").lower()
        raw = part.get_payload(decode=True) or b""
        if filename or disposition == "attachment" or not content_type.startswith("text/"):
            attachments.add(decode_header_value(filename or ""), content_type, len(raw), lambda raw=raw: raw)
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            text = raw.decode(charset, "replace")
        except LookupError:
            text = _bytes_to_text(raw)
        (html if content_type == "text/html" else plain).append(text)
    return plain, html, []


# --- the entry point ----------------------------------------------------------------------------------
def parse_email(raw: bytes, *, channel: str = "email", received_at: datetime | None = None) -> ParsedMail:
    """Never raises: a message that cannot be read comes back with `parse_error` set and what could be read."""
    if received_at is None:
        received_at = utcnow()
    elif received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=timezone.utc)
    try:
        return _parse(bytes(raw), channel, received_at)
    except Exception as exc:  # noqa: BLE001 - last line of defence: keep the message, say why
        log.warning("mail could not be parsed: %s", type(exc).__name__)
        return ParsedMail(Message(id="", channel=channel, sender="", subject="", text="", received_at=received_at,
                                  parse_error=f"unreadable message ({type(exc).__name__})"))


def _parse(raw: bytes, channel: str, received_at: datetime) -> ParsedMail:
    warnings: list[str] = []
    errors: list[str] = []
    if len(raw) > MAX_MESSAGE_BYTES:
        mime = email.parser.BytesHeaderParser(policy=_POLICY).parsebytes(raw[:256 * 1024])
        mime.set_payload("")
        errors.append(f"message larger than {MAX_MESSAGE_BYTES // (1024 * 1024)} MB: only the headers were read")
    else:
        cut = _boundary_limit(raw)
        if cut < len(raw):
            raw = raw[:cut]
            errors.append(f"more than {MAX_BOUNDARY_LINES} MIME boundaries: the message was read up to there")
        try:
            mime = email.message_from_bytes(raw, policy=_POLICY)
        except RecursionError:
            mime = email.parser.BytesHeaderParser(policy=_POLICY).parsebytes(raw)
            mime.set_payload("")
            errors.append("MIME structure nested too deeply to read: only the headers were read")
    if _prune(mime, MAX_MIME_DEPTH):
        errors.append(f"MIME parts nested deeper than {MAX_MIME_DEPTH} levels were not read")
    if any(len(value) >= MAX_RAW_HEADER_CHARS for part in mime.walk() for _, value in part.raw_items()
           if isinstance(value, str)):
        warnings.append(f"header values longer than {MAX_RAW_HEADER_CHARS} characters were cut")

    headers = _headers_of(mime)
    # mail-parser analyses every Received header (for a sender-IP feature we do not use): half its
    # time on ordinary mail. They are in `headers` already; the tree it reads goes without them.
    del mime["Received"]
    attachments = _Attachments(warnings)
    try:
        plain, html, addresses = _bodies_with_mailparser(mime, attachments)
    except Exception as exc:  # noqa: BLE001 - mail-parser failed: the standard library reads what it can
        log.info("mail-parser failed (%s); falling back to the email package", type(exc).__name__)
        warnings.append(f"read with the standard library after mail-parser failed ({type(exc).__name__})")
        attachments = _Attachments(warnings)
        try:
            plain, html, addresses = _bodies_with_stdlib(mime, attachments)
        except Exception as inner:  # noqa: BLE001
            plain, html, addresses = [], [], []
            errors.append(f"the body could not be read ({type(inner).__name__})")

    html_text = "\n\n".join(h for h in html if h)
    text = "\n\n".join(p for p in plain if p and p.strip())
    if not text and html_text:
        text = html_to_text(html_text)
    text = unicodedata.normalize("NFC", clean_text(text))
    if len(text) > MAX_TEXT_CHARS:
        warnings.append(f"text cut at {MAX_TEXT_CHARS} characters")
        text = text[:MAX_TEXT_CHARS]
    text = trim_quoted(text)

    raw_from, raw_reply_to = _raw_header(mime, "From"), _raw_header(mime, "Reply-To")
    sender_name, sender = _address_from(addresses, 0, raw_from) or _first_address(raw_from)
    _, reply_to = _address_from(addresses, 1, raw_reply_to) or _first_address(raw_reply_to)
    references = _MSGID_RE.findall(headers.get("References", ""))[:MAX_REFERENCES]
    in_reply_to = _MSGID_RE.findall(_header(headers, "In-Reply-To"))
    message_ids = _MSGID_RE.findall(_header(headers, "Message-ID"))
    message = Message(
        id="", channel=channel, sender=sender, sender_name=sender_name, reply_to=reply_to,
        subject=_header(headers, "Subject"), text=text,
        html=html_text[:MAX_TEXT_CHARS],  # untrusted markup, kept as evidence: never render it unescaped
        received_at=received_at, headers=headers,
        message_id=message_ids[0] if message_ids else _header(headers, "Message-ID")[:998],
        in_reply_to=in_reply_to[0] if in_reply_to else "", references=references,
        parse_error="; ".join(errors),
    )
    return ParsedMail(message, attachments.items, warnings)


def _header(headers: dict[str, str], name: str) -> str:
    """First value of a header, case-insensitively."""
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value.split("\n", 1)[0]
    return ""
