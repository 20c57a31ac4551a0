"""Colour a graph from live status: the `status --json` schema (wgbgp.status/1). Pure.

A tunnel is up when either end saw a handshake within `STALE_AFTER` seconds. A session
is down unless an end reports it Established; an Established session between two
clients is "direct" when they hold a WireGuard peer for each other with a fresh
handshake (no hub in the path), else "via-hub". No status for either end: "unknown".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from .model import Edge, Graph, State, Vertex

# WireGuard re-handshakes at least every 120 s while traffic (keepalives) flows, and gives
# up on a session after 180 s: older than that, the tunnel carries nothing.
STALE_AFTER = 180.0

Status = Mapping[str, Any]


class StatusFileError(ValueError):
    """The status file is not `status --json` output."""


def parse_statuses(text: str, where: str = "<status>") -> dict[str, Status]:
    """Statuses by machine from any of: one `status --json`, a list of them, JSON lines
    (`status --json --watch`, the last one per machine wins), or `lab status --json`."""
    docs: list[Any] = []
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError:
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise StatusFileError(f"{where}:{exc.lineno}: not JSON ({exc.msg}); pass the "
                                  "output of `wgbgp status --json`") from None
    found: dict[str, Status] = {}
    for doc in docs:
        items: Iterable[Any] = (doc["machines"].values()
                                if isinstance(doc, dict) and isinstance(doc.get("machines"), dict)
                                else doc if isinstance(doc, list) else [doc])
        for item in items:
            if not isinstance(item, dict) or not str(item.get("schema", "")).startswith(
                    "wgbgp.status/") or "machine" not in item:
                raise StatusFileError(f"{where}: holds something other than wgbgp status "
                                      "(no 'schema': 'wgbgp.status/1'); pass the output of "
                                      "`wgbgp status --json` or `wgbgp lab status --json`")
            found[str(item["machine"])] = item
    return found


def _peers(status: Status, interface: str | None = None) -> list[dict[str, Any]]:
    return [p for t in status.get("tunnels") or () if interface in (None, t.get("name"))
            for p in t.get("peers") or ()]


def _fresh(peer: Mapping[str, Any]) -> bool:
    age = peer.get("handshake_age")
    return age is not None and float(age) <= STALE_AFTER


def _tunnel(edge: Edge, statuses: Mapping[str, Status]) -> tuple[State, str]:
    iface = f"wg-{edge.plane}"
    seen: list[str] = []
    for end, other in ((edge.a, edge.b), (edge.b, edge.a)):
        status = statuses.get(end)
        if status is None:
            continue
        peers = [p for p in _peers(status, iface) if p.get("name") in (other, None)]
        for p in peers:
            age = p.get("handshake_age")
            seen.append(f"{end}: handshake {'never' if age is None else f'{age:.0f} s ago'}")
            if _fresh(p) and (p.get("name") == other or len(peers) == 1):
                return "up", "; ".join(seen)
        if not peers:
            seen.append(f"{end}: no {iface} peer {other}")
    return ("down" if seen else "unknown"), "; ".join(seen) or "no status"


def _session(edge: Edge, statuses: Mapping[str, Status], clients: bool) -> tuple[State, str]:
    seen: list[str] = []
    up = False
    for end, other in ((edge.a, edge.b), (edge.b, edge.a)):
        status = statuses.get(end)
        if status is None:
            continue
        bgp = status.get("bgp")
        if not bgp:
            seen.append(f"{end}: BGP not answering")
            continue
        for n in bgp.get("neighbors") or ():
            if n.get("name") == other:
                seen.append(f"{end}: {n.get('address')} {n.get('state')}")
                up = up or n.get("state") == "Established"
    if not seen:
        return "unknown", "no status"
    if not up:
        return "down", "; ".join(seen)
    direct = clients and any(_fresh(p) for end, other in ((edge.a, edge.b), (edge.b, edge.a))
                             for p in _peers(statuses.get(end) or {}) if p.get("name") == other)
    return ("direct" if direct else "via-hub"), "; ".join(seen)


def _problems(status: Status) -> tuple[str, ...]:
    errors = status.get("errors") or {}
    return tuple(f"{source}: unreadable" for source in sorted(errors))


def with_status(graph: Graph, statuses: Mapping[str, Status]) -> Graph:
    """The graph with every tunnel and session coloured by its live state."""
    hubs = {v.name for v in graph.vertices if v.kind == "hub"}
    edges: list[Edge] = []
    for e in graph.edges:
        if e.kind == "tunnel":
            state, detail = _tunnel(e, statuses)
            if e.with_session and state == "up":
                s_state, s_detail = _session(e, statuses, clients=False)
                state = "up" if s_state in ("via-hub", "direct") else s_state
                detail = f"{detail}; {s_detail}"
            edges.append(replace(e, state=state, detail=detail))
        elif e.kind == "session":
            state, detail = _session(e, statuses, clients=not {e.a, e.b} & hubs)
            edges.append(replace(e, state=state, detail=detail))
        else:
            edges.append(e)
    vertices: list[Vertex] = []
    for v in graph.vertices:
        status = statuses.get(v.name)
        problems = ("no status",) if status is None and v.kind in ("hub", "node") else (
            _problems(status) if status is not None else ())
        vertices.append(replace(v, problems=problems))
    return replace(graph, edges=tuple(edges), vertices=tuple(vertices), live=True)
