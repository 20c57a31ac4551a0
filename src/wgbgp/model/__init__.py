"""The topology: schema, loading with located errors, semantic checks, addressing. Pure."""

from .addressing import allocate
from .issues import Issue, TopologyError
from .load import parse
from .schema import Hub, Network, Node, Topology

__all__ = ["Hub", "Issue", "Network", "Node", "Topology", "TopologyError", "allocate",
           "parse"]
