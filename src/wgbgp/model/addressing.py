"""Deterministic tunnel-address allocation from the overlay(s), IPv4 and IPv6."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from .schema import Topology

# RFC 4193 unique local addresses: fd00::/8 followed by a 40-bit global ID.
ULA_PREFIX = 0xFD


class OverlayFull(ValueError):
    """The overlay has fewer free host addresses than machines needing one."""


def ula_overlay(network_name: str) -> IPv6Network:
    """The IPv6 overlay used for `overlay6: auto`: a ULA /64 derived from the network name.

    RFC 4193 wants a pseudo-random 40-bit global ID; here it is the first 40 bits of
    SHA-256 over the name, so every machine (and every run) computes the same prefix from
    the topology alone, and two networks with different names almost surely differ.
    Subnet ID 0, so the overlay is fdXX:XXXX:XXXX::/64.
    """
    digest = hashlib.sha256(f"wgbgp overlay6 {network_name}".encode()).digest()
    global_id = int.from_bytes(digest[:5], "big")
    return IPv6Network(((ULA_PREFIX << 120) | (global_id << 80), 64))


def overlay6(topology: Topology) -> IPv6Network | None:
    """The IPv6 overlay in effect: the declared one, the ULA for "auto", the ULA implied
    by IPv6 prefixes announced in a network without one, or None (IPv4 only)."""
    declared = topology.network.overlay6
    if isinstance(declared, IPv6Network):
        return declared
    if declared == "auto" or implied_overlay6(topology):
        return ula_overlay(topology.network.name)
    return None


def implied_overlay6(topology: Topology) -> bool:
    """True when IPv6 prefixes are announced but no overlay6 is declared (-> ULA)."""
    return topology.network.overlay6 is None and any(
        p.version == 6 for n in topology.nodes.values() for p in n.announce)


def overlays(topology: Topology) -> list[IPv4Network | IPv6Network]:
    """Every overlay in effect, IPv4 first."""
    return [o for o in (topology.network.overlay, overlay6(topology)) if o is not None]


def _allocate(overlay: IPv4Network | IPv6Network, pinned: dict[str, object],
              wanted: list[str]) -> dict[str, object]:
    taken = {a for a in pinned.values() if a is not None}
    free: Iterable = (a for a in overlay.hosts() if a not in taken)
    result: dict[str, object] = {}
    for name in wanted:
        if pinned.get(name) is not None:
            result[name] = pinned[name]
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


def allocate(topology: Topology) -> dict[str, IPv4Address]:
    """IPv4 tunnel address of every hub and node, by name ({} for an IPv6-only overlay).

    Pinned addresses are kept. The rest take the lowest free host addresses, hubs first,
    each group in the order the file declares them, so appending a node never moves an
    existing one. (Reordering the file can: pin addresses you rely on.)
    """
    if topology.network.overlay is None:
        return {}
    machines = {**topology.hubs, **topology.nodes}
    return _allocate(topology.network.overlay,  # type: ignore[return-value]
                     {n: m.address for n, m in machines.items()}, list(machines))


def allocate6(topology: Topology) -> dict[str, IPv6Address]:
    """IPv6 tunnel address of every hub and node ({} without an IPv6 overlay); same rules
    as `allocate`: pinned `address6` kept, the rest from ::1 upwards, hubs first."""
    prefix = overlay6(topology)
    if prefix is None:
        return {}
    machines = {**topology.hubs, **topology.nodes}
    return _allocate(prefix,  # type: ignore[return-value]
                     {n: m.address6 for n, m in machines.items()}, list(machines))


def router_ids(topology: Topology) -> dict[str, IPv4Address]:
    """The BGP router ID of every node: its IPv4 tunnel address, or in an IPv6-only
    overlay the low 32 bits of its IPv6 tunnel address (::a -> 0.0.0.10). BGP needs a
    32-bit ID either way; validate.py insists they are distinct."""
    v4 = allocate(topology)
    if v4:
        return {n: v4[n] for n in topology.nodes}
    v6 = allocate6(topology)
    return {n: IPv4Address(int(v6[n]) & 0xFFFFFFFF) for n in topology.nodes if n in v6}
