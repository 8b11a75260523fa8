"""The draft answer for agent approval: the Art. 15 letter, the export files and the other letters.

Contracts:
- `service.components["drafter"]`: a `Drafter`; `draft(case, result)` returns the draft kept on the case:
  {"hash", "files": [{"name", "vault_path", "sha256", "content_type", "size", "role"}], "letter_html_path",
  "letter_text_path", "kind": "access"|"no_data", "subject", "language", "at", "records",
  "redactions": [{"source", "system", "entity", "record_id", "field", "kind", "count"}],
  "repeat_requests": [{"ref", "received", "state", "rights"}], "warnings": [str]}.
  File roles: letter_html (the desk), letter_text (mail body), pdf, html, json, csv (what the requester gets).
- `verify_draft_files(vault, draft) -> bool` / `read_verified(vault, draft) -> {name: bytes}`: delivery
  ships exactly the approved bytes.
- `render_letter(kind, case, context) -> (subject, text, html)`; `letter_context(service, **extra)` builds
  `context`; kinds and their keys in `letters.KINDS`; `LetterRefused` for a letter the law does not allow.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

#: Public names, imported on first use so that `dsarbot --help` does not load WeasyPrint.
_EXPORTS = {
    "Drafter": "bot.drafting.drafter", "verify_draft_files": "bot.drafting.files",
    "read_verified": "bot.drafting.files", "render_letter": "bot.drafting.letters",
    "letter_context": "bot.drafting.letters", "LetterRefused": "bot.drafting.letters", "KINDS": "bot.drafting.letters",
}
__all__ = [*_EXPORTS, "setup"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(name)


def setup(service: Any) -> None:
    """Register the drafter; a wrong authority or redaction rule stops the start with the key to fix."""
    if not service.config.drafting.enabled:
        return
    from bot.drafting.drafter import Drafter
    from bot.drafting.parties import authority

    authority(service.config.jurisdiction.authority, "en")
    service.components["drafter"] = Drafter(service)
