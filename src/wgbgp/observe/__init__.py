"""Observe: read live machines (WireGuard, FRR) into a status model; doctor reasons over it.

Collection (`snapshot`, `collect`, `gather`) runs read-only commands and probes through
an executor; everything else here (parsers, `diagnose`) is pure.
"""

from .doctor import CODES, LAYERS, Check, Report, diagnose
from .frr import BgpNeighbor, BgpPath, BgpStatus, Route
from .gather import Observation, gather, plan_probes
from .probe import ProbeResult, ProbeSpec
from .status import MachineStatus, Snapshot, bgp_state, collect, snapshot, status_from_snapshot
from .wireguard import WgInterface, WgPeer, parse_dump

__all__ = [
    "CODES", "LAYERS", "BgpNeighbor", "BgpPath", "BgpStatus", "Check", "MachineStatus",
    "Observation", "ProbeResult", "ProbeSpec", "Report", "Route", "Snapshot", "WgInterface",
    "WgPeer", "bgp_state", "collect", "diagnose", "gather", "parse_dump", "plan_probes", "snapshot",
    "status_from_snapshot",
]
