"""Compile: hub mode (route server) and several hubs as planes (issue 7)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from topogen import load, pub, topo, topology_docs
from wgbgp.compile import compile_topology, session_count
from wgbgp.compile.mesh import MESH_MULTIHOP, ROUTE_SERVER_LIST


def test_hub_mode_hub_is_a_route_server():
    plans = compile_topology(load(topo(3, "hub")))
    hub = plans["vps"]
    assert hub.role == "hub" and hub.ip_forward
    bgp = hub.bgp
    assert bgp.route_server and bgp.asn == 64600 and bgp.router_id == IPv4Address("10.0.0.1")
    assert bgp.group == "CLIENTS" and bgp.multihop is None and bgp.originate == ()
    assert [(s.peer, str(s.peer_address), s.peer_asn) for s in bgp.sessions] == [
        ("n1", "10.0.0.2", 65001), ("n2", "10.0.0.3", 65002), ("n3", "10.0.0.4", 65003)]
    for s in bgp.sessions:
        # Per-client import policy: that client's declared prefixes, nothing else.
        assert s.accept == (IPv4Network(f"100.64.{s.peer_asn - 65000}.0/24"),)
        assert s.import_list == f"FROM-{s.peer}"
        assert s.route_server_client and s.multihop is None and s.interface == "wg-vps"
    # BGP, not wg-quick, installs the hub's routes: it forwards what it accepted.
    (tunnel,) = hub.tunnels
    assert tunnel.table_off and tunnel.listen_port == 51820


def test_hub_mode_client_has_one_session_to_the_hub():
    plans = compile_topology(load(topo(3, "hub")))
    n2 = plans["n2"].bgp
    (s,) = n2.sessions
    assert (s.peer, s.peer_address, s.peer_asn) == ("vps", IPv4Address("10.0.0.1"), 64600)
    assert s.multihop is None and n2.multihop is None and n2.group == "HUBS"
    # Everything the other clients declared (not its own), one shared list.
    assert s.accept == (IPv4Network("100.64.1.0/24"), IPv4Network("100.64.3.0/24"))
    assert s.import_list == f"FROM-{ROUTE_SERVER_LIST}" == "FROM-HUBS"
    assert s.local_pref is None and not s.bfd and n2.bfd is None  # one hub: neither


def test_mesh_mode_is_unchanged_with_one_hub():
    plans = compile_topology(load(topo(3)))
    assert plans["vps"].bgp is None and not plans["vps"].tunnels[0].table_off
    bgp = plans["n1"].bgp
    assert bgp.group == "MESH" and bgp.multihop == MESH_MULTIHOP and bgp.bfd is None
    assert [s.peer for s in bgp.sessions] == ["n2", "n3"]
    assert all(s.local_pref is None and not s.bfd for s in bgp.sessions)


def test_two_hubs_mesh_sessions_on_every_plane():
    plans = compile_topology(load(topo(3, hubs=2)))
    assert list(plans) == ["vps", "h1", "n1", "n2", "n3"]
    n1 = plans["n1"]
    assert [(t.interface, t.address) for t in n1.tunnels] == [
        ("wg-vps", IPv4Interface("10.0.0.3/24")), ("wg-h1", IPv4Interface("10.1.0.3/24"))]
    for t in n1.tunnels:
        (hub,) = t.peers
        assert hub.name == t.hub and [str(a) for a in hub.allowed_ips] == ["0.0.0.0/0", "::/0"]
    assert [(s.peer, str(s.peer_address), s.interface, s.local_pref) for s in n1.bgp.sessions] \
        == [("n2", "10.0.0.4", "wg-vps", 100), ("n3", "10.0.0.5", "wg-vps", 100),
            ("n2", "10.1.0.4", "wg-h1", 90), ("n3", "10.1.0.5", "wg-h1", 90)]
    assert all(s.bfd and s.multihop == 2 for s in n1.bgp.sessions)
    assert n1.bgp.bfd.interval_ms == 300 and n1.bgp.bfd.multiplier == 3
    assert n1.bgp.router_id == IPv4Address("10.0.0.3")
    # Each hub carries its own plane: its address there, every client at the same number.
    h1 = plans["h1"]
    (tunnel,) = h1.tunnels
    assert tunnel.interface == "wg-h1" and tunnel.address == IPv4Interface("10.1.0.2/24")
    assert [p.allowed_ips[0] for p in tunnel.peers] == [
        IPv4Network("10.1.0.3/32"), IPv4Network("10.1.0.4/32"), IPv4Network("10.1.0.5/32")]
    assert h1.bgp is None  # mesh: hubs only forward


def test_two_hubs_hub_mode_one_session_per_hub():
    plans = compile_topology(load(topo(2, "hub", hubs=2)))
    n1 = plans["n1"].bgp
    assert [(s.peer, str(s.peer_address), s.local_pref, s.bfd) for s in n1.sessions] == [
        ("vps", "10.0.0.1", 100, True), ("h1", "10.1.0.2", 90, True)]
    assert [str(s.peer_address) for s in plans["h1"].bgp.sessions] == ["10.1.0.3", "10.1.0.4"]
    assert plans["h1"].bgp.bfd is not None


def test_preference_and_bfd_settings_reach_the_plan():
    d = topo(2, hubs=2, bfd={"enabled": True, "interval": 200, "multiplier": 5})
    d["hubs"]["h1"]["preference"] = 300
    n1 = compile_topology(load(d))["n1"].bgp
    assert [s.local_pref for s in n1.sessions] == [100, 300]
    assert (n1.bfd.interval_ms, n1.bfd.multiplier) == (200, 5)
    d["network"]["bfd"] = False
    assert compile_topology(load(d))["n1"].bgp.bfd is None


def test_session_count():
    assert session_count(load(topo(4))) == 6
    assert session_count(load(topo(4, hubs=2))) == 12
    assert session_count(load(topo(4, "hub"))) == 4
    assert session_count(load(topo(4, "hub", hubs=3))) == 12


@st.composite
def plane_docs(draw):
    d = draw(topology_docs(max_nodes=8, explicit_peerings=False))
    hubs = draw(st.integers(1, 3))
    prefixlen = int(d["network"]["overlay"].split("/")[1])
    for i in range(1, hubs):
        d["hubs"][f"h{i}"] = {"endpoint": f"198.51.100.{i + 1}:51820",
                              "overlay": f"172.{15 + i}.0.0/{prefixlen}",
                              "public_key": pub(f"h{i}")}
    if draw(st.booleans()):
        d["network"]["mode"] = "hub"
        for hub in d["hubs"].values():
            hub["asn"] = 4200000000  # node ASNs are 2-byte
    return d


@settings(max_examples=60, deadline=None)
@given(plane_docs())
def test_every_session_has_a_matching_other_end_on_the_same_plane(d):
    t = load(d)
    plans = compile_topology(t)
    address_of = {(t_.interface, str(t_.address.ip)): name
                  for name, p in plans.items() for t_ in p.tunnels}
    ends = set()
    for name, plan in plans.items():
        iface = {t_.interface: t_ for t_ in plan.tunnels}
        for s in (plan.bgp.sessions if plan.bgp else ()):
            mine = iface[s.interface]
            # The peer is on the same plane (interface), inside its subnet.
            assert s.peer_address in mine.address.network
            assert address_of[(s.interface, str(s.peer_address))] == s.peer
            ends.add((s.interface, name, s.peer))
    assert all((i, b, a) in ends for i, a, b in ends)
    assert len(ends) == 2 * session_count(t)
    # Addresses are unique per plane; every client is on every plane.
    assert len(address_of) == sum(len(p.tunnels) for p in plans.values())
    for name in t.nodes:
        assert len(plans[name].tunnels) == len(t.hubs)
