"""Announced prefixes: not special-purpose space, not absurdly short, outside the overlays,
covering no address machines must reach outside the tunnel, and owned by one node."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from ipaddress import IPv4Network, IPv6Network

from ..addressing import overlays
from ..addrindex import AddressIndex
from ..issues import Issue, Loc, error, warning
from ..schema import Topology
from ..special import MIN_LENGTH, Address, literal, special_purpose, ssh_host


def check_prefixes(t: Topology) -> Iterator[Issue]:
    """Each announced prefix: not special-purpose space, not absurdly short, outside the
    overlays, covering no hub endpoint or `ssh:` target, and owned by one node. One node
    may announce an aggregate and its own more-specifics (10.1.0.0/16 and 10.1.2.0/24):
    that is legitimate traffic engineering, and both are its own."""
    nets = overlays(t)
    owners = {4: PrefixOwners(32), 6: PrefixOwners(128)}
    targets = AddressIndex((address, (what, address, loc))
                           for what, address, loc in _literal_targets(t))
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
                yield error(loc, f"{prefix} {where}: no node can route it over the overlay",
                            "announce addresses the node really has: public ones it owns, or "
                            "private ones (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
                            "100.64.0.0/10, fc00::/7)")
                continue
            floor = MIN_LENGTH[prefix.version]
            if prefix.prefixlen < floor:
                short = True
                if not node.allow_short:
                    share = f"1/{1 << prefix.prefixlen} of all IPv{prefix.version} addresses"
                    yield error(loc, f"{prefix} is shorter than /{floor}: that is {share}, not "
                                "a range one node owns (a typo in the length?)",
                                "announce the prefixes this node really has, or set "
                                f"'allow_short: true' on {name} if it means it")
                    continue
            overlay = next((o for o in nets if o.version == prefix.version
                            and prefix.overlaps(o)), None)
            if overlay is not None:
                yield error(loc, f"{prefix} overlaps the overlay {overlay}",
                            "announce prefixes outside the tunnel overlays")
                continue
            covered = targets.first_in(prefix)
            if covered is not None:
                yield _cover_issue(loc, prefix, *covered)
                continue
            mine = owners[prefix.version]
            if mine.has(prefix, name):
                yield warning(loc, f"{prefix} is listed twice by {name}", "remove one")
                continue
            clash = mine.first_overlap(prefix, besides=name)
            if clash is not None:
                other, owner = clash
                yield error(loc, f"{prefix} overlaps {other}, announced by {owner}",
                            "each address range must belong to one node only (one node may "
                            "announce an aggregate and its own more-specifics)")
                continue
            mine.add(prefix, name)
        if node.allow_short and not short:
            yield warning(("nodes", name, "allow_short"), f"{name} announces no prefix shorter "
                          "than /8 (IPv4) or /16 (IPv6), so allow_short has no effect",
                          "remove it")


def reach_targets(t: Topology) -> list[tuple[str, str, Loc]]:
    """(what, host, loc) of every address machines must reach outside the overlay: each
    hub's endpoint and each `ssh:` target. A host may be an address or a DNS name."""
    out: list[tuple[str, str, Loc]] = []
    for name, hub in t.hubs.items():
        out.append((f"hub {name}'s endpoint", hub.host, ("hubs", name, "endpoint")))
    for section, name, m in t.located():
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
    return error(loc, f"{prefix} covers {address}, {what}{via}: {why}",
                 f"announce prefixes that leave {address} out, or give "
                 f"{'.'.join(map(str, target_loc[:2]))} an address outside {prefix}")


def covering(t: Topology, resolved: dict[str, list[Address]]) -> Iterator[Issue]:
    """Announced prefixes covering what a DNS name among the reach targets resolves to
    (`resolved`: name -> addresses, found at the edge: resolving is a side effect)."""
    # Each name's addresses, names in order: the first hit is the first name's first.
    names = AddressIndex((a, (what, a, loc, host)) for what, host, loc in reach_targets(t)
                         if literal(host) is None and host in resolved
                         for a in resolved[host])
    for node_name, node in t.nodes.items():
        for i, prefix in enumerate(node.announce):
            hit = names.first_in(prefix)
            if hit is not None and special_purpose(prefix) is None:  # else refused as such
                yield _cover_issue(("nodes", node_name, "announce", i), prefix, *hit)


class PrefixOwners:
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
