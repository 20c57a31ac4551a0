"""A Graph as Graphviz DOT text. Pure: running Graphviz is the caller's business.

Topologies come with fixed positions (layout.py) and are drawn with `neato -n2`; a lab
is left to `dot`. `engine_args(graph)` says which, so every caller draws alike.
"""

from __future__ import annotations

import itertools
from html import escape

from .layout import Layout, layout
from .model import STATE_COLOURS, Edge, Graph, Vertex

SHAPES = {"hub": "box3d", "node": "box", "internet": "ellipse", "carrier": "octagon",
          "home": "house"}
FILL = {"hub": "#e8eef7", "node": "#ffffff", "internet": "#f3f3f3", "carrier": "#fff4e0",
        "home": "#fff4e0"}
STATE_WORDS = {"up": "up", "down": "down", "direct": "up, direct", "via-hub": "up, via hub",
               "unknown": "no status"}


def engine_args(graph: Graph) -> list[str]:
    """Graphviz arguments for this graph: fixed positions for a topology, `dot` for a lab."""
    return ["-Kdot"] if graph.lab else ["-Kneato", "-n2"]


def _id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


QUOTED = ('"', "<")


def _attrs(attrs: dict[str, str]) -> str:
    """`k="v", ...`: every value quoted (an HTML label <...> as it is)."""
    return ", ".join(f"{k}={v if v[:1] in QUOTED else _id(v)}" for k, v in attrs.items())


def _label(v: Vertex) -> str:
    rows = [f"<B>{escape(v.name)}</B>", *(escape(line) for line in v.lines),
            *(f'<FONT COLOR="{STATE_COLOURS["down"]}">{escape(p)}</FONT>' for p in v.problems)]
    return "<" + "<BR/>".join(rows) + ">"


def _vertex(v: Vertex, graph: Graph, lay: Layout | None) -> str:
    attrs = {"shape": SHAPES[v.kind], "label": _label(v), "fillcolor": f'"{FILL[v.kind]}"',
             "color": f'"{graph.plane_colour(v.name) if v.kind == "hub" else "#444444"}"',
             "id": _id(f"machine-{v.name}" if v.kind in ("hub", "node") else f"net-{v.name}"),
             "tooltip": _id(v.name + (" (" + ", ".join(v.problems) + ")" if v.problems
                                      else ""))}
    if v.kind == "hub":
        attrs["penwidth"] = "2"
    if v.problems:
        attrs["color"] = f'"{STATE_COLOURS["down"]}"'
        attrs["penwidth"] = "2"
    if lay is not None:
        b = lay.boxes[v.name]
        attrs["pos"] = f'"{b.x:.1f},{b.y:.1f}!"'
    return f"  {_id(v.name)} [{_attrs(attrs)}];"


def _edge_style(e: Edge, graph: Graph) -> dict[str, str]:
    colour = graph.plane_colour(e.plane)
    if e.state is not None:
        colour = STATE_COLOURS[e.state]
    what = {"tunnel": "tunnel + BGP session" if e.with_session else "tunnel",
            "session": "BGP session " + "/".join(e.afis), "underlay": "link"}[e.kind]
    where = f" on {e.plane}'s plane" if e.plane and len(graph.planes) > 1 else ""
    state = f": {STATE_WORDS[e.state]}" if e.state else ""
    tip = f"{e.a} - {e.b}, {what}{where}{state}" + (f" ({e.detail})" if e.detail else "")
    attrs = {"color": f'"{colour}"', "tooltip": _id(tip), "dir": "none",
             "id": _id(f"{e.kind}-{'-'.join(sorted((e.a, e.b)))}-{e.plane or ''}")}
    if e.kind == "tunnel":
        attrs["penwidth"] = "2.2"
    elif e.kind == "session":
        attrs["style"] = "dashed"
        attrs["penwidth"] = "1.4" if len(graph.vertices) < 12 else "0.7"
    else:
        attrs["color"] = '"#b0b0b0"'
        attrs["penwidth"] = "1.2"
    if e.state == "down":
        attrs["penwidth"] = "3"
        attrs["style"] = "bold,dashed" if e.kind == "session" else "bold"
    if e.state == "direct":
        attrs["style"] = "solid"
    if graph.lab and e.kind != "underlay":
        attrs["constraint"] = "false"  # rank the lab by its underlay alone
    return attrs


def _edges(graph: Graph, lay: Layout | None) -> list[str]:
    lines = []
    if lay is not None and lay.junctions:
        # Hub mode: each plane's trunk runs from its hub down through the rows' junctions.
        for name, (x, y) in lay.junctions.items():
            plane = name.removeprefix("junction-").rsplit("-", 1)[0]
            lines.append(f'  {_id(name)} [shape=point, width=0.08, pos="{x:.1f},{y:.1f}!", '
                         f'color="{graph.plane_colour(plane)}", label=""];')
        for plane in graph.planes:
            chain = [plane, *sorted((j for j in lay.junctions
                                     if j.rsplit("-", 1)[0] == f"junction-{plane}"),
                                    key=lambda j: int(j.rsplit("-", 1)[1]))]
            for a, b in itertools.pairwise(chain):
                lines.append(f'  {_id(a)} -- {_id(b)} [color="{graph.plane_colour(plane)}", '
                             f'penwidth=3, tooltip="{plane}\'s plane"];')
    for e in graph.edges:
        attrs = _edge_style(e, graph)
        a, b = e.a, e.b
        if lay is not None and e.kind == "tunnel" and (e.a, e.b) in lay.feeds:
            b = lay.feeds[(e.a, e.b)]  # hub mode: the spoke ends at its row's junction
        lines.append(f"  {_id(a)} -- {_id(b)} [{_attrs(attrs)}];")
    return lines


def _legend(graph: Graph, lay: Layout | None) -> str:
    rows = []
    if len(graph.planes) > 1 or not graph.live:
        for p in graph.planes:
            rows.append(f'<TR><TD><FONT COLOR="{graph.plane_colour(p)}">━━</FONT></TD>'
                        f"<TD ALIGN=\"LEFT\">{escape(p)}'s plane (wg-{escape(p)})</TD></TR>")
    if graph.live:
        words = {"up": "up" + (" (a session: through a hub)" if graph.mode == "mesh" else ""),
                 "direct": "up, direct (no hub in the path)", "down": "down",
                 "unknown": "no status"}
        for state, text in words.items():
            if state == "direct" and graph.mode != "mesh":
                continue
            rows.append(f'<TR><TD><FONT COLOR="{STATE_COLOURS[state]}">━━</FONT></TD>'
                        f'<TD ALIGN="LEFT">{escape(text)}</TD></TR>')
    rows.append('<TR><TD>━━</TD><TD ALIGN="LEFT">WireGuard tunnel'
                + (" + BGP session" if graph.mode == "hub" else "") + "</TD></TR>")
    if graph.mode == "mesh":
        rows.append('<TR><TD>╌╌</TD><TD ALIGN="LEFT">BGP session (through the hub)</TD></TR>')
    title = f"{escape(graph.network)}: {graph.mode} mode" + (", live" if graph.live else "")
    table = (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2"><TR><TD COLSPAN="2">'
             f"<B>{title}</B></TD></TR>{''.join(rows)}</TABLE>>")
    pos = ""
    if lay is not None and lay.boxes:
        left = min(b.x - b.w / 2 for b in lay.boxes.values())
        low = min(b.y - b.h / 2 for b in lay.boxes.values())
        pos = f', pos="{left + 90:.1f},{low - 30 - 9 * len(rows):.1f}!"'
    return f'  legend [shape=plaintext, style="", id="legend", label={table}{pos}];'


def _splines(graph: Graph) -> str:
    # Small meshes: route sessions around the hub (a pair opposite on the circle would
    # hide behind it). Big ones: straight chords; routing 435 of them takes seconds.
    return "true" if graph.mode == "mesh" and len(graph.vertices) <= 16 else "line"


def to_dot(graph: Graph) -> str:
    """DOT text for the graph (draw it with `dot {engine_args(graph)} -Tsvg`)."""
    lay = layout(graph)
    head = [f"graph {_id(graph.network or 'wgbgp')} {{",
            '  graph [fontname="Helvetica", outputorder="edgesfirst", pad="0.3", '
            + ('rankdir="TB", nodesep="0.4", ranksep="0.7", splines="true"'
               if lay is None else f'splines="{_splines(graph)}"') + "];",
            '  node [fontname="Helvetica", fontsize="10", style="filled,rounded", '
            'margin="0.12,0.06"];',
            '  edge [fontname="Helvetica", fontsize="9"];']
    body = [_vertex(v, graph, lay) for v in graph.vertices]
    return "\n".join([*head, *body, *_edges(graph, lay), _legend(graph, lay), "}"]) + "\n"
