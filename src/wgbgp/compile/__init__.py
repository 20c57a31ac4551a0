"""Topology -> one Plan per machine. Pure and deterministic."""

from .mesh import compile_topology, interface_name, peerings
from .plan import BgpSession, BgpSpeaker, Plan, Tunnel, TunnelPeer

__all__ = ["BgpSession", "BgpSpeaker", "Plan", "Tunnel", "TunnelPeer", "compile_topology",
           "interface_name", "peerings"]
