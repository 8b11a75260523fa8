"""Mail bodies as safe plain text: HTML without tags or scripts, quoted replies trimmed."""
from __future__ import annotations

import re
from html.parser import HTMLParser

MAX_HTML_CHARS = 2_000_000  # bigger HTML is cut before conversion: the text of a real mail is far shorter

#: Elements whose content is never text a person wrote.
_SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript", "svg", "math", "object",
                      "iframe", "canvas", "select", "option", "button", "meta", "link"})
_BLOCKS = frozenset({"p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
                     "section", "article", "header", "footer", "ul", "ol", "hr", "pre", "address", "dd", "dt"})
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "wbr"})
#: C0/C1 controls except tab and newline, zero-width and bidi overrides (they disguise text).
_UNSAFE_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.skip_stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:  # noqa: ARG002 - attributes are never kept
        if tag in _SKIPPED and tag not in _VOID:
            self.skip_stack.append(tag)
        if tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if self.skip_stack and tag in _SKIPPED:
            # close up to the matching open tag: unclosed <script> must not swallow the rest forever
            while self.skip_stack:
                if self.skip_stack.pop() == tag:
                    break
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_stack:
            self.parts.append(data)


def clean_text(text: str) -> str:
    """No control characters, no invisible or direction-changing characters, unified newlines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE_RE.sub("", text)


def html_to_text(html: str) -> str:
    """Visible text of an HTML body: no tags, no script or style content, entities decoded."""
    parser = _TextExtractor()
    try:
        parser.feed(html[:MAX_HTML_CHARS])
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser is lenient; keep whatever was read
        pass
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    text = "\n".join(lines)
    return clean_text(re.sub(r"\n{3,}", "\n\n", text)).strip()


#: Lines that introduce the quoted message in a reply (in the languages our customers write).
_REPLY_HEADER_RE = re.compile(
    r"^[ \t]*(?:"
    r"On [^\n]{1,250}?wrote:"
    r"|Le [^\n]{1,250}?a [ée]crit\s?:"
    r"|Am [^\n]{1,250}?schrieb[^\n]{0,250}?:"
    r"|El [^\n]{1,250}?escribi[óo]:"
    r"|Il [^\n]{1,250}?ha scritto:"
    r"|Op [^\n]{1,250}?schreef[^\n]{0,250}?:"
    r"|Em [^\n]{1,250}?escreveu:"
    r"|W dniu [^\n]{1,250}?napisa[łl](?:a|\(a\))?:"
    r"|Dne [^\n]{1,250}?napsal(?:a|\(a\))?:"
    r"|-{2,}\s*(?:Original Message|Message d'origine|Urspr[üu]ngliche Nachricht|Mensaje original|"
    r"Messaggio originale|Oorspronkelijk bericht|Mensagem original|Oryginalna wiadomo[śs][ćc]|"
    r"P[ůu]vodn[íi] zpr[áa]va)\s*-{2,}"
    r"|(?:From|De|Von|Van|Da|Od):[^\n]{1,250}\n"
    r"(?:Sent|Envoy[ée]|Gesendet|Verzonden|Inviato|Enviado|Wys[łl]ano|Odesl[áa]no)\s?:"
    r")[ \t]*$",
    re.MULTILINE)
#: "On Mon, 2 Mar 2026, Jane <jane@x>" + newline + "wrote:": clients wrap long attribution lines.
_WRAPPED_WROTE_RE = re.compile(
    r"^[ \t]*(?:On|Le|Am|El|Il|Op|Em) [^\n]{1,250}\n[^\n]{0,120}?"
    r"(?:wrote|a [ée]crit|schrieb|escribi[óo]|ha scritto|schreef|escreveu)[^\n]{0,120}:[ \t]*$", re.MULTILINE)
_QUOTED_LINE_RE = re.compile(r"^[ \t]*>[^\n]*(?:\n|$)", re.MULTILINE)


def trim_quoted(text: str) -> str:
    """The new part of a reply: quoted lines and the quoted original dropped.

    Never trims to nothing: a forward with no words of its own keeps the forwarded text, because
    that may be the only place the request is written.
    """
    cut = len(text)
    for pattern in (_REPLY_HEADER_RE, _WRAPPED_WROTE_RE):
        match = pattern.search(text)
        if match and match.start() < cut:
            cut = match.start()
    trimmed = _QUOTED_LINE_RE.sub("", text[:cut]).strip()
    if any(ch.isalnum() for ch in trimmed):
        return trimmed
    unquoted = _QUOTED_LINE_RE.sub("", text).strip()
    return unquoted if any(ch.isalnum() for ch in unquoted) else text.strip()
