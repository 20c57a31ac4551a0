"""Topology -> one Plan per machine. Pure and deterministic."""

from .mesh import compile_topology, interface_name, peerings, session_count
from .plan import BfdTimers, BgpSession, BgpSpeaker, Plan, Tunnel, TunnelPeer

__all__ = ["BfdTimers", "BgpSession", "BgpSpeaker", "Plan", "Tunnel", "TunnelPeer",
           "compile_topology", "interface_name", "peerings", "session_count"]
