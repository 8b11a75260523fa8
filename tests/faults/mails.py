"""The SMTP sink's spool as the requester's mailbox: which mail is which, codes and links in them."""
from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from jinja2 import Environment

from bot.mailing import TEMPLATES

CODE = re.compile(r"(?m)^[^\n]*?: (\d{6,})\s*$")
_env = Environment(autoescape=False)


@dataclass(frozen=True)
class Mail:
    index: int  # arrival number at the sink, from 1
    to: str
    subject: str
    text: str
    message_id: str

    def link(self, kind: str) -> str:
        """The token of the first `/<kind>/<token>` link in the text, or ""."""
        found = re.search(rf"https?://\S+?/{kind}/([A-Za-z0-9_-]+)(?:\s|$)", self.text)
        return found.group(1) if found else ""

    def code(self) -> str:
        found = CODE.findall(self.text)
        return found[-1] if found else ""


def subject_line(template: str, language: str, ref: str) -> str:
    """The subject `template` has for a case `ref` in `language` (English when not translated),
    rendered from the template's first line as bot.mailing does."""
    for lang in (language, "en"):
        path = TEMPLATES / lang / f"{template}.txt"
        if path.exists():
            first = path.read_text(encoding="utf-8").partition("\n")[0]
            return _env.from_string(first).render(case=SimpleNamespace(ref=ref))[len("Subject:"):].strip()
    raise LookupError(f"no mail template {template!r}")


def templates() -> list[str]:
    return sorted(p.stem for p in (TEMPLATES / "en").glob("*.txt"))


class Spool:
    """Mails the sink accepted, in arrival order; parsed once each."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._parsed: dict[str, Mail] = {}

    def mails(self) -> list[Mail]:
        for path in sorted(self.directory.glob("*.eml")):
            if path.name not in self._parsed:
                self._parsed[path.name] = _parse(int(path.stem), path.read_bytes())
        return [self._parsed[name] for name in sorted(self._parsed)]

    def of(self, ref: str, template: str, language: str) -> list[Mail]:
        subject = subject_line(template, language, ref)
        return [m for m in self.mails() if m.subject == subject]


def _parse(index: int, raw: bytes) -> Mail:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    # a long Subject is folded right after "Subject:"; unfolding leaves the fold's space in front
    return Mail(index, str(msg["To"] or "").strip().lower(), str(msg["Subject"] or "").strip(), text,
                str(msg["Message-ID"] or ""))
