"""Compile: Topology -> one Plan per machine (mesh mode)."""

from __future__ import annotations

import copy
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from hypothesis import given

from topogen import doc, load, pub, topology_docs
from wgbgp.compile import compile_topology, interface_name, peerings
from wgbgp.compile.mesh import MESH_MULTIHOP
from wgbgp.model import allocate


def classic():
    d = doc(2)
    d["hubs"]["vps"]["address"] = "10.0.0.1"
    d["nodes"]["n1"]["announce"] = ["100.100.100.1/32", "192.168.10.0/24"]
    return d


def test_plans_hub_first_in_file_order():
    plans = compile_topology(load(doc(3)))
    assert list(plans) == ["vps", "n1", "n2", "n3"]
    assert [p.role for p in plans.values()] == ["hub", "client", "client", "client"]


def test_hub_plan():
    hub = compile_topology(load(classic()))["vps"]
    assert hub.bgp is None and hub.ip_forward
    (tunnel,) = hub.tunnels
    assert tunnel.interface == interface_name("vps") == "wg-vps"
    assert tunnel.listen_port == 51820
    assert tunnel.address == IPv4Interface("10.0.0.1/24")
    assert tunnel.mtu == 1420 and not tunnel.table_off
    assert [p.name for p in tunnel.peers] == ["n1", "n2"]
    n1, n2 = tunnel.peers
    # A client's AllowedIPs at the hub: its tunnel /32 and exactly what it declares.
    assert n1.allowed_ips == (IPv4Network("10.0.0.2/32"), IPv4Network("100.100.100.1/32"),
                              IPv4Network("192.168.10.0/24"))
    assert n2.allowed_ips == (IPv4Network("10.0.0.3/32"), IPv4Network("100.64.2.0/24"))
    assert n1.public_key == pub("n1")
    # The hub never dials out: clients are behind CG-NAT.
    assert n1.endpoint is None and n1.keepalive is None


def test_client_tunnel_to_hub():
    plan = compile_topology(load(classic()))["n2"]
    (tunnel,) = plan.tunnels
    assert tunnel.address == IPv4Interface("10.0.0.3/24")  # overlay length: peers connected
    assert tunnel.table_off and tunnel.listen_port is None
    (hub,) = tunnel.peers
    assert hub.name == "vps" and hub.public_key == pub("vps")
    assert [str(a) for a in hub.allowed_ips] == ["0.0.0.0/0", "::/0"]
    assert hub.endpoint == "203.0.113.10:51820"
    assert hub.keepalive == 25


def test_keepalive_and_mtu_come_from_the_network():
    plan = compile_topology(load(doc(2, mtu=1380, keepalive=15)))["n1"]
    assert plan.tunnels[0].mtu == 1380
    assert plan.tunnels[0].peers[0].keepalive == 15
    assert compile_topology(load(doc(2, mtu=1380)))["vps"].tunnels[0].mtu == 1380


def test_client_bgp():
    plans = compile_topology(load(classic()))
    bgp = plans["n1"].bgp
    assert bgp.asn == 65001 and bgp.router_id == IPv4Address("10.0.0.2")
    assert bgp.originate == (IPv4Network("100.100.100.1/32"), IPv4Network("192.168.10.0/24"))
    (session,) = bgp.sessions
    assert session.peer == "n2" and session.peer_address == IPv4Address("10.0.0.3")
    assert session.peer_asn == 65002 and session.interface == "wg-vps"
    assert session.multihop == MESH_MULTIHOP == 2
    # Import exactly what the neighbour declared.
    assert session.accept == (IPv4Network("100.64.2.0/24"),)
    assert plans["n2"].bgp.sessions[0].accept == bgp.originate


def test_client_forwards_only_when_it_announces_a_network():
    plans = compile_topology(load(classic()))
    assert plans["n1"].ip_forward            # 192.168.10.0/24 sits behind it
    d = doc(2)
    d["nodes"]["n1"]["announce"] = ["100.100.100.1/32"]
    assert not compile_topology(load(d))["n1"].ip_forward


def test_default_sessions_are_every_pair():
    plans = compile_topology(load(doc(4)))
    for name in ("n1", "n2", "n3", "n4"):
        peers = [s.peer for s in plans[name].bgp.sessions]
        assert peers == [n for n in ("n1", "n2", "n3", "n4") if n != name]
    assert len(peerings(load(doc(4)))) == 6


def test_explicit_peerings_only():
    d = doc(4)
    d["peerings"] = [["n1", "n2"], ["n3", "n1"], ["n2", "n1"]]  # last one repeats the first
    topology = load(d)
    assert peerings(topology) == [("n1", "n2"), ("n3", "n1")]
    plans = compile_topology(topology)
    assert [s.peer for s in plans["n1"].bgp.sessions] == ["n2", "n3"]
    assert [s.peer for s in plans["n2"].bgp.sessions] == ["n1"]
    assert [s.peer for s in plans["n3"].bgp.sessions] == ["n1"]
    # n4 peers with no one but still has a tunnel and originates its prefixes.
    assert plans["n4"].bgp.sessions == () and plans["n4"].tunnels
    assert plans["n4"].bgp.originate == (IPv4Network("100.64.4.0/24"),)


def test_empty_peerings_list_means_no_sessions():
    d = doc(3)
    d["peerings"] = []
    plans = compile_topology(load(d))
    assert all(plans[n].bgp.sessions == () for n in ("n1", "n2", "n3"))


def test_missing_public_keys_compile_to_none():
    plans = compile_topology(load(doc(2, keys=False)))
    assert plans["n1"].tunnels[0].peers[0].public_key is None
    assert plans["vps"].tunnels[0].peers[0].public_key is None


def test_key_file_path():
    assert compile_topology(load(doc(1)))["n1"].key_file == "/etc/wgbgp/keys/n1.key"


# --- properties ------------------------------------------------------------------------

@given(topology_docs())
def test_compile_is_deterministic(d):
    topology = load(d)
    assert compile_topology(topology) == compile_topology(topology)
    assert compile_topology(load(copy.deepcopy(d))) == compile_topology(topology)


@given(topology_docs())
def test_sessions_are_symmetric(d):
    topology = load(d)
    plans = compile_topology(topology)
    addresses = allocate(topology)
    sessions = {
        (name, s.peer): s for name, p in plans.items() if p.bgp for s in p.bgp.sessions
    }
    for (a, b), s in sessions.items():
        assert a != b
        back = sessions[(b, a)]  # B has a session to A ...
        # ... with swapped addresses and ASNs.
        assert s.peer_address == plans[b].bgp.router_id == addresses[b]
        assert back.peer_address == plans[a].bgp.router_id == addresses[a]
        assert s.peer_asn == plans[b].bgp.asn == topology.nodes[b].asn
        assert back.peer_asn == plans[a].bgp.asn
        # Each imports exactly what the other exports.
        assert s.accept == plans[b].bgp.originate == tuple(topology.nodes[b].announce)
        assert back.accept == plans[a].bgp.originate
        assert s.multihop == back.multihop == 2
        assert s.interface == back.interface
    assert len(sessions) == 2 * len(peerings(topology))
    # A session is one per pair: no node lists the same neighbour twice.
    for p in plans.values():
        if p.bgp:
            assert len({s.peer for s in p.bgp.sessions}) == len(p.bgp.sessions)


@given(topology_docs())
def test_sessions_follow_peerings(d):
    topology = load(d)
    plans = compile_topology(topology)
    got = {frozenset((n, s.peer)) for n, p in plans.items() if p.bgp for s in p.bgp.sessions}
    if "peerings" in d:
        assert got == {frozenset(p) for p in d["peerings"]}
    else:
        names = list(topology.nodes)
        assert got == {frozenset((a, b)) for i, a in enumerate(names) for b in names[i + 1:]}


@given(topology_docs())
def test_hub_allowed_ips_are_disjoint_and_complete(d):
    # WireGuard gives an address to one peer only: overlapping AllowedIPs would silently
    # steal traffic. Every client's tunnel address and prefixes are routed to it alone.
    topology = load(d)
    plans = compile_topology(topology)
    addresses = allocate(topology)
    (hub_tunnel,) = next(p for p in plans.values() if p.role == "hub").tunnels
    assert [p.name for p in hub_tunnel.peers] == list(topology.nodes)
    all_ips = []
    for peer in hub_tunnel.peers:
        node = topology.nodes[peer.name]
        assert peer.allowed_ips == (IPv4Network(addresses[peer.name]), *node.announce)
        all_ips += [(ip, peer.name) for ip in peer.allowed_ips]
    for i, (a, owner_a) in enumerate(all_ips):
        for b, owner_b in all_ips[i + 1:]:
            assert not a.overlaps(b), f"{a} ({owner_a}) overlaps {b} ({owner_b})"


@given(topology_docs())
def test_every_client_reaches_the_hub(d):
    topology = load(d)
    plans = compile_topology(topology)
    addresses = allocate(topology)
    prefixlen = topology.network.overlay.prefixlen
    for name in topology.nodes:
        (tunnel,) = plans[name].tunnels
        assert tunnel.address == IPv4Interface(f"{addresses[name]}/{prefixlen}")
        (hub,) = tunnel.peers
        assert tunnel.table_off and hub.keepalive == 25 and hub.endpoint
        assert [str(a) for a in hub.allowed_ips] == ["0.0.0.0/0", "::/0"]
