"""Compile a topology into one Plan per machine.

Every hub is a plane: its own overlay subnets, and a WireGuard interface `wg-<hub>` on
every client. BGP runs on every plane, one session per address family:
- mesh mode: clients peer with each other through each hub (TTL 2);
- hub mode: each client peers with each hub, a route server (RFC 7947) that passes
  routes on with next hop and AS path untouched, so clients send traffic to each other's
  tunnel addresses and the hub forwards it.
With several hubs, clients set local-pref per plane on import (the hub's preference) so
traffic takes the preferred hub's plane and moves to another when that hub dies; BFD on
every session makes "dies" take about a second.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_network
from itertools import combinations
from typing import TypedDict

from ..model.addressing import (
    hub_overlays,
    hub_router_id,
    overlays,
    plane_addresses,
    router_ids,
)
from ..model.derive import bfd_enabled, hub_preferences
from ..model.schema import Node, Secret, Topology
from .plan import (
    BfdTimers,
    BgpSession,
    BgpSpeaker,
    Plan,
    Prefix,
    SecretRef,
    Tunnel,
    TunnelPeer,
)

# A client->client session crosses one router (the hub), which decrements TTL once.
MESH_MULTIHOP = 2
ANY = ("0.0.0.0/0", "::/0")
# A hub-mode client imports everything the other clients declared, from every hub, in
# one shared prefix-list: FROM-HUBS (FROM6-HUBS).
ROUTE_SERVER_LIST = "HUBS"
# Prefixes a peer may send beyond what it declares before its session is closed, unless
# the node sets max_prefixes: room for a mistake, none for a flood.
PREFIX_MARGIN = 10

# One plane's addresses in one family, by machine name (see plane_addresses).
Addresses = dict[str, IPv4Address | IPv6Address]


class _Plane(TypedDict):
    """What every session of a client on one hub's plane shares."""

    local_pref: int | None
    bfd: bool


class _IfaceAddresses(TypedDict):
    address: IPv4Interface | None
    address6: IPv6Interface | None


def import_limit(node: Node, version: int | None = None) -> int:
    """How many prefixes a peer accepts from `node` (in one address family, when given)
    before it closes the session."""
    if node.max_prefixes is not None:
        return node.max_prefixes
    return len([p for p in node.announce if version in (None, p.version)]) + PREFIX_MARGIN


def secret_ref(secret: Secret | None, a: str, b: str, what: str) -> SecretRef | None:
    """Where the secret of the session or tunnel between a and b is read, if it has one."""
    if secret is None:
        return None
    kind, name = secret.for_pair(a, b)
    return SecretRef(kind, name, f"{what} {'-'.join(sorted((a, b)))}")


def interface_name(hub: str) -> str:
    """The WireGuard interface for a hub, the same on every machine (<= 15 chars)."""
    return f"wg-{hub}"


def peerings(topology: Topology) -> list[tuple[str, str]]:
    """The mesh-mode BGP peerings: explicit ones, or every pair of clients (the classic
    recipe). Each pair peers once per hub (plane) and address family. In hub mode
    clients peer with the hubs only."""
    if topology.peerings is not None:
        seen: dict[frozenset[str], tuple[str, str]] = {}
        for a, b in topology.peerings:
            seen.setdefault(frozenset((a, b)), (a, b))
        return list(seen.values())
    return list(combinations(topology.nodes, 2))


def peering_count(topology: Topology) -> int:
    """Pairs of machines that speak BGP with each other: pairs of clients in mesh mode,
    (client, hub) pairs in hub mode. A peering has one session per plane and family."""
    if topology.network.mode == "hub":
        return len(topology.nodes) * len(topology.hubs)
    return len(peerings(topology))


def session_counts(topology: Topology) -> dict[str, int]:
    """BGP sessions in the whole network by address family ("ipv4", "ipv6"), each counted
    once (not at both ends): every peering has one per hub's plane and family it has."""
    per_plane = (len(topology.nodes) if topology.network.mode == "hub"
                 else len(peerings(topology)))
    return {afi: per_plane * sum(1 for sub in hub_overlays(topology, v).values() if sub)
            for v, afi in ((4, "ipv4"), (6, "ipv6"))}


def session_count(topology: Topology) -> int:
    """BGP sessions in the whole network (each counted once, not at both ends)."""
    return sum(session_counts(topology).values())


def _accept_le(node: Node, accept: Iterable[Prefix]) -> tuple[int | None, ...]:
    """Per prefix of `accept` (declared by `node`): the longest more-specific also taken."""
    return tuple(node.longest(p) for p in accept)


def compile_topology(topology: Topology, machines: Collection[str] | None = None
                     ) -> dict[str, Plan]:
    """One Plan per machine, hubs first, in file order. Pure and deterministic.

    `machines`: only these machines' plans (`render --node X`): a plan is compiled only
    when asked for, and each costs what that machine needs (a hub's: one session per
    client; a client's: its hubs and its peers). Each plan is the one the whole network's
    compile gives that machine."""
    net = topology.network
    wanted = None if machines is None else set(machines)
    v4, v6 = plane_addresses(topology, 4), plane_addresses(topology, 6)
    sub4, sub6 = hub_overlays(topology, 4), hub_overlays(topology, 6)
    ids = router_ids(topology)
    several = len(topology.hubs) > 1
    prefs = hub_preferences(topology) if several else {}
    bfd = (BfdTimers(net.bfd.interval, net.bfd.multiplier) if bfd_enabled(topology)
           else None)
    hub_mode = net.mode == "hub"
    every_overlay = tuple(overlays(topology))
    # Hub mode: what a client imports from its route servers, per family, built once for
    # every client (each takes it minus its own prefixes).
    served: dict[int, RouteServerImport] = {}

    def iface_addresses(hub: str, name: str) -> _IfaceAddresses:
        o4, o6 = sub4[hub], sub6[hub]
        return {
            "address": IPv4Interface(f"{v4[hub][name]}/{o4.prefixlen}") if o4 else None,
            "address6": IPv6Interface(f"{v6[hub][name]}/{o6.prefixlen}") if o6 else None,
        }

    def own(hub: str, name: str) -> tuple[Prefix, ...]:
        """A machine's tunnel addresses on one plane, as /32 and /128 prefixes."""
        return tuple(ip_network(p[hub][name]) for p in (v4, v6) if p[hub])

    def families(hub: str) -> list[Addresses]:
        return [p[hub] for p in (v4, v6) if p[hub]]

    def password(a: str, b: str) -> SecretRef | None:
        return secret_ref(net.bgp_password, a, b, "BGP password of session")

    def psk(hub: str, node: str) -> SecretRef | None:
        return secret_ref(net.preshared_key, hub, node, "preshared key of tunnel")

    plans: dict[str, Plan] = {}
    for hub_name, hub in topology.hubs.items():
        if wanted is not None and hub_name not in wanted:
            continue
        iface = interface_name(hub_name)
        hub_peers = tuple(
            TunnelPeer(
                name=name,
                public_key=node.public_key,
                allowed_ips=(*own(hub_name, name), *node.announce),
                preshared_key=psk(hub_name, name),
            )
            for name, node in topology.nodes.items()
        )
        exit_sources = tuple(
            p for name, node in topology.nodes.items() if node.exit and hub.exit
            for p in (*own(hub_name, name), *node.announce))
        speaker = None
        if hub_mode:
            # The route server: one session per client and family, importing what that
            # client declared (at most its limit); what it accepts it installs and
            # forwards (Table = off: BGP, not wg-quick, owns the hub's routes, as on
            # every other BGP speaker).
            sessions: list[BgpSession] = []
            for addresses in families(hub_name):
                version = addresses[hub_name].version
                for name, node in topology.nodes.items():
                    declared = tuple(p for p in node.announce if p.version == version)
                    sessions.append(BgpSession(
                        name, addresses[name], node.asn, iface, None, declared,
                        accept_le=_accept_le(node, declared),
                        max_prefixes=import_limit(node, version),
                        password=password(hub_name, name),
                        local_address=addresses[hub_name], bfd=bfd is not None,
                        route_server_client=True))
            speaker = BgpSpeaker(hub.asn or 0, hub_router_id(topology, hub_name), (),
                                 tuple(sessions), reject=every_overlay, bfd=bfd,
                                 daemon=hub.daemon,
                                 route_server=True, group="CLIENTS", multihop=None)
        plans[hub_name] = Plan(
            machine=hub_name, network=net.name, role="hub",
            tunnels=(Tunnel(iface, hub_name, mtu=net.mtu, peers=hub_peers,
                            listen_port=hub.port, table_off=hub_mode,
                            **iface_addresses(hub_name, hub_name)),),
            bgp=speaker, ip_forward=True, exit_sources=exit_sources,
        )

    clients = [name for name in topology.nodes if wanted is None or name in wanted]
    neighbours: dict[str, list[str]] = {name: [] for name in clients}
    if not hub_mode and clients:
        for a, b in peerings(topology):
            if a in neighbours:
                neighbours[a].append(b)
            if b in neighbours:
                neighbours[b].append(a)
    for name in clients:
        node = topology.nodes[name]
        tunnels = []
        sessions = []
        for hub_name, hub in topology.hubs.items():
            iface = interface_name(hub_name)
            to_hub = TunnelPeer(hub_name, hub.public_key, ANY, endpoint=hub.endpoint,
                                keepalive=net.keepalive, preshared_key=psk(hub_name, name))
            tunnels.append(Tunnel(iface, hub_name, mtu=net.mtu, peers=(to_hub,),
                                  table_off=True, **iface_addresses(hub_name, name)))
            plane = _Plane(local_pref=prefs.get(hub_name), bfd=bfd is not None)
            # One session per family the plane has (see BgpSession).
            for addresses in families(hub_name):
                if hub_mode:
                    # From the route server: what every other client declared, at most
                    # the sum of their limits.
                    version = addresses[name].version
                    if version not in served:
                        served[version] = RouteServerImport.of(topology, version)
                    accept, accept_le, limit = served[version].for_client(name)
                    sessions.append(BgpSession(
                        hub_name, addresses[hub_name], hub.asn or 0, iface, None,
                        accept, accept_le=accept_le, max_prefixes=limit,
                        password=password(hub_name, name), local_address=addresses[name],
                        accept_list=ROUTE_SERVER_LIST, **plane))
                else:
                    sessions += [_session(topology, name, peer, addresses, iface, plane)
                                 for peer in neighbours[name]]
        bgp = BgpSpeaker(node.asn, ids[name], tuple(node.announce), tuple(sessions),
                         reject=(*every_overlay, *node.announce),
                         originate_le=_accept_le(node, node.announce), daemon=node.daemon,
                         bfd=bfd,
                         group="HUBS" if hub_mode else "MESH",
                         multihop=None if hub_mode else MESH_MULTIHOP)
        plans[name] = Plan(name, net.name, "client", tuple(tunnels), bgp,
                           ip_forward=_routes_a_lan(node.announce))
    return plans


@dataclass(frozen=True)
class RouteServerImport:
    """What a hub-mode client accepts from a route server in one address family: every
    other client's declared prefixes (in file order), with their more-specific lengths,
    and at most the sum of those clients' limits.

    Built once for all clients: each client's list is the whole one without its own
    span, two tuple slices. Per client that is the size of the list, where asking every
    other client again made a network of N clients cost N^2 (2,000 clients: 4 million
    look-ups)."""

    prefixes: tuple[Prefix, ...]
    longest: tuple[int | None, ...]
    spans: dict[str, tuple[int, int]]  # client -> [start, end) of its own prefixes
    limits: dict[str, int]             # client -> its import limit in this family
    total: int

    @classmethod
    def of(cls, topology: Topology, version: int) -> RouteServerImport:
        prefixes: list[Prefix] = []
        longest: list[int | None] = []
        spans: dict[str, tuple[int, int]] = {}
        limits: dict[str, int] = {}
        for name, node in topology.nodes.items():
            start = len(prefixes)
            declared = [p for p in node.announce if p.version == version]
            prefixes += declared
            longest += _accept_le(node, declared)
            spans[name] = (start, len(prefixes))
            limits[name] = import_limit(node, version)
        return cls(tuple(prefixes), tuple(longest), spans, limits, sum(limits.values()))

    def for_client(self, name: str
                   ) -> tuple[tuple[Prefix, ...], tuple[int | None, ...], int | None]:
        """(accepted prefixes, their longest more-specifics, max_prefixes) for `name`."""
        start, end = self.spans[name]
        return (self.prefixes[:start] + self.prefixes[end:],
                self.longest[:start] + self.longest[end:],
                self.total - self.limits[name] or None)


def _session(topology: Topology, name: str, peer: str, addresses: Addresses, iface: str,
             plane: _Plane) -> BgpSession:
    """`name`'s session with `peer` in one address family (that of `addresses`): import
    exactly what `peer` declares in that family, at most its limit."""
    other = topology.nodes[peer]
    version = addresses[peer].version
    accept = tuple(p for p in other.announce if p.version == version)
    return BgpSession(
        peer, addresses[peer], other.asn, iface, MESH_MULTIHOP, accept,
        accept_le=_accept_le(other, accept),
        max_prefixes=import_limit(other, version),
        password=secret_ref(topology.network.bgp_password, name, peer, "BGP password of session"),
        local_address=addresses[name], peer_daemon=other.daemon, **plane,
    )


def _routes_a_lan(prefixes: Iterable[Prefix]) -> bool:
    # A prefix wider than one address is a network behind this machine: it must forward.
    return any(p.prefixlen < p.max_prefixlen for p in prefixes)
