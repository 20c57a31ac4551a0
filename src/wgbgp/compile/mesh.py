"""Compile a topology into one Plan per machine (mesh mode: clients peer through the hub)."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Interface, IPv6Interface, ip_network
from itertools import combinations

from ..model.addressing import allocate, allocate6, overlay6, overlays, router_ids
from ..model.schema import Node, Secret, Topology
from .plan import BgpSession, BgpSpeaker, Plan, SecretRef, Tunnel, TunnelPeer

# A client->client session crosses one router (the hub), which decrements TTL once.
MESH_MULTIHOP = 2
ANY = ("0.0.0.0/0", "::/0")
# Prefixes a peer may send beyond what it declares before its session is closed, unless
# the node sets max_prefixes: room for a mistake, none for a flood.
PREFIX_MARGIN = 10


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
    """The BGP peerings: explicit ones, or every pair of clients (the classic recipe)."""
    if topology.peerings is not None:
        seen: dict[frozenset, tuple[str, str]] = {}
        for a, b in topology.peerings:
            seen.setdefault(frozenset((a, b)), (a, b))
        return list(seen.values())
    return list(combinations(topology.nodes, 2))


def compile_topology(topology: Topology) -> dict[str, Plan]:
    """One Plan per machine, hubs first, in file order. Pure and deterministic."""
    v4 = allocate(topology)
    v6 = allocate6(topology)
    ids = router_ids(topology)
    net = topology.network
    ov6 = overlay6(topology)

    def iface_addresses(name: str) -> dict:
        return {
            "address": IPv4Interface(f"{v4[name]}/{net.overlay.prefixlen}") if v4 else None,
            "address6": IPv6Interface(f"{v6[name]}/{ov6.prefixlen}") if v6 and ov6 else None,
        }

    def own(name: str) -> tuple:
        return tuple(ip_network(a) for a in (v4.get(name), v6.get(name)) if a is not None)

    neighbours: dict[str, list[str]] = {name: [] for name in topology.nodes}
    for a, b in peerings(topology):
        neighbours[a].append(b)
        neighbours[b].append(a)

    plans: dict[str, Plan] = {}
    (hub_name, hub), = topology.hubs.items()
    iface = interface_name(hub_name)
    hub_peers = tuple(
        TunnelPeer(
            name=name,
            public_key=node.public_key,
            allowed_ips=(*own(name), *node.announce),
            preshared_key=secret_ref(net.preshared_key, hub_name, name, "preshared key of tunnel"),
        )
        for name, node in topology.nodes.items()
    )
    exit_sources = tuple(
        p for name, node in topology.nodes.items() if node.exit and hub.exit
        for p in (*own(name), *node.announce))
    plans[hub_name] = Plan(
        machine=hub_name, network=net.name, role="hub",
        tunnels=(Tunnel(iface, hub_name, mtu=net.mtu, peers=hub_peers, listen_port=hub.port,
                        **iface_addresses(hub_name)),),
        bgp=None, ip_forward=True, exit_sources=exit_sources,
    )
    for name, node in topology.nodes.items():
        to_hub = TunnelPeer(hub_name, hub.public_key, ANY, endpoint=hub.endpoint,
                            keepalive=net.keepalive,
                            preshared_key=secret_ref(net.preshared_key, hub_name, name,
                                                     "preshared key of tunnel"))
        tunnel = Tunnel(iface, hub_name, mtu=net.mtu, peers=(to_hub,), table_off=True,
                        **iface_addresses(name))
        # One session per family the overlay has (see BgpSession).
        sessions = tuple(_session(topology, name, peer, family, iface)
                         for family in (v4, v6) if family
                         for peer in neighbours[name])
        bgp = BgpSpeaker(node.asn, ids[name], tuple(node.announce), sessions,
                         reject=(*overlays(topology), *node.announce),
                         originate_le=node.more_specifics, daemon=node.daemon)
        plans[name] = Plan(name, net.name, "client", (tunnel,), bgp,
                           ip_forward=_routes_a_lan(node.announce))
    return plans


def _session(topology: Topology, name: str, peer: str, addresses: dict, iface: str
             ) -> BgpSession:
    """`name`'s session with `peer` in one address family (that of `addresses`): import
    exactly what `peer` declares in that family, at most its limit."""
    other = topology.nodes[peer]
    version = addresses[peer].version
    accept = tuple(p for p in other.announce if p.version == version)
    return BgpSession(
        peer, addresses[peer], other.asn, iface, MESH_MULTIHOP, accept,
        accept_le=tuple(other.more_specifics if other.more_specifics is not None
                        and other.more_specifics > p.prefixlen else None
                        for p in accept),
        max_prefixes=import_limit(other, version),
        password=secret_ref(topology.network.bgp_password, name, peer, "BGP password of session"),
        local_address=addresses[name],
    )


def _routes_a_lan(prefixes: Iterable) -> bool:
    # A prefix wider than one address is a network behind this machine: it must forward.
    return any(p.prefixlen < p.max_prefixlen for p in prefixes)
