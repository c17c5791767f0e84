"""Server-side SVG charts: deterministic, no JavaScript, and checkable in the DOM (``rect.bar``)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart"]


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    unit: str = "",
    width: int = 480,
    height: int = 200,
    colour: str = "#2e86c1",
) -> str:
    """A vertical bar chart as an inline ``<svg>`` (one ``rect.bar`` per value)."""
    n = max(1, len(values))
    top = max([*values, 0.0]) or 1.0
    left, bottom, plot_h = 40, 40, height - 70
    slot = (width - left - 10) / n
    bar_w = max(2.0, slot * 0.7)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#999"/>',
        f'<text x="{left - 4}" y="{height - bottom - plot_h + 4}" font-size="10" '
        f'text-anchor="end">{top:g}</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * (value / top)
        x = left + i * slot + (slot - bar_w) / 2
        y = height - bottom - h
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{escape(label)}: {value:g}{escape(unit)}</title></rect>'
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 14}" font-size="10" '
            f'text-anchor="middle">{escape(label[:12])}</text>'
        )
    if not values:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
            'fill="#888">no data yet</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
