"""A running lab as a live view's source: its machines, plans and emulated Internet."""

from __future__ import annotations

from ..graph import Underlay
from ..lab.build import Lab
from ..lab.runner import lab_topology_path
from ..lab.selftest import lab_plans
from ..model import parse
from .collect import Source


def lab_underlay(lab: Lab) -> Underlay:
    """Where the lab put each machine: hubs on its Internet, clients behind carriers."""
    return Underlay(
        hubs=tuple(h.name for h in lab.spec.hubs),
        clients=tuple((c.name, c.carrier, c.home_nat) for c in lab.spec.clients),
        carriers=tuple((c.name, str(lab.plan.carrier_ip.get(c.name, "")))
                       for c in lab.spec.carriers))


def lab_source(lab: Lab, *, probe: bool = True) -> Source:
    """Everything a live view of `lab` reads (the lab's own copy of the topology)."""
    path = lab_topology_path(lab.name)
    topology, _ = parse(path.read_text(), str(path))
    return Source(lab.name, {n: m.executor() for n, m in lab.machines.items()},
                  lab_plans(lab), topology.network.mode, lab_underlay(lab), probe)
