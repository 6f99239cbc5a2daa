"""Small inline-SVG charts for the reports: no JavaScript, no network, nothing to install.

Each function returns one ``<svg>`` element as text. Labels are escaped; sizes are in CSS
pixels and the charts scale with the page (``viewBox`` plus ``width: 100%``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape

INK = "#1f2933"
MUTED = "#7b8794"
GRID = "#e4e7eb"
BAR = "#3e7cb1"
ACCENT = "#d9534f"
FONT = 'font-family="system-ui, sans-serif"'


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title, {chr(34): "&quot;"})}" class="chart" {FONT}>'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _text(  # noqa: PLR0917 - SVG text is positional by nature
    x: float, y: float, s: str, size: int = 11, anchor: str = "start", color: str = INK
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{color}">{escape(s)}</text>'
    )


def nice_ticks(hi: float, n: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``hi``."""
    if hi <= 0:
        return [0.0, 1.0]
    raw = hi / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(math.ceil(hi / step) + 1)]


def histogram(
    edges: Sequence[float], counts: Sequence[int], fmt: Callable[[float], str], title: str
) -> str:
    """Vertical bars over bins; the x axis labels bin edges with ``fmt``."""
    w, h, left, bottom, top = 720, 260, 48, 40, 16
    if not counts:
        return _svg(w, 60, [_text(10, 30, "no data", color=MUTED)], title)
    ticks = nice_ticks(max(counts))
    ymax = ticks[-1]
    pw, ph = w - left - 12, h - bottom - top
    bw = pw / len(counts)
    body = []
    for t in ticks:
        y = top + ph - ph * t / ymax
        body.append(f'<line x1="{left}" x2="{w - 12}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y + 4, f"{t:g}", 10, "end", MUTED))
    for i, c in enumerate(counts):
        bh = ph * c / ymax
        x = left + i * bw
        overflow = i == len(counts) - 1 and len(edges) == len(counts) + 1 and i > 0
        color = ACCENT if overflow and edges[-1] > edges[-2] * 1.5 else BAR
        body.append(
            f'<rect x="{x + 1:.1f}" y="{top + ph - bh:.1f}" width="{max(bw - 2, 1):.1f}" '
            f'height="{bh:.1f}" fill="{color}"><title>{escape(fmt(edges[i]))} - '
            f"{escape(fmt(edges[i + 1]))}: {c}</title></rect>"
        )
    step = max(1, len(counts) // 6)
    for i in range(0, len(edges), step):
        body.append(_text(left + i * bw, h - bottom + 16, fmt(edges[i]), 10, "middle", MUTED))
    return _svg(w, h, body, title)


def timeline(
    labels: Sequence[str],
    bars: Sequence[int],
    line: Sequence[int] | None,
    title: str,
    *,
    bar_name: str = "completed",
    line_name: str = "open (WIP)",
) -> str:
    """Bars (e.g. cases completed per period) with a line (e.g. cases open) on one axis;
    ``line`` None draws the bars alone."""
    w, h, left, bottom, top = 720, 260, 48, 46, 24
    if not bars:
        return _svg(w, 60, [_text(10, 30, "no data", color=MUTED)], title)
    ticks = nice_ticks(max(*bars, max(line or (), default=0)))
    ymax = ticks[-1]
    pw, ph = w - left - 12, h - bottom - top
    bw = pw / len(bars)
    body = []
    for t in ticks:
        y = top + ph - ph * t / ymax
        body.append(f'<line x1="{left}" x2="{w - 12}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y + 4, f"{t:g}", 10, "end", MUTED))
    for i, b in enumerate(bars):
        bh = ph * b / ymax
        body.append(
            f'<rect x="{left + i * bw + 1:.1f}" y="{top + ph - bh:.1f}" '
            f'width="{max(bw - 2, 1):.1f}" height="{bh:.1f}" fill="{BAR}">'
            f"<title>{escape(labels[i])}: {b} {bar_name}"
            + (f", {line[i]} {line_name}" if line is not None else "")
            + "</title></rect>"
        )
    if line is not None:
        pts = " ".join(
            f"{left + (i + 0.5) * bw:.1f},{top + ph - ph * v / ymax:.1f}"
            for i, v in enumerate(line)
        )
        body.append(f'<polyline points="{pts}" fill="none" stroke="{ACCENT}" stroke-width="2"/>')
    step = max(1, len(labels) // 6)
    for i in range(0, len(labels), step):
        body.append(_text(left + (i + 0.5) * bw, h - bottom + 16, labels[i], 10, "middle", MUTED))
    body.append(f'<rect x="{left}" y="4" width="10" height="10" fill="{BAR}"/>')
    body.append(_text(left + 14, 13, bar_name, 10))
    if line is not None:
        body.append(f'<rect x="{left + 110}" y="8" width="14" height="2" fill="{ACCENT}"/>')
        body.append(_text(left + 128, 13, line_name, 10))
    return _svg(w, h, body, title)


def hbars(rows: Sequence[tuple[str, float, str]], title: str, color: str = ACCENT) -> str:
    """Horizontal bars, largest first: (label, value, value text)."""
    w, row_h, left = 720, 26, 260
    if not rows:
        return _svg(w, 60, [_text(10, 30, "no data", color=MUTED)], title)
    h = row_h * len(rows) + 10
    hi = max(v for _, v, _ in rows) or 1.0
    body = []
    for i, (label, v, txt) in enumerate(rows):
        y = 5 + i * row_h
        bw = (w - left - 250) * v / hi
        short = label if len(label) <= 40 else label[:38] + "…"
        body.append(_text(left - 8, y + 16, short, 11, "end"))
        body.append(
            f'<rect x="{left}" y="{y + 3}" width="{max(bw, 1):.1f}" height="{row_h - 8}" '
            f'fill="{color}" opacity="{1 - 0.5 * i / max(len(rows), 1):.2f}">'
            f"<title>{escape(label)}: {escape(txt)}</title></rect>"
        )
        body.append(_text(left + bw + 6, y + 16, txt, 11, color=MUTED))
    return _svg(w, h, body, title)
