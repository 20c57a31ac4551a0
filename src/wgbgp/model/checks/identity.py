"""Identity checks: machine names, ASNs, hub endpoints, public keys, the peerings between
nodes and the lab's placements: each machine is one, and each is who it says it is."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

from ..issues import Issue, error, warning
from ..keys import InvalidKey, public_key
from ..schema import Topology
from ..special import DOCUMENTATION, Address, is_public, literal


def check_names(t: Topology) -> Iterator[Issue]:
    if not t.hubs:
        yield error(("hubs",), "no hub declared; clients behind CG-NAT need one public hub",
                    "add a hub under 'hubs:' with the public endpoint of your VPS")
    for name in t.nodes:
        if name in t.hubs:
            yield error(("nodes", name), f"{name!r} is both a hub and a node",
                        "give every machine a distinct name")
    if not t.nodes:
        yield error(("nodes",), "no nodes declared", "add at least two nodes under 'nodes:'")


def check_asns(t: Topology) -> Iterator[Issue]:
    by_asn: dict[int, list[str]] = {}
    for name, node in t.nodes.items():
        by_asn.setdefault(node.asn, []).append(name)
    for asn, names in by_asn.items():
        if len(names) > 1:
            yield warning(("nodes", names[1], "asn"),
                          f"ASN {asn} is shared by {', '.join(names)}; eBGP drops routes whose "
                          "AS path holds the receiver's own ASN",
                          "give every node its own ASN")
    for section, name, m in t.located():
        if m.asn is not None and not _private_asn(m.asn):
            yield warning((section, name, "asn"),
                          f"ASN {m.asn} is a public ASN, assigned to an organisation on the "
                          "Internet; routes from this overlay would carry it in their AS path",
                          "use a private ASN: 64512-65534 or 4200000000-4294967294 (keep "
                          "it only if it is yours and you mean it)")
    for name, hub in t.hubs.items():
        loc = ("hubs", name, "asn")
        if t.network.mode == "hub" and hub.asn is None:
            yield error(loc, f"in hub mode hub {name!r} speaks BGP (it is the route server) "
                        "and needs its own ASN",
                        f"add 'asn: {_free_asn(t)}' (a private ASN no node uses)")
        elif hub.asn is not None and hub.asn in by_asn:
            yield error(loc, f"hub {name!r} has ASN {hub.asn}, which node "
                        f"{by_asn[hub.asn][0]} also uses; the session between them would be "
                        "iBGP and the route server would not pass routes on",
                        f"give the hub an ASN no node uses, e.g. {_free_asn(t)}")
        elif hub.asn is not None and t.network.mode != "hub":
            yield warning(loc, f"hub {name!r} has an ASN but speaks no BGP in mesh mode",
                          "leave it for a later switch to 'mode: hub', or remove it")
        if hub.daemon != "frr" and t.network.mode != "hub":
            yield warning(("hubs", name, "daemon"), f"hub {name!r} names a BGP daemon "
                          f"({hub.daemon}) but speaks no BGP in mesh mode",
                          "leave it for a later switch to 'mode: hub', or remove it")


def _private_asn(asn: int) -> bool:
    """RFC 6996 private use (documentation and reserved ASNs are errors, asn_problem)."""
    return 64512 <= asn <= 65534 or 4200000000 <= asn <= 4294967294


def check_endpoints(t: Topology) -> Iterator[Issue]:
    """Hub endpoints: distinct, and reachable from the Internet."""
    seen: dict[tuple[str, int], str] = {}
    for name, hub in t.hubs.items():
        loc = ("hubs", name, "endpoint")
        address = literal(hub.host)
        key = (str(address) if address else hub.host.lower().rstrip("."), hub.port)
        if key in seen:
            yield error(loc, f"hub {name} has the same endpoint as hub {seen[key]} "
                        f"({hub.endpoint}): clients would dial one WireGuard interface for "
                        "both, so they are not two hubs",
                        "give each hub its own public address or port")
        seen.setdefault(key, name)
        if address is None or t.network.underlay == "private" or is_public(address):
            continue
        if any(address in d for d in DOCUMENTATION):
            continue  # a placeholder, as in every example
        yield warning(loc, f"hub {name}'s endpoint {address} is not a public address "
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


def check_keys(t: Topology) -> Iterator[Issue]:
    declared = {}
    for section, name, m in t.located():
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
            yield error(loc, "this is a PRIVATE key (its public key is declared for "
                        f"{declared[derived][1]}); private keys never belong in the topology",
                        "replace it with the output of `wg pubkey` / `wgbgp keygen`, and since "
                        "the private key was exposed, generate a new pair")
        # No guess from the bit pattern (keys.looks_clamped): 1 genuine public key in 32
        # has it, so a community of 9 machines would see a false warning 1 time in 4.
    seen: dict[str, str] = {}
    for section, name, m in t.located():
        if not m.public_key:
            continue
        if m.public_key in seen:
            yield error((section, name, "public_key"),
                        f"same public key as {seen[m.public_key]}",
                        f"run `wgbgp keygen {name}` on {name} and paste its public key")
        seen.setdefault(m.public_key, name)


def check_peerings(t: Topology) -> Iterator[Issue]:
    if t.peerings is None:
        return
    if t.network.mode == "hub":
        yield error(("peerings",), "peerings choose who peers with whom in mesh mode; in hub "
                    "mode every client peers with the hub and reaches every other client",
                    "remove 'peerings', or use 'mode: mesh'")
        return
    pairs = set()
    for i, (a, b) in enumerate(t.peerings):
        for j, n in enumerate((a, b)):
            if n not in t.nodes:
                hint = f"known nodes: {', '.join(t.nodes)}" if t.nodes else "declare it under nodes"
                yield error(("peerings", i, j), f"peering names unknown node {n!r}", hint)
        if a == b:
            yield error(("peerings", i), f"node {a!r} cannot peer with itself",
                        "name two different nodes")
        key = frozenset((a, b))
        if key in pairs:
            yield warning(("peerings", i), f"peering {a} - {b} is listed twice", "remove one")
        pairs.add(key)


def check_lab(t: Topology) -> Iterator[Issue]:
    if t.lab is None:
        return
    for name, placement in t.lab.nodes.items():
        if name not in t.nodes:
            yield error(("lab", "nodes", name), f"lab placement for unknown node {name!r}",
                        f"known nodes: {', '.join(t.nodes)}")
        if t.lab.carriers and placement.carrier not in t.lab.carriers:
            yield error(("lab", "nodes", name, "carrier"), f"unknown carrier {placement.carrier!r}",
                        f"declare it under lab.carriers ({', '.join(t.lab.carriers)})")
