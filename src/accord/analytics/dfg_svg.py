"""The directly-follows graph drawn as SVG: layered top to bottom, durations on the arrows.

A simple Sugiyama-style layout, enough for the tens of activities a readable process map has:
cycles are broken by a depth-first search from the start activities (the edges that close a
loop are drawn as arcs on the right), layers are the longest path from a start, and nodes in a
layer are ordered by the average position of their predecessors. Arrow width follows the
number of cases that took the path; arrow colour its mean duration (grey fast, red slow).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from accord.analytics.svg import FONT, INK, MUTED

NODE_W, NODE_H, GAP_X, GAP_Y = 190, 44, 90, 74
MARGIN = 150  # room on the left for long arrows, on the right for loops
MAX_NODES, MAX_EDGES = 24, 48


def select(
    dfg: list[dict[str, Any]], counts: dict[str, int]
) -> tuple[list[str], list[dict[str, Any]]]:
    """The most frequent activities and paths, few enough to read."""
    nodes = sorted(counts, key=lambda a: (-counts[a], a))[:MAX_NODES]
    keep = set(nodes)
    edges = [e for e in dfg if e["from"] in keep and e["to"] in keep]
    edges.sort(key=lambda e: (-e["count"], e["from"], e["to"]))
    chosen = edges[:MAX_EDGES]
    # every node keeps its strongest way in and out, so nothing floats unconnected
    for n in nodes:
        for side in ("from", "to"):
            if not any(e[side] == n for e in chosen):
                best = next((e for e in edges if e[side] == n), None)
                if best is not None:
                    chosen.append(best)
    return nodes, chosen


def layers(nodes: list[str], edges: list[dict[str, Any]], starts: list[str]) -> dict[str, int]:
    """Layer of each node: longest path from a start once loop-closing edges are ignored."""
    out: dict[str, list[str]] = {n: [] for n in nodes}
    for e in sorted(edges, key=lambda e: -e["count"]):
        if e["from"] != e["to"]:
            out[e["from"]].append(e["to"])
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    order: list[str] = []
    for root in [s for s in starts if s in out] + nodes:
        if root in state:
            continue
        stack = [(root, iter(out[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                order.append(node)
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(out[nxt])))
    layer = dict.fromkeys(nodes, 0)
    for node in reversed(order):  # topological order of the acyclic part
        for nxt in out[node]:
            if (node, nxt) not in back:
                layer[nxt] = max(layer[nxt], layer[node] + 1)
    return layer


def _curve(*xy: float) -> str:
    x0, y0, x1, y1, x2, y2, x3, y3 = xy
    return f"M{x0:.1f},{y0:.1f} C{x1:.1f},{y1:.1f} {x2:.1f},{y2:.1f} {x3:.1f},{y3:.1f}"


def draw(audit: dict[str, Any], fmt: Callable[[float], str], title: str = "Process map") -> str:
    """The process map of an audit report as one ``<svg>``."""
    counts = {a["activity"]: int(a["events"]) for a in audit.get("activity_counts", [])}
    if not counts:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 300 40" {FONT}>'
            '<text x="8" y="24">no activities</text></svg>'
        )
    nodes, edges = select(audit["dfg"], counts)
    starts = list(audit.get("start_activities", {}))
    layer = layers(nodes, edges, starts)
    rows: dict[int, list[str]] = {}
    for n in sorted(nodes, key=lambda n: (layer[n], -counts[n], n)):
        rows.setdefault(layer[n], []).append(n)
    pos: dict[str, tuple[float, float]] = {}
    width = max(len(r) for r in rows.values()) * (NODE_W + GAP_X) + 2 * MARGIN
    for depth in sorted(rows):
        row = rows[depth]
        if depth > 0:  # barycentre of predecessors already placed

            def bary(n: str) -> float:
                xs = [pos[e["from"]][0] for e in edges if e["to"] == n and e["from"] in pos]
                return sum(xs) / len(xs) if xs else width / 2

            row.sort(key=bary)
        total = len(row) * NODE_W + (len(row) - 1) * GAP_X
        x0 = (width - total) / 2
        for i, n in enumerate(row):
            pos[n] = (x0 + i * (NODE_W + GAP_X), 50 + depth * (NODE_H + GAP_Y))
    height = int(50 + (max(rows) + 1) * (NODE_H + GAP_Y) + 20)
    means = [e["mean_s"] for e in edges if e.get("mean_s")]
    hi = max(means, default=1.0)
    top_count = max((e["count"] for e in edges), default=1)
    body = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" '
        'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" '
        'fill="context-stroke"/></marker></defs>'
    ]
    labels = []
    for e in sorted(edges, key=lambda e: e["count"]):
        a, b = e["from"], e["to"]
        (x1, y1), (x2, y2) = pos[a], pos[b]
        mean = e.get("mean_s") or 0.0
        heat = math.log1p(mean) / math.log1p(hi) if hi > 0 else 0.0
        color = f"hsl({int(210 - 210 * heat)}, {int(25 + 60 * heat)}%, {int(55 - 12 * heat)}%)"
        sw = 1 + 5 * math.log1p(e["count"]) / math.log1p(top_count)
        if a == b:
            cx, cy = x1 + NODE_W, y1 + NODE_H / 2
            path = f"M{cx},{cy - 10} C{cx + 40},{cy - 30} {cx + 40},{cy + 30} {cx},{cy + 10}"
            lx, ly = cx + 34, cy + 4
        elif layer[b] > layer[a] + 1:  # a long way down: round the left, clear of the nodes
            sx, sy = x1, y1 + NODE_H * 0.7
            tx, ty = x2, y2 + NODE_H * 0.3
            bend = 50 + 14 * (layer[b] - layer[a])
            path = _curve(sx, sy, sx - bend, sy, tx - bend, ty, tx, ty)
            lx, ly = min(sx, tx) - bend * 0.75, (sy + ty) / 2
        elif layer[b] > layer[a]:
            sx, sy = x1 + NODE_W / 2, y1 + NODE_H
            tx, ty = x2 + NODE_W / 2, y2
            my = (sy + ty) / 2
            path = f"M{sx:.1f},{sy:.1f} C{sx:.1f},{my:.1f} {tx:.1f},{my:.1f} {tx:.1f},{ty:.1f}"
            lx, ly = (sx + tx) / 2, my + 4
        else:  # a loop back (or a sideways step): an arc on the right
            sx, sy = x1 + NODE_W, y1 + NODE_H * 0.7
            tx, ty = x2 + NODE_W, y2 + NODE_H * 0.3
            bend = 60 + 20 * abs(layer[a] - layer[b])
            path = _curve(sx, sy, sx + bend, sy, tx + bend, ty, tx, ty)
            lx, ly = max(sx, tx) + bend * 0.75, (sy + ty) / 2
        tip = f"{a} → {b}: {e['count']} times, mean {fmt(mean)}"
        body.append(
            f'<path d="{path}" fill="none" stroke="{color}" stroke-width="{sw:.1f}" '
            f'marker-end="url(#arrow)" opacity="0.85"><title>{escape(tip)}</title></path>'
        )
        labels.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="10" text-anchor="middle" fill="{INK}" '
            f'paint-order="stroke" stroke="#fff" stroke-width="3">'
            f"{e['count']} · {escape(fmt(mean))}</text>"
        )
    for n in nodes:
        x, y = pos[n]
        short = n if len(n) <= 26 else n[:24] + "…"
        start = n in starts
        body.append(
            f'<g><rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="8" '
            f'fill="{"#e8f1fa" if start else "#fff"}" stroke="{INK}" stroke-width="1.2"/>'
            f'<text x="{x + NODE_W / 2:.1f}" y="{y + 19:.1f}" font-size="12" text-anchor="middle" '
            f'fill="{INK}">{escape(short)}</text>'
            f'<text x="{x + NODE_W / 2:.1f}" y="{y + 35:.1f}" font-size="10" '
            f'text-anchor="middle" fill="{MUTED}">{counts[n]} events</text>'
            f"<title>{escape(n)}</title></g>"
        )
    body.extend(labels)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'class="chart dfg" {FONT}><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )
