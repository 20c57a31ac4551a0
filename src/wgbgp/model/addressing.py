"""Deterministic tunnel-address allocation from the overlay(s), IPv4 and IPv6.

Every hub is a plane with its own tunnel subnets (its overlays). A machine has one *host
number* per address family and keeps it on every plane: with planes 10.0.0.0/24 and
10.1.0.0/24, the node at 10.0.0.7 is 10.1.0.7 on the second plane. So an address
identifies its machine at a glance, and pinning one address pins them all.

One hub, the *primary*, uses the network's overlays (network.overlay, network.overlay6);
every other hub has its own (`overlay`, and `overlay6` or a ULA derived from its name).
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from ..words import plural
from .schema import Topology

# RFC 4193 unique local addresses: fd00::/8 followed by a 40-bit global ID.
ULA_PREFIX = 0xFD

Overlay = IPv4Network | IPv6Network


class OverlayFull(ValueError):
    """The overlay has fewer free host addresses than machines needing one."""


def ula_overlay(network_name: str, hub: str | None = None) -> IPv6Network:
    """The IPv6 overlay used for `overlay6: auto`: a ULA /64 derived from the network name.

    RFC 4193 wants a pseudo-random 40-bit global ID; here it is the first 40 bits of
    SHA-256 over the name, so every machine (and every run) computes the same prefix from
    the topology alone, and two networks with different names almost surely differ.
    Subnet ID 0, so the overlay is fdXX:XXXX:XXXX::/64. A further hub's plane (`hub`) is
    another /64 of the same /48: its subnet ID from SHA-256 over the hub's name (never 0).
    """
    digest = hashlib.sha256(f"wgbgp overlay6 {network_name}".encode()).digest()
    global_id = int.from_bytes(digest[:5], "big")
    subnet = 0
    if hub is not None:
        subnet = int.from_bytes(hashlib.sha256(f"wgbgp plane {hub}".encode()).digest()[:2],
                                "big") or 1
    return IPv6Network(((ULA_PREFIX << 120) | (global_id << 80) | (subnet << 64), 64))


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


def primary_hub(topology: Topology) -> str | None:
    """The hub on the network's own overlays: the first that names no other overlay.

    Validation insists on exactly one; here the first hub stands in, so that checking a
    broken file never crashes."""
    net, v6 = topology.network, overlay6(topology)
    for name, hub in topology.hubs.items():
        if hub.overlay in (None, net.overlay) and hub.overlay6 in (None, v6):
            return name
    return next(iter(topology.hubs), None)


def hub_overlays(topology: Topology, version: int = 4) -> dict[str, Overlay | None]:
    """Each hub's plane subnet in one family (None: the network has no such overlay)."""
    primary = primary_hub(topology)
    network = topology.network.overlay if version == 4 else overlay6(topology)
    out: dict[str, Overlay | None] = {}
    for name, hub in topology.hubs.items():
        own = hub.overlay if version == 4 else hub.overlay6
        if network is None:
            out[name] = None
        elif own is not None:
            out[name] = own
        elif name == primary or version == 4:
            out[name] = network  # a second hub without one: validation reports it
        else:
            out[name] = ula_overlay(topology.network.name, name)
    return out


def overlays(topology: Topology) -> list[Overlay]:
    """Every overlay in effect, every plane's, IPv4 first; each once."""
    found = [topology.network.overlay, overlay6(topology),
             *hub_overlays(topology, 4).values(), *hub_overlays(topology, 6).values()]
    out = dict.fromkeys(o for o in found if o is not None)
    return sorted(out, key=lambda o: o.version)


def _pinned(topology: Topology, name: str, version: int) -> int | None:
    """The host number a machine's pinned address gives it in one family; None when not
    pinned, or pinned outside its overlay (validation reports that)."""
    field = "address" if version == 4 else "address6"
    if name in topology.hubs:
        address = getattr(topology.hubs[name], field)
        overlay = hub_overlays(topology, version)[name]
    else:
        address = getattr(topology.nodes[name], field)
        overlay = topology.network.overlay if version == 4 else overlay6(topology)
    if address is None or overlay is None or address not in overlay:
        return None
    return int(address) - int(overlay.network_address)


def with_recorded(topology: Topology, numbers: dict[int, dict[str, int]]) -> Topology:
    """The topology with the host numbers recorded for its machines before (the lock
    file beside it: apply.lockfile), by family (4, 6) and name. Allocation keeps them."""
    out = topology.model_copy()
    out._recorded = {v: dict(numbers.get(v, {})) for v in (4, 6)}
    return out


def recorded(topology: Topology, version: int) -> dict[str, int]:
    """The host numbers recorded for this topology's machines in one family ({}: none)."""
    return topology._recorded.get(version, {})


def host_numbers(topology: Topology, version: int = 4) -> dict[str, int]:
    """Every hub's and node's host number in one family, by name ({} without that overlay).

    Pinned addresses are kept; then the numbers recorded for machines before (the lock
    file, `with_recorded`), unless a pin now holds one (validation reports that) or it
    no longer fits the overlay. The rest take the lowest free host numbers, hubs first,
    each group in the order the file declares them. So removing, inserting, reordering
    or pinning a machine never moves another one once its number is recorded; without a
    record, appending a node moves no one either.
    """
    overlay = topology.network.overlay if version == 4 else overlay6(topology)
    if overlay is None:
        return {}
    wanted = list(topology.machines)
    pinned = {n: h for n in wanted if (h := _pinned(topology, n, version)) is not None}
    taken = set(pinned.values())
    # IPv4 loses the network and broadcast addresses, IPv6 the subnet-router anycast (::).
    last = overlay.num_addresses - (2 if version == 4 else 1)
    kept: dict[str, int] = {}
    for name, number in recorded(topology, version).items():
        if name in pinned or (name not in topology.hubs and name not in topology.nodes):
            continue
        if 1 <= number <= last and number not in taken:
            kept[name] = number
            taken.add(number)
    free = (h for h in range(1, last + 1) if h not in taken)
    result: dict[str, int] = {}
    for name in wanted:
        if name in pinned:
            result[name] = pinned[name]
            continue
        if name in kept:
            result[name] = kept[name]
            continue
        try:
            result[name] = next(free)
        except StopIteration:
            raise OverlayFull(
                f"overlay {overlay} has {plural(max(last, 0), 'host address', 'host addresses')}"
                f", {plural(len(wanted), 'machine')} need one"
            ) from None
    return result


def _home(topology: Topology, version: int) -> dict[str, IPv4Address | IPv6Address]:
    """Every machine's address on its home plane in one family: a hub's on its own, a
    node's in the network's overlay. Pinned outside: kept (validation reports it)."""
    numbers = host_numbers(topology, version)
    planes = hub_overlays(topology, version)
    network = topology.network.overlay if version == 4 else overlay6(topology)
    field = "address" if version == 4 else "address6"
    result: dict[str, IPv4Address | IPv6Address] = {}
    for name, number in numbers.items():
        machine = topology.machine(name)
        pinned = getattr(machine, field)
        if pinned is not None and _pinned(topology, name, version) is None:
            result[name] = pinned
            continue
        overlay = planes[name] if name in topology.hubs else network
        assert overlay is not None  # host numbers exist only where the overlay does
        result[name] = ip_address(int(overlay.network_address) + number)
    return result


def allocate(topology: Topology) -> dict[str, IPv4Address]:
    """IPv4 tunnel address of every hub (on its own plane) and node (in network.overlay),
    by name ({} for an IPv6-only overlay)."""
    return {n: a for n, a in _home(topology, 4).items() if isinstance(a, IPv4Address)}


def allocate6(topology: Topology) -> dict[str, IPv6Address]:
    """IPv6 tunnel address of every hub and node ({} without an IPv6 overlay); same rules
    as `allocate`: pinned `address6` kept, the rest from ::1 upwards, hubs first."""
    return {n: a for n, a in _home(topology, 6).items() if isinstance(a, IPv6Address)}


def plane_addresses(topology: Topology, version: int = 4
                    ) -> dict[str, dict[str, IPv4Address | IPv6Address]]:
    """Per hub, the address of every machine on its plane in one family: the hub itself,
    then every node ({} per hub without that overlay)."""
    numbers = host_numbers(topology, version)
    home = _home(topology, version)
    out: dict[str, dict[str, IPv4Address | IPv6Address]] = {}
    for hub, overlay in hub_overlays(topology, version).items():
        if overlay is None:
            out[hub] = {}
            continue
        plane = {hub: home[hub]}
        for name in topology.nodes:
            plane[name] = ip_address(int(overlay.network_address) + numbers[name])
        out[hub] = plane
    return out


def router_ids(topology: Topology) -> dict[str, IPv4Address]:
    """The BGP router ID of every node: its IPv4 tunnel address, or in an IPv6-only
    overlay the low 32 bits of its IPv6 tunnel address (::a -> 0.0.0.10). BGP needs a
    32-bit ID either way; validate.py insists they are distinct."""
    v4 = allocate(topology)
    if v4:
        return {n: v4[n] for n in topology.nodes}
    v6 = allocate6(topology)
    return {n: IPv4Address(int(v6[n]) & 0xFFFFFFFF) for n in topology.nodes if n in v6}


def hub_router_id(topology: Topology, hub: str) -> IPv4Address:
    """A hub's BGP router ID (hub mode): its IPv4 address, or the low 32 bits of its IPv6."""
    v4 = allocate(topology)
    if v4:
        return v4[hub]
    return IPv4Address(int(allocate6(topology)[hub]) & 0xFFFFFFFF)
