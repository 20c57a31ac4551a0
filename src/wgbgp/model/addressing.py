"""Deterministic tunnel-address allocation from the overlay."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from .schema import Topology


class OverlayFull(ValueError):
    """The overlay has fewer free host addresses than machines needing one."""


def allocate(topology: Topology) -> dict[str, IPv4Address]:
    """Tunnel address of every hub and node, by name.

    Pinned addresses are kept. The rest take the lowest free host addresses, hubs first,
    each group in the order the file declares them, so appending a node never moves an
    existing one. (Reordering the file can: pin addresses you rely on.)
    """
    overlay: IPv4Network = topology.network.overlay
    taken = {m.address for m in (*topology.hubs.values(), *topology.nodes.values()) if m.address}
    wanted = [*topology.hubs.items(), *topology.nodes.items()]
    free = (a for a in overlay.hosts() if a not in taken)
    result: dict[str, IPv4Address] = {}
    for name, machine in wanted:
        if machine.address is not None:
            result[name] = machine.address
            continue
        try:
            result[name] = next(free)
        except StopIteration:
            need = len(wanted)
            raise OverlayFull(
                f"overlay {overlay} has {overlay.num_addresses - 2} host addresses, "
                f"{need} machines need one"
            ) from None
    return result
