"""Addressing checks: every hub's plane (its overlays), the tunnel addresses of each family
(inside their overlay, one host number per machine, room for all) and, IPv6-only, the BGP
router IDs derived from them."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Network

from ..addressing import (
    OverlayFull,
    host_numbers,
    hub_overlays,
    implied_overlay6,
    overlay6,
    primary_hub,
    recorded,
    router_ids,
)
from ..issues import Issue, error
from ..schema import Topology


def check_planes(t: Topology) -> Iterator[Issue]:
    """Every hub is a plane with its own overlays: one hub (the one naming no other) uses
    the network's, every other hub its own `overlay` (and `overlay6`, or a ULA derived from
    its name), all disjoint. The order of the hubs does not matter."""
    net, v6 = t.network, overlay6(t)
    primary = primary_hub(t)
    for name, hub in t.hubs.items():
        if net.overlay is None and hub.overlay is not None:
            yield error(("hubs", name, "overlay"), "overlay given but the network has no "
                        "IPv4 overlay", "add 'overlay' under network, or remove it here")
        if v6 is None and hub.overlay6 is not None:
            yield error(("hubs", name, "overlay6"), "overlay6 given but the network has no "
                        "IPv6 overlay", "add 'overlay6' under network, or remove it here")
    if net.overlay is not None and t.hubs and primary is not None:
        hub = t.hubs[primary]
        if hub.overlay not in (None, net.overlay):
            yield error(("hubs", primary, "overlay"),
                        f"no hub's plane is network.overlay ({net.overlay})",
                        f"leave 'overlay' out on one hub (it then uses {net.overlay}), or set "
                        "network.overlay to that hub's overlay")
    for version, key in ((4, "overlay"), (6, "overlay6")):
        planes = hub_overlays(t, version)
        seen: list[tuple[IPv4Network | IPv6Network, str]] = []
        for name, plane in sorted(planes.items(), key=lambda kv: kv[0] != primary):
            if plane is None:
                continue
            if name == primary:  # the network's own overlay, checked with the addresses
                seen.append((plane, name))
                continue
            loc = ("hubs", name, key)
            if version == 4 and t.hubs[name].overlay in (None, net.overlay):
                said = ("leaves 'overlay' out" if t.hubs[name].overlay is None
                        else f"uses {net.overlay}")
                yield error(loc, f"hub {name!r} {said}, like hub {primary!r}: every hub is a "
                            "separate plane with its own tunnel subnet",
                            f"add e.g. 'overlay: {_free_overlay(t)}' (a subnet no other hub, "
                            "overlay or announced prefix uses)")
                continue
            if plane.num_addresses < 4:
                yield error(loc, f"{key} {plane} is too small for a hub and clients",
                            "use a /24 or larger" if version == 4 else "use a /64")
                continue
            if version == 6 and (plane.is_link_local or plane.is_multicast):
                yield error(loc, f"overlay6 {plane} is a link-local or multicast range",
                            "use a unique local prefix such as fd42:1:2::/64, or leave it out")
                continue
            clash = next((other for other in seen if other[0].overlaps(plane)), None)
            if clash is not None:
                yield error(loc, f"{key} {plane} overlaps {clash[0]}, the plane of hub "
                            f"{clash[1]!r}", "give every hub disjoint overlays"
                            + (f", e.g. {_free_overlay(t)}" if version == 4 else ""))
                continue
            seen.append((plane, name))


def _free_overlay(t: Topology) -> IPv4Network | None:
    """A subnet the size of network.overlay that no overlay or announced prefix touches."""
    base = t.network.overlay
    if base is None:
        return None
    used = [base, *(h.overlay for h in t.hubs.values() if h.overlay),
            *(p for n in t.nodes.values() for p in n.announce if p.version == 4)]
    candidate = base
    for _ in range(1 << min(16, base.prefixlen)):
        nxt = int(candidate.network_address) + candidate.num_addresses
        if nxt >= 1 << 32:
            break
        candidate = IPv4Network((nxt, base.prefixlen))
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    return base


def check_addresses(t: Topology) -> Iterator[Issue]:
    if t.network.overlay is None and t.network.overlay6 is None and not implied_overlay6(t):
        yield error(("network",), "no overlay: tunnel addresses need an IPv4 or IPv6 prefix",
                    "add 'overlay: 10.0.0.0/24' (IPv4), 'overlay6: auto' (an IPv6 ULA), "
                    "or both for dual stack")
        return
    yield from _family_addresses(t, 4)
    yield from _family_addresses(t, 6)
    yield from _router_ids(t)


def _family_addresses(t: Topology, version: int) -> Iterator[Issue]:
    """Tunnel addresses of one family: inside their overlay, one host number per machine
    (kept on every plane), and enough of them."""
    key, field = ("overlay", "address") if version == 4 else ("overlay6", "address6")
    overlay = t.network.overlay if version == 4 else overlay6(t)
    if overlay is None:
        for section, name, m in t.located():
            if getattr(m, field) is not None:
                yield error((section, name, field),
                            f"{field} given but the network has no {key}",
                            f"add '{key}' under network, or remove '{field}'")
        return
    if overlay.num_addresses < 4:
        yield error(("network", key), f"overlay {overlay} is too small for a hub and clients",
                    "use a /24 or larger, e.g. 10.0.0.0/24" if version == 4
                    else "use a /64, e.g. fd42:1:2::/64, or write 'auto'")
        return
    if version == 6 and (overlay.is_link_local or overlay.is_multicast):
        yield error(("network", key), f"overlay6 {overlay} is a link-local or multicast range",
                    "use a unique local prefix such as fd42:1:2::/64, or write 'auto'")
        return
    planes = hub_overlays(t, version)
    seen: dict[int, tuple[str, object]] = {}  # host number -> (machine, its address)
    every = t.machines
    # Host numbers recorded (the lock file) for machines that are not pinned: a pin on
    # one of them would move that machine.
    holders = {number: name for name, number in recorded(t, version).items()
               if name in every and getattr(every[name], field) is None}
    for section, name, m in t.located():
        address = getattr(m, field)
        if address is None:
            continue
        loc = (section, name, field)
        home = (planes[name] if section == "hubs" else None) or overlay
        number = int(address) - int(home.network_address)
        reserved = {home.network_address}
        if version == 4:
            reserved.add(home.broadcast_address)
        if address not in home:
            where = (f"its plane's overlay {home}" if home != overlay
                     else f"the overlay {home}")
            yield error(loc, f"tunnel address {address} is outside {where}",
                        f"pick an address inside {home}, or leave '{field}' out")
        elif address in reserved:
            yield error(loc, f"{address} is the overlay's network or broadcast address"
                        if version == 4 else
                        f"{address} is the overlay's subnet-router anycast address",
                        f"pick a host address, or leave '{field}' out")
        elif number in seen:
            other, addr = seen[number]
            same = "is already used by" if addr == address else (
                f"has the same host number as {addr}, used by")
            yield error(loc, f"tunnel address {address} {same} {other}"
                        + ("" if addr == address else
                          " (a machine keeps its host number on every hub's plane)"),
                        f"give each machine its own address, or leave '{field}' out")
        elif holders.get(number, name) != name:
            other = holders[number]
            yield error(loc, f"tunnel address {address} is {other}'s (recorded in the "
                        f"address lock): pinning it here would renumber {other}",
                        f"pin a free address, e.g. {_free_address(t, version, home)}; or "
                        f"pin {other} elsewhere too, if it should move (its peers' configs "
                        "then change)")
        else:
            seen[number] = (name, address)
    try:
        numbers = host_numbers(t, version)
    except OverlayFull as exc:
        yield error(("network", key), f"overlay too small: {exc}",
                    "use a larger overlay prefix (shorter prefix length)")
        return
    if len(t.hubs) < 2:
        return
    highest = max((numbers[n] for n in t.nodes), default=0)
    for name, plane in planes.items():
        room = plane.num_addresses - (2 if version == 4 else 1) if plane else 0
        if plane is not None and plane != overlay and highest > room:
            yield error(("hubs", name, key),
                        f"{key} {plane} has room for host numbers up to {room}, but a node "
                        f"has host number {highest} (every node is on every plane, with the "
                        "same host number)",
                        f"make it as large as network.{key} (/{overlay.prefixlen})")


def _free_address(t: Topology, version: int, home: IPv4Network | IPv6Network) -> object:
    """The lowest address of `home` whose host number no machine has, pinned or not."""
    try:
        used = set(host_numbers(t, version).values())
    except OverlayFull:
        used = set()
    used |= set(recorded(t, version).values())
    number = next((n for n in range(1, home.num_addresses - 1) if n not in used), 1)
    return home[number]


def _router_ids(t: Topology) -> Iterator[Issue]:
    """IPv6-only: router IDs come from the low 32 bits of the IPv6 tunnel addresses."""
    if t.network.overlay is not None:
        return
    try:
        ids = router_ids(t)
    except OverlayFull:
        return
    seen: dict[IPv4Address, str] = {}
    for name, rid in ids.items():
        if int(rid) == 0:
            yield error(("nodes", name, "address6"), f"{name}'s IPv6 tunnel address ends in "
                        "32 zero bits, which cannot make a BGP router ID",
                        "pin an address6 whose last 32 bits are not all zero")
        elif rid in seen:
            yield error(("nodes", name, "address6"),
                        f"{name} and {seen[rid]} would share BGP router ID {rid} (the last "
                        "32 bits of their IPv6 tunnel addresses)",
                        "pin address6 values that differ in their last 32 bits")
        else:
            seen[rid] = name
