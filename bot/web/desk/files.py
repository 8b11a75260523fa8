"""Files an agent opens from a case: message attachments, the draft's files and its letter.

They come out of the vault decrypted, only for a logged-in agent, each download audited. A
sender's file never renders in our origin: attachments go out as `application/octet-stream`
downloads under a safe name, and the letter (HTML from our own templates) is served with a CSP
sandbox so that even a script slipped into it could not run.
"""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from flask import Response, abort

from bot.models import Case, Message
from bot.vault import VaultError, safe_name
from bot.web.desk import actor, desk, load_case, service, vault

LETTER_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


def draft_files(case: Case) -> list[dict[str, Any]]:
    """The draft's files as the page lists them: a safe name, and whether it can be downloaded."""
    files = []
    for index, entry in enumerate(case.draft.get("files") or []):
        if isinstance(entry, dict):
            path = entry.get("vault_path") or entry.get("path") or ""
            name = entry.get("name") or entry.get("filename") or PurePosixPath(path).name
            size = entry.get("size")
        else:
            path, size = str(entry), None
            name = PurePosixPath(path).name
        files.append({"index": index, "name": safe_name(name), "size": size, "path": path})
    return files


def download(data: bytes, name: str) -> Response:
    response = Response(data, mimetype="application/octet-stream")
    response.headers["Content-Disposition"] = f'attachment; filename="{safe_name(name)}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _read(path: str) -> bytes:
    try:
        return vault().read(path)
    except (VaultError, FileNotFoundError, IsADirectoryError):
        abort(404)


@desk.get("/desk/cases/<ref>/messages/<message_id>/attachments/<int:index>")
def attachment(ref: str, message_id: str, index: int):
    case = load_case(ref)
    doc = service().store.get("messages", message_id) if message_id in case.message_ids else None
    if doc is None:
        abort(404)
    message = Message.from_doc(doc)
    if not 0 <= index < len(message.attachments):
        abort(404)
    item = message.attachments[index]
    data = _read(item.path)
    service().cases.log_event("attachment_downloaded", actor(), case, {"message_id": message_id, "count": 1})
    return download(data, item.filename)


@desk.get("/desk/cases/<ref>/draft/files/<int:index>")
def draft_file(ref: str, index: int):
    case = load_case(ref)
    files = draft_files(case)
    if not 0 <= index < len(files) or not files[index]["path"]:
        abort(404)
    data = _read(files[index]["path"])
    service().cases.log_event("draft_file_downloaded", actor(), case,
                              {"draft_hash": case.draft.get("hash", ""), "count": 1})
    return download(data, files[index]["name"])


@desk.get("/desk/cases/<ref>/draft/letter")
def letter(ref: str):
    case = load_case(ref)
    path = case.draft.get("letter_html_path")
    if not path:
        abort(404)
    response = Response(_read(path), mimetype="text/html")
    response.headers["Content-Security-Policy"] = LETTER_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = case.language
    return response
