"""The PDF of a letter (and its data annex) with WeasyPrint: A4, page numbers, nothing fetched from outside."""
from __future__ import annotations

from typing import Any

from weasyprint import HTML


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    # Letters are self-contained (inline CSS and SVG); data inside them must never make us fetch a URL.
    raise ValueError(f"external resource refused: {url[:60]}")


def html_to_pdf(html: str) -> bytes:
    return HTML(string=html, url_fetcher=_no_fetch).write_pdf()
