"""A small horizontal bar chart as inline SVG, drawn on the server (no script in letters or PDFs)."""
from __future__ import annotations

from html import escape

from markupsafe import Markup

BAR_COLOURS = ("#1f4e79", "#2e75b6", "#5b9bd5", "#9dc3e6")


def bar_chart(rows: list[tuple[str, int]], title: str, width: int = 520) -> Markup:
    """One bar per (label, value), longest first as given. Labels are escaped: they come from data."""
    if not rows:
        return Markup("")
    label_width, value_width, bar_height, gap, top = 150, 50, 18, 8, 6
    bar_space = width - label_width - value_width
    peak = max(value for _, value in rows) or 1
    height = top + len(rows) * (bar_height + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" font-family="Liberation Sans, DejaVu Sans, Arial, sans-serif">'
             f'<title>{escape(title)}</title>']
    for i, (label, value) in enumerate(rows):
        y = top + i * (bar_height + gap)
        length = max(2, round(bar_space * value / peak))
        shown = label if len(label) <= 22 else label[:21] + "…"
        parts.append(
            f'<text x="{label_width - 8}" y="{y + bar_height - 5}" text-anchor="end" font-size="11" '
            f'fill="#222">{escape(shown)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length}" height="{bar_height}" rx="2" '
            f'fill="{BAR_COLOURS[i % len(BAR_COLOURS)]}"/>'
            f'<text x="{label_width + length + 6}" y="{y + bar_height - 5}" font-size="11" fill="#222">{value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
