"""Compile a topology into one Plan per machine (mesh mode: clients peer through the hub)."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Interface, IPv4Network
from itertools import combinations

from ..model.addressing import allocate
from ..model.schema import Topology
from .plan import BgpSession, BgpSpeaker, Plan, Tunnel, TunnelPeer

# A client->client session crosses one router (the hub), which decrements TTL once.
MESH_MULTIHOP = 2
ANY = ("0.0.0.0/0", "::/0")


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
    addresses = allocate(topology)
    net = topology.network
    prefixlen = net.overlay.prefixlen
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
            allowed_ips=(IPv4Network(addresses[name]), *node.announce),
        )
        for name, node in topology.nodes.items()
    )
    plans[hub_name] = Plan(
        machine=hub_name, network=net.name, role="hub",
        tunnels=(Tunnel(iface, hub_name, IPv4Interface(f"{addresses[hub_name]}/{prefixlen}"),
                        net.mtu, hub_peers, listen_port=hub.port),),
        bgp=None, ip_forward=True,
    )
    for name, node in topology.nodes.items():
        to_hub = TunnelPeer(hub_name, hub.public_key, ANY, endpoint=hub.endpoint,
                            keepalive=net.keepalive)
        tunnel = Tunnel(iface, hub_name, IPv4Interface(f"{addresses[name]}/{prefixlen}"),
                        net.mtu, (to_hub,), table_off=True)
        sessions = tuple(
            BgpSession(peer, addresses[peer], topology.nodes[peer].asn, iface, MESH_MULTIHOP,
                       tuple(topology.nodes[peer].announce))
            for peer in neighbours[name]
        )
        bgp = BgpSpeaker(node.asn, addresses[name], tuple(node.announce), sessions)
        plans[name] = Plan(name, net.name, "client", (tunnel,), bgp,
                           ip_forward=_routes_a_lan(node.announce))
    return plans


def _routes_a_lan(prefixes: Iterable[IPv4Network]) -> bool:
    # A prefix wider than one address is a network behind this machine: it must forward.
    return any(p.prefixlen < 32 for p in prefixes)
