"""Render: Plan -> file text. What each file must say, and that it says exactly the Plan."""

from __future__ import annotations

import re
from ipaddress import IPv4Network

from confparse import frr, wg_quick
from hypothesis import given

from topogen import doc, keypair, load, pub, topology_docs
from wgbgp.compile import compile_topology
from wgbgp.render import (
    RenderedFile,
    render_frr,
    render_machine,
    render_nftables,
    render_sysctl,
    render_wireguard,
)


def plans(d=None):
    if d is None:
        d = doc(2)
        d["nodes"]["n1"]["announce"] = ["100.100.100.1/32", "192.168.10.0/24"]
    return compile_topology(load(d))


def test_machine_files_and_modes():
    p = plans()
    hub = render_machine(p["vps"])
    assert [(f.path, f.mode, f.kind) for f in hub] == [
        ("/etc/wireguard/wg-vps.conf", 0o600, "wireguard"),
        ("/etc/sysctl.d/90-wgbgp.conf", 0o644, "sysctl"),
        ("/etc/wgbgp/nftables.nft", 0o644, "nftables"),
    ]
    client = render_machine(p["n1"])
    assert [(f.path, f.mode, f.kind) for f in client] == [
        ("/etc/wireguard/wg-vps.conf", 0o600, "wireguard"),
        ("/etc/frr/frr.conf", 0o640, "frr"),
        ("/etc/sysctl.d/90-wgbgp.conf", 0o644, "sysctl"),
        ("/etc/wgbgp/nftables.nft", 0o644, "nftables"),  # it routes a LAN: MSS clamp
    ]
    assert all(f.text.endswith("\n") and "\n\n\n" not in f.text for f in hub + client)


def test_secret_flag():
    assert RenderedFile("x", "", 0o600).secret
    assert not RenderedFile("x", "", 0o640).secret


def test_hub_wireguard():
    text = render_wireguard(plans()["vps"], plans()["vps"].tunnels[0]).text
    (iface, body), *peers = wg_quick(text)
    assert iface == "Interface"
    assert body == {"Address": "10.0.0.1/24", "MTU": "1420", "ListenPort": "51820",
                    "PostUp": "wg set %i private-key /etc/wgbgp/keys/vps.key"}
    assert peers == [
        ("Peer", {"PublicKey": pub("n1"),
                  "AllowedIPs": "10.0.0.2/32, 100.100.100.1/32, 192.168.10.0/24"}),
        ("Peer", {"PublicKey": pub("n2"), "AllowedIPs": "10.0.0.3/32, 100.64.2.0/24"}),
    ]
    assert "# n1\n" in text  # peers are named for the people reading it


def test_client_wireguard():
    p = plans()["n2"]
    sections = wg_quick(render_wireguard(p, p.tunnels[0]).text)
    assert sections == [
        # The key first, then the keepalive restarted: a valid first handshake at once.
        ("Interface", {"Address": "10.0.0.3/24", "MTU": "1420", "Table": "off",
                       "PostUp": "wg set %i private-key /etc/wgbgp/keys/n2.key"
                       f" && wg set %i peer {pub('vps')} persistent-keepalive 0"
                       f" && wg set %i peer {pub('vps')} persistent-keepalive 25"}),
        ("Peer", {"PublicKey": pub("vps"), "AllowedIPs": "0.0.0.0/0, ::/0",
                  "Endpoint": "203.0.113.10:51820", "PersistentKeepalive": "25"}),
    ]


def test_private_key_inlined_replaces_postup():
    p = plans()["n1"]
    private, _ = keypair("n1")
    f = render_wireguard(p, p.tunnels[0], private)
    (_, body), *_ = wg_quick(f.text)
    assert body["PrivateKey"] == private and "PostUp" not in body
    assert f.mode == 0o600 and f.secret
    assert render_machine(p, private)[0].text == f.text
    # Only the WireGuard file holds it.
    assert all(private not in g.text for g in render_machine(p, private)[1:])


def test_frr_client():
    text = render_frr(plans()["n1"]).text
    got = frr(text)
    assert got["asn"] == 65001 and got["router_id"] == "10.0.0.2"
    assert got["statics"] == got["networks"] == ["100.100.100.1/32", "192.168.10.0/24"]
    assert got["prefix_lists"] == {
        "OWN": [(5, "permit", "100.100.100.1/32"), (10, "permit", "192.168.10.0/24")],
        "FROM-n2": [(5, "permit", "100.64.2.0/24")],
        "NEVER": [(5, "permit", "0.0.0.0/0"), (10, "permit", "10.0.0.0/24 le 32"),
                  (15, "permit", "100.100.100.1/32"), (20, "permit", "192.168.10.0/24 le 32")],
    }
    assert got["route_maps"] == {"in": {"MESH": "IMPORT"}}
    assert got["max_prefix"] == {"10.0.0.3": (11, 5)}
    assert "passwords" not in got
    assert got["neighbors"] == {"10.0.0.3": {"asn": 65002, "group": "MESH",
                                             "description": "n2"}}
    assert got["group"]["ebgp-multihop"] == "2"
    assert got["in"] == {"10.0.0.3": "FROM-n2"}
    assert got["out"] == {"MESH": "OWN"}
    assert text.startswith("! FRRouting config of n1")
    assert "frr defaults traditional\n" in text


def test_frr_without_prefixes_denies_everything():
    d = doc(2)
    del d["nodes"]["n1"]["announce"]
    p = compile_topology(load(d))
    got1 = frr(render_frr(p["n1"]).text)
    assert got1["prefix_lists"]["OWN"] == [(5, "deny", "any")]
    assert got1["statics"] == got1["networks"] == []
    got2 = frr(render_frr(p["n2"]).text)
    assert got2["prefix_lists"]["FROM-n1"] == [(5, "deny", "any")]


def test_frr_not_for_a_mesh_hub():
    assert render_frr(plans()["vps"]) is None


def test_nftables_policy_on_the_hub_clamp_on_forwarding_clients():
    d = doc(2)
    d["nodes"]["n1"]["announce"] = ["100.100.100.1/32", "192.168.10.0/24"]
    d["nodes"]["n2"]["announce"] = ["100.100.100.2/32"]  # only itself: forwards nothing
    p = plans(d)
    assert not p["n2"].ip_forward and render_nftables(p["n2"]) is None
    text = render_nftables(p["vps"]).text
    assert re.search(r'iifname "wg-vps" oifname "wg-vps" (counter )?accept', text)
    assert "table inet wgbgp" in text and "delete table inet wgbgp" in text
    assert "hook forward" in text
    clamp = 'oifname "wg-vps" tcp flags syn tcp option maxseg size set rt mtu'
    # The clamp comes before the first verdict of the forward chain.
    forward = text.split("chain forward", 1)[1]
    assert clamp in forward and forward.index(clamp) < forward.index("accept\n")
    client = render_nftables(p["n1"]).text
    assert clamp in client and "drop" not in client and "policy accept" in client


def test_sysctl():
    p = plans()
    hub = render_sysctl(p["vps"]).text
    assert "net.ipv4.ip_forward = 1" in hub and "send_redirects = 0" in hub
    assert "net.ipv4.ip_forward = 1" in render_sysctl(p["n1"]).text  # routes a LAN
    d = doc(2)
    d["nodes"]["n2"]["announce"] = ["100.100.100.2/32"]
    lone = compile_topology(load(d))["n2"]
    assert "ip_forward" not in render_sysctl(lone).text             # one /32: no need


def test_rendering_is_pure_and_repeatable():
    p = plans()
    assert render_machine(p["n1"]) == render_machine(p["n1"])


@given(topology_docs())
def test_wireguard_says_exactly_the_plan(d):
    topology = load(d)
    for plan in compile_topology(topology).values():
        (tunnel,) = plan.tunnels
        (_, body), *peers = wg_quick(render_wireguard(plan, tunnel).text)
        assert body["Address"] == str(tunnel.address)
        assert body["MTU"] == str(topology.network.mtu)
        assert ("ListenPort" in body) == (plan.role == "hub")
        assert (body.get("Table") == "off") == (plan.role == "client")
        restart = "".join(f" && wg set %i peer {p.public_key} persistent-keepalive 0"
                          f" && wg set %i peer {p.public_key} persistent-keepalive {p.keepalive}"
                          for p in tunnel.peers if p.keepalive and p.endpoint)
        assert body["PostUp"] == f"wg set %i private-key {plan.key_file}{restart}"
        assert len(peers) == len(tunnel.peers)
        for (section, got), peer in zip(peers, tunnel.peers, strict=True):
            assert section == "Peer"
            assert got["PublicKey"] == peer.public_key == pub(peer.name)
            assert got["AllowedIPs"].split(", ") == [str(a) for a in peer.allowed_ips]
            assert got.get("Endpoint") == peer.endpoint
            assert got.get("PersistentKeepalive") == (str(peer.keepalive)
                                                      if peer.keepalive else None)


@given(topology_docs())
def test_frr_says_exactly_the_plan(d):
    topology = load(d)
    for name, plan in compile_topology(topology).items():
        if plan.bgp is None:
            assert plan.role == "hub"
            continue
        got = frr(render_frr(plan).text)
        bgp = plan.bgp
        own = [str(p) for p in bgp.originate]
        assert got["asn"] == bgp.asn == topology.nodes[name].asn
        assert got["router_id"] == str(bgp.router_id)
        assert got["statics"] == got["networks"] == own
        assert [e[2] for e in got["prefix_lists"]["OWN"]] == (own or ["any"])
        assert set(got["neighbors"]) == {str(s.peer_address) for s in bgp.sessions}
        # RFC 8212: every neighbour has policy in (its own list) and out (via the group).
        assert got["out"] == {"MESH": "OWN"}
        for s in bgp.sessions:
            n = got["neighbors"][str(s.peer_address)]
            assert n == {"asn": s.peer_asn, "group": "MESH", "description": s.peer}
            plist = got["in"][str(s.peer_address)]
            assert plist == f"FROM-{s.peer}"
            accepted = [e[2] for e in got["prefix_lists"][plist] if e[1] == "permit"]
            assert accepted == [str(p) for p in s.accept]
            assert [IPv4Network(p) for p in accepted] == list(
                topology.nodes[s.peer].announce)
        assert got["group"]["ebgp-multihop"] == "2"
