"""The plain-text twin of a letter (mail bodies), derived from its HTML so the two never say different things.

Headings are underlined, paragraphs wrapped, list items dashed, tables laid out in columns when
they fit (else one "label: value" line per cell). Scripts, styles and charts are left out: every
chart in a letter has a table beside it.
"""
from __future__ import annotations

import textwrap
from html.parser import HTMLParser

WIDTH = 76
BLOCKS = {"p", "div", "section", "header", "footer", "address", "h1", "h2", "h3", "h4", "ul", "ol", "table",
          "blockquote", "figure", "figcaption", "dl", "dt", "dd"}
SKIPPED = {"style", "script", "svg", "head"}
UNDERLINES = {"h1": "=", "h2": "-"}


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[tuple[str, bool]] = []  # finished blocks: (text, is a single line of a run)
        self.buffer: list[str] = []
        self.skip = 0
        self.tags: list[str] = []
        self.table: list[list[str]] | None = None
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.href = ""
        self.list_item = False

    # --- text accumulation -------------------------------------------------------------------
    def _target(self) -> list[str]:
        return self.cell if self.cell is not None else self.buffer

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self._target().append(data)

    def _flush(self, tag: str = "p", closing: bool = False) -> None:
        text = " ".join("".join(self.buffer).split())
        self.buffer = []
        if not text:
            if closing:
                self.out.append(("", False))  # a container ended: the next run of lines starts apart
            return
        if tag in UNDERLINES:
            self.out.append((f"{text}\n{UNDERLINES[tag] * min(len(text), WIDTH)}", False))
        elif tag == "li":
            self.out.append((textwrap.fill(text, WIDTH, initial_indent="- ", subsequent_indent="  "), True))
        else:
            lines = [textwrap.fill(part.strip(), WIDTH) for part in text.split("\x00") if part.strip()]
            self.out.append(("\n".join(lines), tag == "div"))

    # --- tags --------------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED:
            self.skip += 1
            return
        if self.skip:
            return
        if tag in BLOCKS or tag == "li":
            if self.cell is None:
                self._flush(self.tags[-1] if self.tags else "p")
            else:
                self.cell.append(" ")  # a block inside a cell still starts a new phrase
            self.tags.append(tag)
        if tag == "br":
            self._target().append("\x00" if self.cell is None else " ")
        elif tag == "a":
            self.href = dict(attrs).get("href") or ""
        elif tag == "table":
            self.table = []
        elif tag == "tr" and self.table is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip:
            return
        if tag == "a" and self.href:
            text = "".join(self._target()).rstrip()
            if self.href.startswith(("http", "mailto:")) and self.href.removeprefix("mailto:") not in text:
                self._target().append(f" <{self.href.removeprefix('mailto:')}>")
            self.href = ""
        elif tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None and self.table is not None:
            if any(self.row):
                self.table.append(self.row)
            self.row = None
        elif tag == "table" and self.table is not None:
            self.out.append((_layout(self.table), False))
            self.table = None
        if tag in BLOCKS or tag == "li":
            if self.cell is None and self.table is None:
                self._flush(tag, closing=True)
            if self.tags and self.tags[-1] == tag:
                self.tags.pop()

    def text(self) -> str:
        """Blocks separated by a blank line; runs of list items or short div lines kept together."""
        self._flush()
        parts: list[str] = []
        previous_line = False
        for block, line in self.out:
            if not block.strip():
                previous_line = False
                continue
            if parts:
                parts.append("\n" if line and previous_line else "\n\n")
            parts.append(block)
            previous_line = line
        return "".join(parts) + "\n"


def _layout(rows: list[list[str]]) -> str:
    if not rows:
        return ""
    columns = max(len(r) for r in rows)
    rows = [r + [""] * (columns - len(r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(columns)]
    if sum(widths) + 3 * (columns - 1) <= WIDTH:
        lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
        if len(rows) > 1:
            lines.insert(1, "-+-".join("-" * w for w in widths))
        return "\n".join(lines)
    header, body = rows[0], rows[1:] or [rows[0]]
    blocks = []
    for r in body:
        pairs = [f"{header[i]}: {cell}" if header is not r and header[i] else cell for i, cell in enumerate(r) if cell]
        blocks.append("\n".join(textwrap.fill(p, WIDTH, subsequent_indent="    ") for p in pairs))
    return "\n\n".join(blocks)


def html_to_text(html: str) -> str:
    converter = _Converter()
    converter.feed(html)
    converter.close()
    return converter.text()
