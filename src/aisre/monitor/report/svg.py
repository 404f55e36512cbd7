"""Tiny inline-SVG charts for self-contained reports: no JavaScript, no external files.

Each chart is a few KB whatever the data size, because it draws binned counts (from
profiles) or one point per window, never raw rows.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

REFERENCE_COLOUR = "#8a94a6"
CURRENT_COLOUR = "#e8590c"
_PALETTE = ("#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#c2255c", "#5c940d")


def _fmt(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    if abs(x) >= 1000 or abs(x) < 0.01:
        return f"{x:.3g}"
    return f"{x:.3f}".rstrip("0").rstrip(".")


def histogram(
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    title: str,
    width: int = 360,
    height: int = 150,
) -> str:
    """Overlaid bars of two share vectors over the same bins (reference grey, current orange)."""
    n = len(labels)
    top = max([*reference, *current, 1e-12])
    pad_l, pad_b, pad_t = 34, 26, 18
    plot_w, plot_h = width - pad_l - 6, height - pad_b - pad_t
    bar_w = plot_w / max(n, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{html.escape(title)}</title>',
        f'<text x="{pad_l}" y="12" font-size="11">{html.escape(title)}</text>',
        f'<text x="2" y="{pad_t + 8}" font-size="9">{_fmt(top)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 6}" y2="{pad_t + plot_h}" stroke="#999"/>',
    ]
    for i, (r, c) in enumerate(zip(reference, current, strict=True)):
        x = pad_l + i * bar_w
        for value, colour, inset, opacity in ((r, REFERENCE_COLOUR, 0.0, 0.9), (c, CURRENT_COLOUR, 0.25, 0.75)):
            h = plot_h * value / top
            parts.append(
                f'<rect x="{x + bar_w * inset:.1f}" y="{pad_t + plot_h - h:.1f}" '
                f'width="{max(bar_w * (1 - inset) - 1, 0.5):.1f}" height="{h:.1f}" fill="{colour}" '
                f'fill-opacity="{opacity}"><title>{html.escape(labels[i])}: ref {r:.3f}, cur {c:.3f}</title></rect>'
            )
    step = max(1, math.ceil(n / 6))
    for i in range(0, n, step):
        label = labels[i] if len(labels[i]) <= 10 else labels[i][:9] + "…"
        parts.append(f'<text x="{pad_l + i * bar_w:.1f}" y="{height - 8}" font-size="8">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def lines(
    series: dict[str, Sequence[tuple[float, float]]],
    title: str,
    threshold: float | None = None,
    width: int = 720,
    height: int = 200,
) -> str:
    """One polyline per series of (x, y) points, with an optional dashed threshold line."""
    points = [p for s in series.values() for p in s]
    if not points:
        return ""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if threshold is not None:
        ys.append(threshold)
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, min(ys)), max(ys) or 1.0
    pad_l, pad_b, pad_t, pad_r = 40, 20, 18, 120
    plot_w, plot_h = width - pad_l - pad_r, height - pad_b - pad_t

    def sx(x: float) -> float:
        return pad_l + (0.5 if x1 == x0 else (x - x0) / (x1 - x0)) * plot_w

    def sy(y: float) -> float:
        return pad_t + plot_h - (y - y0) / ((y1 - y0) or 1.0) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{html.escape(title)}</title>',
        f'<text x="{pad_l}" y="12" font-size="11">{html.escape(title)}</text>',
        f'<text x="2" y="{pad_t + 8}" font-size="9">{_fmt(y1)}</text>',
        f'<text x="2" y="{pad_t + plot_h}" font-size="9">{_fmt(y0)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{pad_l + plot_w}" y2="{pad_t + plot_h}" stroke="#999"/>',
    ]
    if threshold is not None:
        y = sy(threshold)
        parts.append(
            f'<line x1="{pad_l}" y1="{y:.1f}" x2="{pad_l + plot_w}" y2="{y:.1f}" stroke="#c92a2a" '
            'stroke-dasharray="4 3"><title>threshold</title></line>'
        )
    for i, (name, s) in enumerate(series.items()):
        colour = _PALETTE[i % len(_PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
        parts.append(
            f'<text x="{pad_l + plot_w + 6}" y="{pad_t + 10 + 12 * i}" font-size="10" '
            f'fill="{colour}">{html.escape(name[:18])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
