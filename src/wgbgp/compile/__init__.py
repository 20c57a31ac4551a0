"""Topology -> one Plan per machine. Pure and deterministic."""

from .intent import neighbour_names
from .mesh import (
    compile_topology,
    interface_name,
    peering_count,
    peerings,
    session_count,
    session_counts,
)
from .plan import BfdTimers, BgpSession, BgpSpeaker, Plan, Tunnel, TunnelPeer

__all__ = ["BfdTimers", "BgpSession", "BgpSpeaker", "Plan", "Tunnel", "TunnelPeer",
           "compile_topology", "interface_name", "neighbour_names", "peering_count", "peerings",
           "session_count", "session_counts"]
