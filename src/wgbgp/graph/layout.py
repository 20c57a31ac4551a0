"""Where each machine goes: fixed positions, so that big networks stay readable. Pure.

Graphviz's own engines tangle a full mesh (435 sessions at 30 nodes) and stretch a
route server's 200 spokes into one endless row, so topologies are placed here and drawn
by `neato -n2` (positions kept, edges routed around boxes):

- mesh: the clients on a circle, the hubs inside it; sessions are chords of the circle;
- hub mode: the hubs on top, the clients in rows below, each row fed by one junction per
  plane, so every spoke is short and none crosses a box.

A lab (carriers and NATs included) is small and irregular: Graphviz's `dot` lays it out.
Positions are in points (1/72 in), y growing upwards as in Graphviz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .model import Graph, Vertex

CHAR_W = 6.2  # points per character at 10 pt Helvetica, a little generous
LINE_H = 13.0
PAD = 14.0
GAP = 28.0  # at least this much between two boxes
ROW = 10  # clients per row in hub mode
TRUNK = 18.0  # points between two planes' trunks


@dataclass(frozen=True)
class Box:
    """A vertex's centre and size, in points."""

    x: float
    y: float
    w: float
    h: float

    def overlaps(self, other: Box, gap: float = 0.0) -> bool:
        return (abs(self.x - other.x) * 2 < self.w + other.w + 2 * gap
                and abs(self.y - other.y) * 2 < self.h + other.h + 2 * gap)


def size(v: Vertex) -> tuple[float, float]:
    """The box a vertex's label needs (width, height) in points."""
    lines = v.label_lines
    w = max(len(line) for line in lines) * CHAR_W + 2 * PAD
    return max(w, 72.0), len(lines) * LINE_H + PAD


@dataclass(frozen=True)
class Layout:
    """Boxes by vertex name, and junction points (hub mode) by name."""

    boxes: dict[str, Box]
    junctions: dict[str, tuple[float, float]]
    # Hub mode: the junction feeding each (client, plane).
    feeds: dict[tuple[str, str], str]


def layout(graph: Graph) -> Layout | None:
    """Fixed positions for a topology's graph; None for a lab (left to Graphviz)."""
    if graph.lab:
        return None
    return _hub_rows(graph) if graph.mode == "hub" else _circle(graph)


def _circle(graph: Graph) -> Layout:
    nodes = [v for v in graph.vertices if v.kind == "node"]
    hubs = [v for v in graph.vertices if v.kind == "hub"]
    sizes = {v.name: size(v) for v in graph.vertices}
    # Hubs on a small inner circle (one: the centre).
    hub_span = max((math.hypot(*sizes[h.name]) for h in hubs), default=0.0) + GAP
    r_hub = 0.0 if len(hubs) < 2 else hub_span / (2 * math.sin(math.pi / len(hubs)))
    boxes: dict[str, Box] = {}
    for i, h in enumerate(hubs):
        # From the left, so two hubs sit side by side, clear of the nodes above and below.
        a = math.pi - 2 * math.pi * i / max(len(hubs), 1)
        w, hh = sizes[h.name]
        boxes[h.name] = Box(r_hub * math.cos(a), r_hub * math.sin(a), w, hh)
    if nodes:
        # Neighbours on the circle are one chord apart: the chord must clear both boxes.
        span = max(math.hypot(*sizes[v.name]) for v in nodes) + GAP
        r = span / (2 * math.sin(math.pi / len(nodes))) if len(nodes) > 1 else 0.0
        r = max(r, r_hub + hub_span + span, 160.0)
        for i, v in enumerate(nodes):
            a = math.pi / 2 - 2 * math.pi * (i + 0.5) / len(nodes)
            w, hh = sizes[v.name]
            boxes[v.name] = Box(r * math.cos(a), r * math.sin(a), w, hh)
    return Layout(boxes, {}, {})


def _hub_rows(graph: Graph) -> Layout:
    nodes = [v for v in graph.vertices if v.kind == "node"]
    hubs = [v for v in graph.vertices if v.kind == "hub"]
    sizes = {v.name: size(v) for v in graph.vertices}
    cell_w = max((sizes[v.name][0] for v in nodes), default=72.0) + GAP
    cell_h = max((sizes[v.name][1] for v in nodes), default=40.0)
    per_row = min(ROW, max(len(nodes), 1))
    width = (per_row + 1) * cell_w
    planes = len(hubs) or 1
    # Each row: a band for the junctions (one per plane), then the boxes.
    band = 64.0
    row_h = cell_h + band + GAP
    boxes: dict[str, Box] = {}
    junctions: dict[str, tuple[float, float]] = {}
    feeds: dict[tuple[str, str], str] = {}
    hub_h = max((sizes[h.name][1] for h in hubs), default=40.0)
    top = hub_h / 2 + GAP + 20.0
    for i, h in enumerate(hubs):
        x = (i + 1) * width / (len(hubs) + 1) - width / 2
        boxes[h.name] = Box(x, top, *sizes[h.name])
    rows = [nodes[i:i + per_row] for i in range(0, len(nodes), per_row)]
    for r, row in enumerate(rows):
        y_top = -r * row_h
        for p, h in enumerate(hubs):
            # The planes' trunks run down a free column in the middle; each row's
            # junctions sit side by side in it, the row's spokes fan out below them.
            j = f"junction-{h.name}-{r}"
            junctions[j] = ((p - (planes - 1) / 2) * TRUNK, y_top - 12.0)
            for v in row:
                feeds[(v.name, h.name)] = j
        half = (len(row) + 1) // 2
        slots = len(row) + 1  # one slot for the trunks
        for c, v in enumerate(row):
            slot = c if c < half else c + 1
            x = (slot - (slots - 1) / 2) * cell_w
            boxes[v.name] = Box(x, y_top - band - cell_h / 2, *sizes[v.name])
    return Layout(boxes, junctions, feeds)


def overlapping(boxes: dict[str, Box], gap: float = 0.0) -> list[tuple[str, str]]:
    """Pairs of boxes closer than `gap` (a layout check for tests)."""
    items = sorted(boxes.items(), key=lambda kv: kv[1].x - kv[1].w / 2)
    found = []
    for i, (a, ba) in enumerate(items):
        for b, bb in items[i + 1:]:
            if bb.x - bb.w / 2 > ba.x + ba.w / 2 + gap:
                break
            if ba.overlaps(bb, gap):
                found.append((a, b))
    return found
