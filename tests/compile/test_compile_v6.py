"""IPv6 overlays: allocation, the ULA default, router IDs, sessions per family."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_network

import pytest

from topogen import doc, load, text
from wgbgp.compile import compile_topology
from wgbgp.model import TopologyError, parse
from wgbgp.model.addressing import allocate, allocate6, overlay6, router_ids, ula_overlay


def v6doc(nodes: int = 2, *, v4: bool = True, overlay6: str = "fd00:42::/64") -> dict:
    d = doc(nodes)
    d["network"]["overlay6"] = overlay6
    if not v4:
        del d["network"]["overlay"]
    for i, node in enumerate(d["nodes"].values(), 1):
        node["announce"] = ([*node["announce"]] if v4 else []) + [f"2001:db8:{i}::/48"]
    return d


def test_ula_is_deterministic_rfc4193_and_per_name():
    a = ula_overlay("friends")
    assert a == ula_overlay("friends") and a.prefixlen == 64
    assert a.subnet_of(IPv6Network("fd00::/8"))
    assert a != ula_overlay("others")


def test_auto_overlay6_uses_the_ula():
    t = load(v6doc(overlay6="auto"))
    assert overlay6(t) == ula_overlay("test")
    assert allocate6(t)["vps"] == ula_overlay("test")[1]


def test_ipv6_announce_without_overlay6_implies_the_ula_with_a_warning():
    d = doc(2)
    d["nodes"]["n1"]["announce"].append("2001:db8:1::/48")
    t, warnings = parse(text(d), "t.yaml")
    assert overlay6(t) == ula_overlay("test")
    assert any("no overlay6" in w.message for w in warnings)


def test_allocation_hubs_first_pinned_kept():
    d = v6doc(3)
    d["nodes"]["n2"]["address6"] = "fd00:42::99"
    got = allocate6(load(d))
    assert got == {"vps": IPv6Address("fd00:42::1"), "n1": IPv6Address("fd00:42::2"),
                   "n2": IPv6Address("fd00:42::99"), "n3": IPv6Address("fd00:42::3")}


def test_ipv6_only_router_ids_from_low_32_bits():
    t = load(v6doc(3, v4=False))
    assert allocate(t) == {}
    assert router_ids(t) == {"n1": IPv4Address("0.0.0.2"), "n2": IPv4Address("0.0.0.3"),
                             "n3": IPv4Address("0.0.0.4")}


def test_ipv6_only_router_id_clash_is_an_error():
    d = v6doc(2, v4=False)
    d["nodes"]["n1"]["address6"] = "fd00:42::1:0:0:5"
    d["nodes"]["n2"]["address6"] = "fd00:42::2:0:0:5"
    with pytest.raises(TopologyError) as exc:
        parse(text(d), "t.yaml")
    assert any("router ID" in i.message and i.field == "nodes.n2.address6"
               for i in exc.value.issues)


def test_no_overlay_at_all_is_an_error():
    d = doc(2)
    del d["network"]["overlay"]
    with pytest.raises(TopologyError) as exc:
        parse(text(d), "t.yaml")
    assert any("no overlay" in i.message for i in exc.value.issues)


def test_dual_stack_sessions_per_family():
    plans = compile_topology(load(v6doc(3)))
    n1 = plans["n1"].bgp
    by = {(s.peer, s.afi): s for s in n1.sessions}
    assert set(by) == {("n2", "ipv4"), ("n3", "ipv4"), ("n2", "ipv6"), ("n3", "ipv6")}
    assert str(by["n2", "ipv6"].peer_address) == "fd00:42::3"
    assert str(by["n2", "ipv6"].local_address) == "fd00:42::2"
    assert by["n2", "ipv6"].accept == (ip_network("2001:db8:2::/48"),)
    assert by["n2", "ipv4"].accept == (ip_network("100.64.2.0/24"),)
    assert n1.router_id == IPv4Address("10.0.0.2")
    hub = plans["vps"].tunnels[0]
    assert [str(a) for a in hub.addresses] == ["10.0.0.1/24", "fd00:42::1/64"]
    assert [str(p) for p in hub.peers[0].allowed_ips] == [
        "10.0.0.2/32", "fd00:42::2/128", "100.64.1.0/24", "2001:db8:1::/48"]


def test_ipv6_only_plan():
    plans = compile_topology(load(v6doc(2, v4=False)))
    t = plans["n1"].tunnels[0]
    assert t.address is None and str(t.address6) == "fd00:42::2/64"
    assert [s.afi for s in plans["n1"].bgp.sessions] == ["ipv6"]
    # A /48 behind the node: it must forward (IPv6 too).
    assert plans["n1"].ip_forward


def test_old_files_stay_valid_and_unchanged():
    """An IPv4-only topology compiles exactly as before: no IPv6 anywhere."""
    plans = compile_topology(load(doc(2)))
    assert all(t.address6 is None for p in plans.values() for t in p.tunnels)
    assert all(s.afi == "ipv4" for s in plans["n1"].bgp.sessions)
    assert plans["n1"].bgp.daemon == "frr"
