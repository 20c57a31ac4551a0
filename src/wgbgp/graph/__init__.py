"""Pictures of a topology: Topology (+ live status) -> Graph -> DOT or Mermaid text. Pure.

Drawing DOT into SVG or PNG runs Graphviz, which is the caller's business
(`wgbgp.web.draw`).
"""

from .dot import engine_args, to_dot
from .live import StatusFileError, parse_statuses, with_status
from .mermaid import to_mermaid
from .model import Graph, Underlay, build_graph, with_underlay

__all__ = [
    "Graph",
    "StatusFileError",
    "Underlay",
    "build_graph",
    "engine_args",
    "parse_statuses",
    "to_dot",
    "to_mermaid",
    "topology_graph",
    "with_status",
    "with_underlay",
]


def topology_graph(topology: object) -> Graph:
    """The graph of a topology (a `wgbgp.model.Topology`)."""
    from ..compile import compile_topology
    from ..model import Topology

    assert isinstance(topology, Topology)
    return build_graph(compile_topology(topology), topology.network.mode)
