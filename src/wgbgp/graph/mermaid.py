"""A Graph as Mermaid flowchart text (for Markdown pages that render Mermaid). Pure."""

from __future__ import annotations

import re

from .model import STATE_COLOURS, Graph, Vertex

OPEN_CLOSE = {"hub": ('[["', '"]]'), "node": ('["', '"]'), "internet": ('(("', '"))'),
              "carrier": ('{{"', '"}}'), "home": ('[/"', '\\]')}


def _id(name: str) -> str:
    # Mermaid ids: letters, digits, '_'; names are [a-z0-9-], so '-' becomes '_'.
    return "m_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _text(v: Vertex) -> str:
    lines = [f"<b>{v.name}</b>", *v.lines, *(f"⚠ {p}" for p in v.problems)]
    return "<br/>".join(line.replace('"', "#quot;") for line in lines)


def to_mermaid(graph: Graph) -> str:
    """Mermaid `flowchart` text: boxes with AS and prefixes, one link per tunnel/session,
    coloured per plane (or per state, with status)."""
    out = [f"%% wgbgp graph of {graph.network} ({graph.mode} mode"
           + (", live" if graph.live else "") + ")",
           "flowchart TB" if graph.mode == "hub" or graph.lab else "flowchart LR"]
    for v in graph.vertices:
        left, right = OPEN_CLOSE[v.kind]
        out.append(f"  {_id(v.name)}{left}{_text(v)}{right}")
    styles = []
    for i, e in enumerate(graph.edges):
        words = {"tunnel": "wg-" + (e.plane or ""), "session": "BGP " + "/".join(e.afis),
                 "underlay": ""}[e.kind]
        if e.kind == "session" and len(graph.planes) > 1:
            words += f" on {e.plane}"
        if e.with_session:
            words += " + BGP"
        if e.state:
            words += f" ({e.state})"
        arrow = {"tunnel": "===", "session": "-.-", "underlay": "---"}[e.kind]
        link = f"{arrow}|{words}|" if words else arrow
        out.append(f"  {_id(e.a)} {link} {_id(e.b)}")
        colour = (STATE_COLOURS[e.state] if e.state else graph.plane_colour(e.plane)
                  if e.kind != "underlay" else "#b0b0b0")
        styles.append(f"  linkStyle {i} stroke:{colour}" +
                      (",stroke-width:3px" if e.state == "down" else ""))
    for v in graph.vertices:
        if v.kind == "hub":
            out.append(f"  style {_id(v.name)} stroke:{graph.plane_colour(v.name)},"
                       "stroke-width:2px")
        if v.problems:
            out.append(f"  style {_id(v.name)} stroke:{STATE_COLOURS['down']},stroke-width:2px")
    return "\n".join([*out, *styles]) + "\n"
