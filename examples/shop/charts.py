"""Server-side SVG charts: deterministic, no JavaScript, and checkable in the DOM (``rect.bar``)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "grouped_chart"]


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    unit: str = "",
    width: int = 480,
    height: int = 200,
    colour: str = "#2e86c1",
    empty: str = "no data yet",
) -> str:
    """A vertical bar chart as an inline ``<svg>`` (one ``rect.bar`` per value).

    *empty* is what it says when it has no values (and its ``data-empty``, as
    :func:`grouped_chart`'s).
    """
    n = max(1, len(values))
    top = max([*values, 0.0]) or 1.0
    left, bottom, plot_h = 48, 40, height - 70
    slot = (width - left - 10) / n
    bar_w = max(2.0, slot * 0.7)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"'
        + (f' data-empty="{escape(empty)}"' if not values else "")
        + ">",
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#999"/>',
        f'<text x="{left - 4}" y="{height - bottom - plot_h + 4}" font-size="10" '
        f'text-anchor="end">{top:.3g}</text>',
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
            f'fill="#888">{escape(empty)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


PALETTE = ("#2e86c1", "#c0392b", "#239b56", "#d68910", "#7d3c98", "#148f77", "#566573")


def grouped_chart(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    unit: str = "",
    width: int = 480,
    height: int = 220,
    empty: str = "no data yet",
) -> str:
    """Bars grouped per label, one colour per series, with a legend (one ``rect.bar`` each).

    *empty* is what the chart says when it has no labels (``data-empty`` on the
    ``<svg>`` carries it too, so a test can tell "nothing to draw" from a fault).
    """
    names = list(series)
    values = [v for s in series.values() for v in s]
    top = max([*values, 0.0]) or 1.0
    left, bottom, plot_h = 48, 40, height - 84
    group = (width - left - 10) / max(1, len(labels))
    bar_w = max(2.0, group * 0.8 / max(1, len(names)))
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"'
        + (f' data-empty="{escape(empty)}"' if not labels else "")
        + ">",
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#999"/>',
        f'<text x="{left - 4}" y="{height - bottom - plot_h + 4}" font-size="10" '
        f'text-anchor="end">{top:.4g}{escape(unit)}</text>',
    ]
    for k, name in enumerate(names):
        colour = PALETTE[k % len(PALETTE)]
        legend_x = left + k * 90
        parts.append(
            f'<rect x="{legend_x}" y="26" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="35" font-size="10">{escape(name[:14])}</text>'
        )
    for i, label in enumerate(labels):
        x0 = left + i * group + group * 0.1
        for k, name in enumerate(names):
            value = series[name][i]
            h = plot_h * (max(0.0, value) / top)
            x = x0 + k * bar_w
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{height - bottom - h:.1f}" '
                f'width="{bar_w * 0.9:.1f}" height="{h:.1f}" fill="{PALETTE[k % len(PALETTE)]}">'
                f"<title>{escape(label)} {escape(name)}: {value:.4g}{escape(unit)}</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + group * 0.4:.1f}" y="{height - bottom + 14}" font-size="10" '
            f'text-anchor="middle">{escape(label[:16])}</text>'
        )
    if not labels:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
            f'fill="#888">{escape(empty)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
