"""Semantic checks over a parsed topology: what the schema alone cannot see."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from ..words import plural
from .addressing import (
    OverlayFull,
    host_numbers,
    hub_overlays,
    implied_overlay6,
    overlay6,
    overlays,
    primary_hub,
    recorded,
    router_ids,
)
from .derive import hub_preferences
from .issues import Issue, Loc
from .keys import InvalidKey, public_key
from .schema import PAIR, MoreSpecifics, Node, Topology
from .special import DOCUMENTATION, MIN_LENGTH, is_public, literal, special_purpose, ssh_host

MESH_SESSIONS_HINT = 30  # clients past which a full mesh gets heavy


def check(topology: Topology) -> list[Issue]:
    """Every error and warning in a schema-valid topology."""
    return [*_names(topology), *_endpoints(topology), *_planes(topology),
            *_addresses(topology), *_asns(topology),
            *_prefixes(topology), *_keys(topology), *_peerings(topology), *_lab(topology),
            *_lints(topology), *_policy(topology), *_exits(topology), *_secrets(topology)]


def _err(loc, message, fix="") -> Issue:
    return Issue("error", tuple(loc), message, fix)


def _warn(loc, message, fix="") -> Issue:
    return Issue("warning", tuple(loc), message, fix)


def _names(t: Topology) -> Iterator[Issue]:
    if not t.hubs:
        yield _err(("hubs",), "no hub declared; clients behind CG-NAT need one public hub",
                   "add a hub under 'hubs:' with the public endpoint of your VPS")
    for name in t.nodes:
        if name in t.hubs:
            yield _err(("nodes", name), f"{name!r} is both a hub and a node",
                       "give every machine a distinct name")
    if not t.nodes:
        yield _err(("nodes",), "no nodes declared", "add at least two nodes under 'nodes:'")


def _planes(t: Topology) -> Iterator[Issue]:
    """Every hub is a plane with its own overlays: one hub (the one naming no other) uses
    the network's, every other hub its own `overlay` (and `overlay6`, or a ULA derived from
    its name), all disjoint. The order of the hubs does not matter."""
    net, v6 = t.network, overlay6(t)
    primary = primary_hub(t)
    for name, hub in t.hubs.items():
        if net.overlay is None and hub.overlay is not None:
            yield _err(("hubs", name, "overlay"), "overlay given but the network has no "
                       "IPv4 overlay", "add 'overlay' under network, or remove it here")
        if v6 is None and hub.overlay6 is not None:
            yield _err(("hubs", name, "overlay6"), "overlay6 given but the network has no "
                       "IPv6 overlay", "add 'overlay6' under network, or remove it here")
    if net.overlay is not None and t.hubs and primary is not None:
        hub = t.hubs[primary]
        if hub.overlay not in (None, net.overlay):
            yield _err(("hubs", primary, "overlay"),
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
                yield _err(loc, f"hub {name!r} {said}, like hub {primary!r}: every hub is a "
                           "separate plane with its own tunnel subnet",
                           f"add e.g. 'overlay: {_free_overlay(t)}' (a subnet no other hub, "
                           "overlay or announced prefix uses)")
                continue
            if plane.num_addresses < 4:
                yield _err(loc, f"{key} {plane} is too small for a hub and clients",
                           "use a /24 or larger" if version == 4 else "use a /64")
                continue
            if version == 6 and (plane.is_link_local or plane.is_multicast):
                yield _err(loc, f"overlay6 {plane} is a link-local or multicast range",
                           "use a unique local prefix such as fd42:1:2::/64, or leave it out")
                continue
            clash = next((other for other in seen if other[0].overlaps(plane)), None)
            if clash is not None:
                yield _err(loc, f"{key} {plane} overlaps {clash[0]}, the plane of hub "
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


def _addresses(t: Topology) -> Iterator[Issue]:
    if t.network.overlay is None and t.network.overlay6 is None and not implied_overlay6(t):
        yield _err(("network",), "no overlay: tunnel addresses need an IPv4 or IPv6 prefix",
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
        for section, machines in (("hubs", t.hubs), ("nodes", t.nodes)):
            for name, m in machines.items():
                if getattr(m, field) is not None:
                    yield _err((section, name, field),
                               f"{field} given but the network has no {key}",
                               f"add '{key}' under network, or remove '{field}'")
        return
    if overlay.num_addresses < 4:
        yield _err(("network", key), f"overlay {overlay} is too small for a hub and clients",
                   "use a /24 or larger, e.g. 10.0.0.0/24" if version == 4
                   else "use a /64, e.g. fd42:1:2::/64, or write 'auto'")
        return
    if version == 6 and (overlay.is_link_local or overlay.is_multicast):
        yield _err(("network", key), f"overlay6 {overlay} is a link-local or multicast range",
                   "use a unique local prefix such as fd42:1:2::/64, or write 'auto'")
        return
    planes = hub_overlays(t, version)
    seen: dict[int, tuple[str, object]] = {}  # host number -> (machine, its address)
    every = {**t.hubs, **t.nodes}
    # Host numbers recorded (the lock file) for machines that are not pinned: a pin on
    # one of them would move that machine.
    holders = {number: name for name, number in recorded(t, version).items()
               if name in every and getattr(every[name], field) is None}
    for section, machines in (("hubs", t.hubs), ("nodes", t.nodes)):
        for name, m in machines.items():
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
                yield _err(loc, f"tunnel address {address} is outside {where}",
                           f"pick an address inside {home}, or leave '{field}' out")
            elif address in reserved:
                yield _err(loc, f"{address} is the overlay's network or broadcast address"
                           if version == 4 else
                           f"{address} is the overlay's subnet-router anycast address",
                           f"pick a host address, or leave '{field}' out")
            elif number in seen:
                other, addr = seen[number]
                same = "is already used by" if addr == address else (
                    f"has the same host number as {addr}, used by")
                yield _err(loc, f"tunnel address {address} {same} {other}"
                           + ("" if addr == address else
                              " (a machine keeps its host number on every hub's plane)"),
                           f"give each machine its own address, or leave '{field}' out")
            elif holders.get(number, name) != name:
                other = holders[number]
                yield _err(loc, f"tunnel address {address} is {other}'s (recorded in the "
                           f"address lock): pinning it here would renumber {other}",
                           f"pin a free address, e.g. {_free_address(t, version, home)}; or "
                           f"pin {other} elsewhere too, if it should move (its peers' configs "
                           "then change)")
            else:
                seen[number] = (name, address)
    try:
        numbers = host_numbers(t, version)
    except OverlayFull as exc:
        yield _err(("network", key), f"overlay too small: {exc}",
                   "use a larger overlay prefix (shorter prefix length)")
        return
    if len(t.hubs) < 2:
        return
    highest = max((numbers[n] for n in t.nodes), default=0)
    for name, plane in planes.items():
        room = plane.num_addresses - (2 if version == 4 else 1) if plane else 0
        if plane is not None and plane != overlay and highest > room:
            yield _err(("hubs", name, key),
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
    seen: dict = {}
    for name, rid in ids.items():
        if int(rid) == 0:
            yield _err(("nodes", name, "address6"), f"{name}'s IPv6 tunnel address ends in "
                       "32 zero bits, which cannot make a BGP router ID",
                       "pin an address6 whose last 32 bits are not all zero")
        elif rid in seen:
            yield _err(("nodes", name, "address6"),
                       f"{name} and {seen[rid]} would share BGP router ID {rid} (the last "
                       "32 bits of their IPv6 tunnel addresses)",
                       "pin address6 values that differ in their last 32 bits")
        else:
            seen[rid] = name


def _asns(t: Topology) -> Iterator[Issue]:
    by_asn: dict[int, list[str]] = {}
    for name, node in t.nodes.items():
        by_asn.setdefault(node.asn, []).append(name)
    for asn, names in by_asn.items():
        if len(names) > 1:
            yield _warn(("nodes", names[1], "asn"),
                        f"ASN {asn} is shared by {', '.join(names)}; eBGP drops routes whose "
                        "AS path holds the receiver's own ASN",
                        "give every node its own ASN")
    for section, machines in (("hubs", t.hubs), ("nodes", t.nodes)):
        for name, m in machines.items():
            if m.asn is not None and not _private_asn(m.asn):
                yield _warn((section, name, "asn"),
                            f"ASN {m.asn} is a public ASN, assigned to an organisation on the "
                            "Internet; routes from this overlay would carry it in their AS path",
                            "use a private ASN: 64512-65534 or 4200000000-4294967294 (keep "
                            "it only if it is yours and you mean it)")
    for name, hub in t.hubs.items():
        loc = ("hubs", name, "asn")
        if t.network.mode == "hub" and hub.asn is None:
            yield _err(loc, f"in hub mode hub {name!r} speaks BGP (it is the route server) "
                       "and needs its own ASN",
                       f"add 'asn: {_free_asn(t)}' (a private ASN no node uses)")
        elif hub.asn is not None and hub.asn in by_asn:
            yield _err(loc, f"hub {name!r} has ASN {hub.asn}, which node "
                       f"{by_asn[hub.asn][0]} also uses; the session between them would be "
                       "iBGP and the route server would not pass routes on",
                       f"give the hub an ASN no node uses, e.g. {_free_asn(t)}")
        elif hub.asn is not None and t.network.mode != "hub":
            yield _warn(loc, f"hub {name!r} has an ASN but speaks no BGP in mesh mode",
                        "leave it for a later switch to 'mode: hub', or remove it")
        if hub.daemon != "frr" and t.network.mode != "hub":
            yield _warn(("hubs", name, "daemon"), f"hub {name!r} names a BGP daemon "
                        f"({hub.daemon}) but speaks no BGP in mesh mode",
                        "leave it for a later switch to 'mode: hub', or remove it")


def _private_asn(asn: int) -> bool:
    """RFC 6996 private use (documentation and reserved ASNs are errors, asn_problem)."""
    return 64512 <= asn <= 65534 or 4200000000 <= asn <= 4294967294


def _endpoints(t: Topology) -> Iterator[Issue]:
    """Hub endpoints: distinct, and reachable from the Internet."""
    seen: dict[tuple[str, int], str] = {}
    for name, hub in t.hubs.items():
        loc = ("hubs", name, "endpoint")
        address = literal(hub.host)
        key = (str(address) if address else hub.host.lower().rstrip("."), hub.port)
        if key in seen:
            yield _err(loc, f"hub {name} has the same endpoint as hub {seen[key]} "
                       f"({hub.endpoint}): clients would dial one WireGuard interface for "
                       "both, so they are not two hubs",
                       "give each hub its own public address or port")
        seen.setdefault(key, name)
        if address is None or t.network.underlay == "private" or is_public(address):
            continue
        if any(address in d for d in DOCUMENTATION):
            continue  # a placeholder, as in every example
        yield _warn(loc, f"hub {name}'s endpoint {address} is not a public address "
                    f"({_kind(address)}): clients behind CG-NAT cannot reach it",
                    "write the VPS's public address; or, if every machine reaches the hub "
                    "over a private network (a LAN, a VPN), say so with "
                    "'underlay: private' under network")


def _kind(address: Address) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if isinstance(address, IPv4Address) and address in IPv4Network("100.64.0.0/10"):
        return "carrier-grade NAT space, RFC 6598"
    if address.is_private:
        return "private space"
    return "special-purpose space"


def _free_asn(t: Topology) -> int:
    used = {n.asn for n in t.nodes.values()} | {h.asn for h in t.hubs.values() if h.asn}
    return next(a for a in range(64512, 65535) if a not in used)


def _prefixes(t: Topology) -> Iterator[Issue]:
    """Each announced prefix: not special-purpose space, not absurdly short, outside the
    overlays, covering no hub endpoint or `ssh:` target, and owned by one node. One node
    may announce an aggregate and its own more-specifics (10.1.0.0/16 and 10.1.2.0/24):
    that is legitimate traffic engineering, and both are its own."""
    nets = overlays(t)
    owners = {4: _PrefixOwners(32), 6: _PrefixOwners(128)}
    targets = _literal_targets(t)
    for name, node in t.nodes.items():
        short = False
        for i, prefix in enumerate(node.announce):
            loc = ("nodes", name, "announce", i)
            special = special_purpose(prefix)
            if special is not None:
                block, what = special
                where = (f"is {what}" if block == prefix else
                         f"lies in {block}, {what}" if prefix.subnet_of(block)  # type: ignore[arg-type]
                         else f"covers {block}, {what}")
                yield _err(loc, f"{prefix} {where}: no node can route it over the overlay",
                           "announce addresses the node really has: public ones it owns, or "
                           "private ones (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
                           "100.64.0.0/10, fc00::/7)")
                continue
            floor = MIN_LENGTH[prefix.version]
            if prefix.prefixlen < floor:
                short = True
                if not node.allow_short:
                    share = f"1/{1 << prefix.prefixlen} of all IPv{prefix.version} addresses"
                    yield _err(loc, f"{prefix} is shorter than /{floor}: that is {share}, not "
                               "a range one node owns (a typo in the length?)",
                               "announce the prefixes this node really has, or set "
                               f"'allow_short: true' on {name} if it means it")
                    continue
            overlay = next((o for o in nets if o.version == prefix.version
                            and prefix.overlaps(o)), None)
            if overlay is not None:
                yield _err(loc, f"{prefix} overlaps the overlay {overlay}",
                           "announce prefixes outside the tunnel overlays")
                continue
            covered = next(((what, address, target_loc)
                            for what, address, target_loc in targets
                            if address in prefix), None)
            if covered is not None:
                yield _cover_issue(loc, prefix, *covered)
                continue
            mine = owners[prefix.version]
            if mine.has(prefix, name):
                yield _warn(loc, f"{prefix} is listed twice by {name}", "remove one")
                continue
            clash = mine.first_overlap(prefix, besides=name)
            if clash is not None:
                other, owner = clash
                yield _err(loc, f"{prefix} overlaps {other}, announced by {owner}",
                           "each address range must belong to one node only (one node may "
                           "announce an aggregate and its own more-specifics)")
                continue
            mine.add(prefix, name)
        if node.allow_short and not short:
            yield _warn(("nodes", name, "allow_short"), f"{name} announces no prefix shorter "
                        "than /8 (IPv4) or /16 (IPv6), so allow_short has no effect",
                        "remove it")


Address = IPv4Address | IPv6Address


def reach_targets(t: Topology) -> list[tuple[str, str, Loc]]:
    """(what, host, loc) of every address machines must reach outside the overlay: each
    hub's endpoint and each `ssh:` target. A host may be an address or a DNS name."""
    out: list[tuple[str, str, Loc]] = []
    for name, hub in t.hubs.items():
        out.append((f"hub {name}'s endpoint", hub.host, ("hubs", name, "endpoint")))
    for section, machines in (("hubs", t.hubs), ("nodes", t.nodes)):
        for name, m in machines.items():
            host = ssh_host(m.ssh) if m.ssh else None
            if host is not None:
                out.append((f"the `ssh:` target of {name}", host, (section, name, "ssh")))
    return out


def _literal_targets(t: Topology) -> list[tuple[str, Address, Loc]]:
    return [(what, address, loc) for what, host, loc in reach_targets(t)
            if (address := literal(host)) is not None]


def _cover_issue(loc: Loc, prefix: IPv4Network | IPv6Network, what: str, address: Address,
                 target_loc: Loc, name: str | None = None) -> Issue:
    via = f" ({name} resolves to it)" if name else ""
    if what.startswith("hub"):
        why = ("every other client would learn by BGP a route to its hub through the tunnel "
               "itself: the tunnel's own packets would loop into it, and the tunnel and "
               "every session would flap")
    else:
        why = ("machines would route their SSH connection to it into the tunnel, and "
               "`wgbgp apply` would cut itself off")
    return _err(loc, f"{prefix} covers {address}, {what}{via}: {why}",
                f"announce prefixes that leave {address} out, or give "
                f"{'.'.join(map(str, target_loc[:2]))} an address outside {prefix}")


def covering(t: Topology, resolved: dict[str, list[Address]]) -> Iterator[Issue]:
    """Announced prefixes covering what a DNS name among the reach targets resolves to
    (`resolved`: name -> addresses, found at the edge: resolving is a side effect)."""
    names = [(what, host, loc) for what, host, loc in reach_targets(t)
             if literal(host) is None and host in resolved]
    for node_name, node in t.nodes.items():
        for i, prefix in enumerate(node.announce):
            if special_purpose(prefix) is not None:
                continue  # refused as such already
            for what, host, target_loc in names:
                hit = next((a for a in resolved[host] if a.version == prefix.version
                            and a in prefix), None)
                if hit is not None:
                    yield _cover_issue(("nodes", node_name, "announce", i), prefix, what, hit,
                                       target_loc, host)
                    break


class _PrefixOwners:
    """Accepted prefixes, and which of them a new one overlaps first. Disjoint between
    owners; one owner's may nest (an aggregate and its own more-specifics).

    Two CIDR prefixes overlap only when one contains the other, so a new prefix overlaps
    at most one accepted supernet (found by masking it to each shorter length) or else
    accepted subnets, whose start addresses lie inside it (found by bisecting the sorted
    starts). O(bits + log n) per prefix instead of comparing with every accepted one.
    """

    def __init__(self, bits: int = 32) -> None:
        self.bits = bits
        self.entries: list[tuple[IPv4Network | IPv6Network, str]] = []  # in acceptance (file) order
        self.by_net: dict[tuple[int, int], int] = {}     # (address, length) -> entry
        self.starts: list[tuple[int, int]] = []          # sorted (address, entry)

    def add(self, prefix: IPv4Network | IPv6Network, owner: str) -> None:
        index = len(self.entries)
        self.entries.append((prefix, owner))
        start = int(prefix.network_address)
        self.by_net[(start, prefix.prefixlen)] = index
        bisect.insort(self.starts, (start, index))

    def has(self, prefix: IPv4Network | IPv6Network, owner: str) -> bool:
        """Whether `owner` already announced exactly this prefix."""
        index = self.by_net.get((int(prefix.network_address), prefix.prefixlen))
        return index is not None and self.entries[index][1] == owner

    def first_overlap(self, prefix: IPv4Network | IPv6Network, besides: str = ""
                      ) -> tuple[IPv4Network | IPv6Network, str] | None:
        """The earliest accepted prefix overlapping this one, with its owner (one other
        than `besides`)."""
        bits, full = self.bits, (1 << self.bits) - 1
        start, length = int(prefix.network_address), prefix.prefixlen
        end = start + (1 << (bits - length)) - 1
        found = [self.by_net[key] for n in range(length + 1)
                 if (key := (start & ~((1 << (bits - n)) - 1) & full, n)) in self.by_net]
        lo = bisect.bisect_left(self.starts, (start, -1))
        hi = bisect.bisect_right(self.starts, (end, len(self.entries)))
        found += [index for _, index in self.starts[lo:hi]]
        found = [index for index in found if self.entries[index][1] != besides]
        return self.entries[min(found)] if found else None


def _keys(t: Topology) -> Iterator[Issue]:
    declared = {}
    for section, machines in (("hubs", t.hubs), ("nodes", t.nodes)):
        for name, m in machines.items():
            if m.public_key:
                declared[m.public_key] = (section, name)
    for key, (section, name) in declared.items():
        loc = (section, name, "public_key")
        # A private key's public key equals another machine's key: proof it was pasted here.
        try:
            derived = public_key(key)
        except InvalidKey:
            continue
        if derived in declared and declared[derived] != (section, name):
            yield _err(loc, "this is a PRIVATE key (its public key is declared for "
                       f"{declared[derived][1]}); private keys never belong in the topology",
                       "replace it with the output of `wg pubkey` / `wgbgp keygen`, and since "
                       "the private key was exposed, generate a new pair")
        # No guess from the bit pattern (keys.looks_clamped): 1 genuine public key in 32
        # has it, so a community of 9 machines would see a false warning 1 time in 4.
    seen: dict[str, str] = {}
    for section, machines in (("hubs", t.hubs), ("nodes", t.nodes)):
        for name, m in machines.items():
            if not m.public_key:
                continue
            if m.public_key in seen:
                yield _err((section, name, "public_key"),
                           f"same public key as {seen[m.public_key]}",
                           f"run `wgbgp keygen {name}` on {name} and paste its public key")
            seen.setdefault(m.public_key, name)


def _peerings(t: Topology) -> Iterator[Issue]:
    if t.peerings is None:
        return
    if t.network.mode == "hub":
        yield _err(("peerings",), "peerings choose who peers with whom in mesh mode; in hub "
                   "mode every client peers with the hub and reaches every other client",
                   "remove 'peerings', or use 'mode: mesh'")
        return
    pairs = set()
    for i, (a, b) in enumerate(t.peerings):
        for j, n in enumerate((a, b)):
            if n not in t.nodes:
                hint = f"known nodes: {', '.join(t.nodes)}" if t.nodes else "declare it under nodes"
                yield _err(("peerings", i, j), f"peering names unknown node {n!r}", hint)
        if a == b:
            yield _err(("peerings", i), f"node {a!r} cannot peer with itself",
                       "name two different nodes")
        key = frozenset((a, b))
        if key in pairs:
            yield _warn(("peerings", i), f"peering {a} - {b} is listed twice", "remove one")
        pairs.add(key)


def _lab(t: Topology) -> Iterator[Issue]:
    if t.lab is None:
        return
    for name, placement in t.lab.nodes.items():
        if name not in t.nodes:
            yield _err(("lab", "nodes", name), f"lab placement for unknown node {name!r}",
                       f"known nodes: {', '.join(t.nodes)}")
        if t.lab.carriers and placement.carrier not in t.lab.carriers:
            yield _err(("lab", "nodes", name, "carrier"), f"unknown carrier {placement.carrier!r}",
                       f"declare it under lab.carriers ({', '.join(t.lab.carriers)})")


def _lints(t: Topology) -> Iterator[Issue]:
    for section, machines in (("hubs", t.hubs), ("nodes", t.nodes)):
        for name, m in machines.items():
            if not m.public_key:
                yield _warn((section, name), f"{name} has no public_key yet",
                            f"run `wgbgp keygen {name}` on {name} and paste the public key")
    for name, node in t.nodes.items():
        if not node.announce:
            yield _warn(("nodes", name), f"{name} announces no prefixes",
                        "add the addresses it should make reachable under 'announce'")
    if implied_overlay6(t):
        yield _warn(("network",), "IPv6 prefixes are announced but no overlay6 is declared: "
                    f"tunnels get IPv6 addresses from {overlay6(t)} (a ULA derived from the "
                    "network name)", f"write 'overlay6: {overlay6(t)}' (or 'auto') to say so")
    if t.network.mtu > 1420:
        yield _warn(("network", "mtu"), f"MTU {t.network.mtu} exceeds 1420, the largest that "
                    "fits WireGuard over a 1500-byte path; large packets may be dropped",
                    "leave mtu out (1420) unless every underlay path carries jumbo frames")
    if t.network.mode == "mesh" and t.peerings is None and len(t.nodes) > MESH_SESSIONS_HINT:
        n = len(t.nodes)
        planes = f" on each of {len(t.hubs)} hubs" if len(t.hubs) > 1 else ""
        yield _warn(("network", "mode"), f"a full mesh of {plural(n, 'client')} needs "
                    f"{plural(n * (n - 1) // 2, 'BGP session')}{planes}",
                    "set 'mode: hub' (one session per client, to the hub as route server; "
                    "give the hub an 'asn'), or list only the peerings you need under "
                    "'peerings'")
    prefs: dict[int, list[str]] = {}
    for name, pref in hub_preferences(t).items():
        prefs.setdefault(pref, []).append(name)
    for pref, names in prefs.items():
        if len(names) > 1:
            yield _warn(("hubs", names[1], "preference"),
                        f"hubs {', '.join(names)} have the same preference ({pref}): which "
                        "plane carries traffic is left to BGP's tie-breaking",
                        "give the hub that should carry traffic a higher 'preference'")



def _policy(t: Topology) -> Iterator[Issue]:
    """The import-policy knobs must make sense for what the node declares."""
    for name, node in t.nodes.items():
        if node.more_specifics is not None:
            yield from _more_specifics(name, node)
        if node.max_prefixes is not None and node.max_prefixes < len(node.announce):
            yield _err(("nodes", name, "max_prefixes"),
                       f"max_prefixes {node.max_prefixes} is below the {len(node.announce)} "
                       "prefixes this node announces: its sessions would close at once",
                       f"use at least {len(node.announce)}, or leave it out")


def _more_specifics(name: str, node: Node) -> Iterator[Issue]:
    """more_specifics against the prefixes of each family: a length per family, each from
    the longest announced prefix of that family to /32 (IPv4) or /128 (IPv6)."""
    loc = ("nodes", name, "more_specifics")
    per_family = isinstance(node.more_specifics, MoreSpecifics)
    if not node.announce:
        yield _warn(loc, f"{name} announces nothing, so more_specifics has no effect",
                    "remove it, or list the prefixes under 'announce'")
        return
    both = {p.version for p in node.announce} == {4, 6}
    for version, bits in ((4, 32), (6, 128)):
        length = node.more_specifics_of(version)
        prefixes = [p for p in node.announce if p.version == version]
        where = (*loc, f"ipv{version}") if per_family else loc
        if length is None:
            continue
        if not prefixes:
            if per_family:
                yield _warn(where, f"{name} announces no IPv{version} prefix, so "
                            f"more_specifics.ipv{version} has no effect",
                            f"remove ipv{version}, or announce an IPv{version} prefix")
            continue
        longest = max(p.prefixlen for p in prefixes)
        per_family_fix = (" (or one length per family: {ipv4: N, ipv6: M})"
                          if both and not per_family else "")
        if length > bits:
            yield _err(where, f"more_specifics /{length} is longer than an IPv{version} "
                       f"prefix can be (/{bits}), and {name} announces "
                       f"{prefixes[0]}", f"use a length from /{longest} to /{bits}"
                       + per_family_fix)
        elif length < longest:
            shorter = next(p for p in prefixes if p.prefixlen > length)
            yield _err(where, f"more_specifics /{length} is shorter than the announced "
                       f"{shorter}", f"use a length from /{longest} to /{bits}"
                       + per_family_fix + ", or leave it out")


def _exits(t: Topology) -> Iterator[Issue]:
    exits = [name for name, hub in t.hubs.items() if hub.exit]
    wanted = [name for name, node in t.nodes.items() if node.exit]
    if not exits:
        for name in wanted:
            yield _err(("nodes", name, "exit"),
                       f"{name} asks for an exit to the Internet, but no hub provides one",
                       "set 'exit: true' on the hub that should forward its Internet traffic, "
                       "or remove 'exit' here")
    elif not wanted:
        for name in exits:
            yield _warn(("hubs", name, "exit"), f"hub {name} offers an exit no node uses",
                        "set 'exit: true' on the nodes that may use it, or remove it here")


# user:password@host: a password where only a login belongs (possessive: "ssh://" is
# a scheme, never a user "ssh" with password "//...").
_SSH_PASSWORD = re.compile(r"^(?:ssh://)?+[^@/\s]*:[^@]*@")


def _secrets(t: Topology) -> Iterator[Issue]:
    """Secrets where they do not belong, and secrets shared wider than they should be."""
    for section, machines in (("hubs", t.hubs), ("nodes", t.nodes)):
        for name, m in machines.items():
            if m.ssh and _SSH_PASSWORD.match(m.ssh):
                yield _err((section, name, "ssh"),
                           "the SSH target holds a password (user:password@host); passwords "
                           "never belong in the topology (it is not repeated here)",
                           "write user@host and log in with an SSH key; change that password")
    net = t.network
    for field, what in (("bgp_password", "BGP session"), ("preshared_key", "tunnel")):
        secret = getattr(net, field)
        if secret is None:
            continue
        named = secret.file if secret.file is not None else secret.env
        if named is not None and PAIR not in named and len(t.nodes) > 1:
            yield _warn(("network", field), f"every {what} shares one secret, so every node "
                        f"knows the secret of every other {what}",
                        f"put {PAIR} in the name to give each {what} its own, e.g. "
                        f"/etc/wgbgp/{field.replace('_', '-')}-{PAIR}.secret")


# A WireGuard key anywhere in the text (values and comments): 32 bytes of base64.
_KEY_TOKEN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=(?![A-Za-z0-9+/=])")
# Pasted private material: a PEM/OpenSSH private key, or a wg-quick secret line.
_PASTED = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|\b(?:PrivateKey|PresharedKey)\s*=",
                     re.IGNORECASE)


def secrets_in_text(text: str, topology: Topology) -> Iterator[tuple[int, str, str]]:
    """(line, message, fix) for private material anywhere in the file, comments included:
    a private key whose public key the topology declares, a PEM/OpenSSH private key, a
    wg-quick PrivateKey/PresharedKey line. Never quotes what it found."""
    declared = {m.public_key: name for machines in (topology.hubs, topology.nodes)
                for name, m in machines.items() if m.public_key}
    for number, line in enumerate(text.splitlines(), 1):
        if _PASTED.search(line):
            yield (number, "private key material in the topology (a private key block, or a "
                   "PrivateKey/PresharedKey line); it is not repeated here",
                   "delete it; the topology holds public keys only, and since it was "
                   "exposed here, make a new key")
            continue
        for token in _KEY_TOKEN.findall(line):
            if token in declared:
                continue
            try:
                owner = declared.get(public_key(token))
            except InvalidKey:
                continue
            if owner is not None:
                yield (number, f"the PRIVATE key of {owner} (its public key is declared) is "
                       "in the topology; it is not repeated here",
                       f"delete it, and since it was exposed, `wgbgp keys rotate TOPOLOGY {owner}` "
                       "or make a new pair with `wgbgp keygen`")
