"""The picture's content: machines, tunnels and BGP sessions, as a small graph. Pure.

Built from the compiled plans (so addresses, planes and sessions are exactly what `apply`
puts on the machines), independent of how it is drawn: `dot.py` and `mermaid.py` turn a
`Graph` into text, `layout.py` places its machines, `live.py` colours it from status.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from ..compile import Plan

Kind = Literal["hub", "node", "internet", "carrier", "home"]
EdgeKind = Literal["tunnel", "session", "underlay"]
# None: drawn from the topology alone (no status). Tunnels are "up" or "down"; a session
# is "down", or up "via-hub" (through a hub, as every mesh session is today) or "direct"
# (client to client without a hub); "unknown" when no status covers it.
State = Literal["up", "down", "direct", "via-hub", "unknown"]

# Plane colours: one per hub, never green or red (those say "up" and "down").
PLANE_COLOURS = ("#1f5fa8", "#7b3fa0", "#b8650a", "#138a8a", "#a83f7b", "#5a5a5a")
STATE_COLOURS: dict[str, str] = {"up": "#2e7d32", "down": "#c62828", "direct": "#1565c0",
                                 "via-hub": "#2e7d32", "unknown": "#9e9e9e"}
# Prefixes listed on a machine before "+N more" (a node may announce hundreds).
MAX_PREFIXES_SHOWN = 3


@dataclass(frozen=True)
class Vertex:
    """One box in the picture: a machine, or (in a lab) a piece of the underlay."""

    name: str
    kind: Kind
    lines: tuple[str, ...] = ()  # under the name: AS, prefixes, tunnel addresses
    # Findings shown on the box (from status): e.g. "BGP not answering".
    problems: tuple[str, ...] = ()

    @property
    def label_lines(self) -> tuple[str, ...]:
        return (self.name, *self.lines, *self.problems)


@dataclass(frozen=True)
class Edge:
    """A tunnel (client to hub, on one plane), a BGP session, or an underlay link."""

    a: str
    b: str
    kind: EdgeKind
    plane: str | None = None  # the hub whose plane it is on
    afis: tuple[str, ...] = ()  # sessions: "ipv4", "ipv6"
    state: State | None = None
    # Hub mode: the client-hub tunnel also carries the client's route-server session.
    with_session: bool = False
    detail: str = ""  # a tooltip: handshake age, session state

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        return (*sorted((self.a, self.b)), self.kind, self.plane)  # type: ignore[return-value]


@dataclass(frozen=True)
class Graph:
    """Everything drawn. `planes` are the hubs, in topology order (their colours)."""

    network: str
    mode: Literal["mesh", "hub"]
    vertices: tuple[Vertex, ...]
    edges: tuple[Edge, ...]
    planes: tuple[str, ...]
    live: bool = False  # coloured from status
    lab: bool = field(default=False)  # carriers and NATs included

    def vertex(self, name: str) -> Vertex:
        return next(v for v in self.vertices if v.name == name)

    def plane_colour(self, plane: str | None) -> str:
        if plane is None or plane not in self.planes:
            return PLANE_COLOURS[-1]
        return PLANE_COLOURS[self.planes.index(plane) % len(PLANE_COLOURS)]

    def machines(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.vertices if v.kind in ("hub", "node"))


def _prefix_lines(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    shown = prefixes[:MAX_PREFIXES_SHOWN]
    more = len(prefixes) - len(shown)
    return (*shown, *([f"+{more} more"] if more else []))


def build_graph(plans: dict[str, Plan], mode: Literal["mesh", "hub"]) -> Graph:
    """The graph of a compiled topology: hubs, nodes (AS, announced prefixes), one tunnel
    per client and hub, and the BGP sessions (mesh pairs, or client to route server)."""
    hubs = [p for p in plans.values() if p.role == "hub"]
    planes = tuple(h.machine for h in hubs)
    vertices: list[Vertex] = []
    for hub in hubs:
        lines = [f"AS {hub.bgp.asn} route server"] if hub.bgp and hub.bgp.route_server else []
        lines += [str(a) for t in hub.tunnels for a in t.addresses]
        vertices.append(Vertex(hub.machine, "hub", tuple(lines)))
    edges: dict[tuple[str, str, str, str | None], Edge] = {}
    for plan in plans.values():
        if plan.role == "hub":
            continue
        lines = [f"AS {plan.bgp.asn}"] if plan.bgp else []
        if plan.bgp:
            lines += _prefix_lines(tuple(str(p) for p in plan.bgp.originate))
        vertices.append(Vertex(plan.machine, "node", tuple(lines)))
        for t in plan.tunnels:
            e = Edge(plan.machine, t.hub, "tunnel", t.hub, with_session=mode == "hub")
            edges[e.key] = e
        if plan.bgp is None or mode == "hub":
            continue
        iface_hub = {t.interface: t.hub for t in plan.tunnels}
        for s in plan.bgp.sessions:
            plane = iface_hub.get(s.interface)
            e = Edge(plan.machine, s.peer, "session", plane)
            old = edges.get(e.key)
            afis = tuple(sorted({*(old.afis if old else ()), s.afi}))
            edges[e.key] = replace(old or e, afis=afis)
    if mode == "hub":
        # A route-server session rides on each client-hub tunnel: record its families.
        for plan in plans.values():
            if plan.role == "hub" or plan.bgp is None:
                continue
            for s in plan.bgp.sessions:
                key = Edge(plan.machine, s.peer, "tunnel", s.peer).key
                if key in edges:
                    old = edges[key]
                    edges[key] = replace(old, afis=tuple(sorted({*old.afis, s.afi})))
    return Graph(plans[next(iter(plans))].network if plans else "", mode, tuple(vertices),
                 tuple(edges.values()), planes)


@dataclass(frozen=True)
class Underlay:
    """Where a lab puts each machine: plain data (lab.spec is a layer to the right)."""

    hubs: tuple[str, ...]
    clients: tuple[tuple[str, str, bool], ...]  # (client, carrier, behind a home NAT)
    carriers: tuple[tuple[str, str], ...]  # (carrier, its public address)


def with_underlay(graph: Graph, underlay: Underlay) -> Graph:
    """The graph with a lab's emulated Internet: hubs on it, each client behind its
    carrier's CG-NAT (and its home router's NAT, when it has one)."""
    vertices = [*graph.vertices, Vertex("internet", "internet", ("emulated Internet",))]
    edges = list(graph.edges)
    for carrier, public in underlay.carriers:
        vertices.append(Vertex(f"carrier-{carrier}", "carrier", ("CG-NAT", public)))
        edges.append(Edge(f"carrier-{carrier}", "internet", "underlay"))
    for hub in underlay.hubs:
        edges.append(Edge(hub, "internet", "underlay"))
    for client, carrier, home in underlay.clients:
        upstream = f"carrier-{carrier}"
        if home:
            vertices.append(Vertex(f"home-{client}", "home", ("home NAT",)))
            edges.append(Edge(f"home-{client}", upstream, "underlay"))
            upstream = f"home-{client}"
        edges.append(Edge(client, upstream, "underlay"))
    return replace(graph, vertices=tuple(vertices), edges=tuple(edges), lab=True)
