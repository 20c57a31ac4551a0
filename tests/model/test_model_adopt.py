"""Reading hand-made setups (wg-quick, FRR, BIRD) and turning them into topology entries:
what maps, what is reported as not mapped, what changes under wgbgp."""

from __future__ import annotations

import pytest

from topogen import keypair, pub
from wgbgp.model import parse
from wgbgp.model.adopt import AdoptError, adopt, merge, standalone_text
from wgbgp.model.handmade import parse_bird, parse_frr, parse_wg_quick

PRIVATE, PUBLIC = keypair("laptop")
WG0 = f"""\
[Interface]
Address = 10.0.0.10/24
PrivateKey = {PRIVATE}
MTU = 1380
SaveConfig = true

[Peer]
# vps
PublicKey = {pub("vps")}
Endpoint = 203.0.113.10:51820
AllowedIPs = 10.0.0.1/32
"""
FRR = """\
frr version 8.4
hostname laptop
router bgp 65010
 bgp router-id 10.0.0.10
 neighbor 10.0.0.2 remote-as 65020
 neighbor 10.0.0.2 description Friend's box
 neighbor 10.0.0.3 remote-as 65030
 neighbor 10.0.0.3 password s3cret
 neighbor 192.0.2.9 remote-as 65099
 redistribute connected
 address-family ipv4 unicast
  network 100.100.100.1/32
  neighbor 10.0.0.2 route-map FROM-FRIEND in
  neighbor 10.0.0.3 route-map FROM-THIRD in
 exit-address-family
exit
ip prefix-list FRIEND seq 5 permit 100.100.100.2/32
ip prefix-list FRIEND seq 10 permit 100.100.100.4/32
route-map FROM-FRIEND permit 10
 match ip address prefix-list FRIEND
exit
route-map FROM-THIRD permit 10
 match ip address prefix-list FRIEND
 set local-preference 200
exit
"""


def test_classic_recipe_maps_and_reports():
    wg = parse_wg_quick("wg0", WG0)
    assert wg.private_key == PRIVATE
    a = adopt("laptop", wg, parse_frr(FRR), PUBLIC, network="friends")
    assert a.hub_name == "vps" and a.hub == {"endpoint": "203.0.113.10:51820",
                                             "address": "10.0.0.1", "public_key": pub("vps")}
    assert a.node == {"asn": 65010, "address": "10.0.0.10", "public_key": PUBLIC,
                      "announce": ["100.100.100.1/32"]}
    assert a.network == {"name": "friends", "overlay": "10.0.0.0/24", "mtu": 1380}
    assert a.peers["friend-s-box"] == {"asn": 65020, "address": "10.0.0.2",
                                       "announce": ["100.100.100.2/32", "100.100.100.4/32"]}
    assert a.peers["third"]["announce"] == []  # its route-map sets things: not mapped
    unmapped = "\n".join(a.unmapped)
    assert "set local-preference 200" in unmapped
    assert "TCP-MD5 password" in unmapped and "s3cret" not in unmapped
    assert "192.0.2.9: outside the tunnel's subnet" in unmapped
    assert "redistribute connected" in unmapped
    assert "SaveConfig" in unmapped
    assert PRIVATE not in unmapped + "\n".join(a.changes)
    changes = "\n".join(a.changes)
    assert "allows only 10.0.0.1/32" in changes and "PersistentKeepalive" in changes
    assert "no outbound policy" in changes and "multihop 2" in changes
    text = standalone_text(a, "wg0.conf and frr.conf")
    topo = parse(text)[0]
    assert topo.nodes["laptop"].public_key == PUBLIC and topo.network.mtu == 1380


def test_secrets_are_never_repeated():
    wg = parse_wg_quick("wg0", WG0.replace("SaveConfig = true", f"PostDown = echo {PRIVATE}")
                        + "PresharedKey = " + pub("psk") + "\n")
    a = adopt("laptop", wg, None, PUBLIC)
    report = "\n".join(a.unmapped + a.changes)
    assert PRIVATE not in report and pub("psk") not in report
    assert "PresharedKey" in report and "no BGP daemon config" in report


def test_key_file_and_hub_as_route_server():
    wg = parse_wg_quick("wg-x", WG0.replace(f"PrivateKey = {PRIVATE}",
                                            "PostUp = wg set %i private-key /etc/k/l.key"))
    assert wg.private_key is None and wg.private_key_file == "/etc/k/l.key"
    frr = ("router bgp 65010\n neighbor 10.0.0.1 remote-as 65000\n"
           " address-family ipv4 unicast\n  network 100.100.100.1/32\n"
           "  neighbor 10.0.0.1 prefix-list HUB in\n exit-address-family\nexit\n"
           "ip prefix-list HUB seq 5 permit 100.100.100.0/24 le 32\n")
    a = adopt("laptop", wg, parse_frr(frr), PUBLIC)
    assert a.network["mode"] == "hub" and a.hub["asn"] == 65000 and not a.peers


def test_bird():
    bird = """\
router id 10.0.0.10;
protocol static own { ipv4; route 100.100.100.1/32 blackhole; }
protocol bgp friend {
  local 10.0.0.10 as 65010;
  neighbor 10.0.0.2 as 65020;
  multihop 2;
  ipv4 { import where net ~ [ 100.100.100.2/32 ]; export where source = RTS_STATIC; };
}
protocol bgp other {
  local as 65010;
  neighbor 10.0.0.3 as 65030;
  ipv4 { import filter mine; };
}
"""
    conf = parse_bird(bird)
    assert conf.asn == 65010 and [str(p) for p in conf.networks] == ["100.100.100.1/32"]
    a = adopt("laptop", parse_wg_quick("wg0", WG0), conf, PUBLIC)
    assert a.node["daemon"] == "bird" and a.node["announce"] == ["100.100.100.1/32"]
    assert a.peers["friend"]["announce"] == ["100.100.100.2/32"]
    assert any("import filter mine" in u for u in a.unmapped)


def test_missing_essentials():
    with pytest.raises(AdoptError, match="no \\[Peer\\] with an Endpoint"):
        adopt("n", parse_wg_quick("wg0", "[Interface]\nAddress = 10.0.0.2/24\n"), None, PUBLIC)
    with pytest.raises(AdoptError, match="no Address"):
        adopt("n", parse_wg_quick("wg0", WG0.replace("Address = 10.0.0.10/24\n", "")), None,
              PUBLIC)


EXISTING = f"""\
network: {{name: friends, overlay: 10.0.0.0/24}}
hubs:
  vps: {{endpoint: 203.0.113.10:51820, public_key: {pub("vps")}}}
nodes:
  friend:
    asn: 65020
    public_key: {pub("friend")}
    announce: [100.100.100.2/32]
"""


def test_merge_matches_hub_and_peer():
    a = adopt("laptop", parse_wg_quick("wg0", WG0), parse_frr(FRR), PUBLIC)
    topo = parse(EXISTING)[0]
    text, notes = merge(EXISTING, topo, a)
    assert text.startswith(EXISTING.split("nodes:")[0])
    merged = parse(text)[0]
    assert set(merged.hubs) == {"vps"} and "friend-s-box" not in merged.nodes
    assert "third" in merged.nodes and merged.nodes["laptop"].public_key == PUBLIC
    assert any("friend" in n for n in notes)
    with pytest.raises(AdoptError, match="overlay"):
        merge(EXISTING, parse(EXISTING.replace("10.0.0.0/24", "10.9.0.0/24"))[0], a)
    again = parse(text)[0]
    with pytest.raises(AdoptError, match="already"):
        merge(text, again, a)


def test_unknown_frr_lines_never_show_a_secret():
    conf = parse_frr("key chain k1\n key 1\n  key-string hunter2\nrouter bgp 1\n"
                     " neighbor 10.0.0.2 remote-as 2\n bmp targets x password hunter2\n")
    shown = "\n".join(conf.unknown)
    assert "hunter2" not in shown and "frr.conf: key (rest not shown)" in shown
