"""Render: hub mode (route server), several hubs (plane preference) and BFD (issue 7)."""

from __future__ import annotations

import re
import subprocess

import pytest

from topogen import load, pub, topo
from wgbgp.compile import compile_topology
from wgbgp.render import render_frr, render_machine


def frr_text(d: dict, machine: str) -> str:
    return render_frr(compile_topology(load(d))[machine]).text


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if not line.lstrip().startswith("!")]


def test_route_server_config():
    text = frr_text(topo(3, "hub"), "vps")
    got = lines(text)
    assert "router bgp 64600" in got and "bgp router-id 10.0.0.1" in got
    # RFC 7947 behaviour for every client, through the peer-group.
    assert "neighbor CLIENTS route-server-client" in got
    assert "neighbor CLIENTS route-map RS-OUT out" in got
    assert "route-map RS-OUT permit 10" in got
    # Directly connected over the tunnel: no multihop.
    assert not any("ebgp-multihop" in line for line in got)
    # Per-client import policy: each client's own prefixes only, per neighbour.
    for i in (1, 2, 3):
        addr = f"10.0.0.{i + 1}"
        assert f"neighbor {addr} remote-as {65000 + i}" in got
        assert f"neighbor {addr} prefix-list FROM-n{i} in" in got
        assert [line for line in got if line.startswith(f"ip prefix-list FROM-n{i} ")] == [
            f"ip prefix-list FROM-n{i} seq 5 permit 100.64.{i}.0/24"]
    # It originates nothing: no export list, no statics.
    assert not any("OWN" in line or "blackhole" in line for line in got)
    # Never a default or an overlay, and each client cut off past its limit.
    assert "neighbor CLIENTS route-map IMPORT in" in got
    assert "ip prefix-list NEVER seq 10 permit 10.0.0.0/24 le 32" in got
    assert "neighbor 10.0.0.2 maximum-prefix 11 restart 5" in got
    assert "bfd" not in text  # one hub: no BFD unless asked


def test_hub_mode_client_config():
    got = lines(frr_text(topo(3, "hub"), "n2"))
    assert "neighbor HUBS peer-group" in got
    assert "neighbor 10.0.0.1 remote-as 64600" in got
    assert "neighbor 10.0.0.1 peer-group HUBS" in got
    assert "neighbor HUBS prefix-list OWN out" in got
    assert "neighbor 10.0.0.1 prefix-list FROM-HUBS in" in got
    assert [line for line in got if line.startswith("ip prefix-list FROM-HUBS")] == [
        "ip prefix-list FROM-HUBS seq 5 permit 100.64.1.0/24",
        "ip prefix-list FROM-HUBS seq 10 permit 100.64.3.0/24"]
    assert not any("ebgp-multihop" in line or "local-preference" in line for line in got)
    assert "neighbor HUBS route-map IMPORT in" in got


def test_hub_mode_hub_wireguard_leaves_routes_to_bgp():
    files = render_machine(compile_topology(load(topo(2, "hub")))["vps"])
    assert [f.kind for f in files] == ["wireguard", "frr", "sysctl", "nftables"]
    assert "Table = off" in files[0].text


def test_mesh_single_hub_output_has_no_plane_or_bfd_lines():
    text = frr_text(topo(3), "n1")
    assert "local-preference" not in text and "bfd" not in text and "route-server" not in text
    assert "IMPORT-" not in text and "neighbor MESH route-map IMPORT in" in text
    assert "neighbor MESH ebgp-multihop 2" in text


def test_two_hubs_mesh_prefers_the_first_plane_and_runs_bfd():
    text = frr_text(topo(2, hubs=2), "n1")
    got = lines(text)
    # One IMPORT map per plane: the shared NEVER filter, then the plane's local-pref.
    for iface, pref in (("wg-vps", 100), ("wg-h1", 90)):
        i = got.index(f"route-map IMPORT-{iface} deny 5")
        assert got[i:i + 5] == ["route-map IMPORT-" + iface + " deny 5",
                                "match ip address prefix-list NEVER", "exit",
                                f"route-map IMPORT-{iface} permit 10",
                                f"set local-preference {pref}"]
    assert "neighbor 10.0.0.4 route-map IMPORT-wg-vps in" in got
    assert "neighbor 10.1.0.4 route-map IMPORT-wg-h1 in" in got
    assert "neighbor MESH route-map IMPORT in" not in got  # per neighbour instead
    # Neither plane's overlay is ever accepted.
    assert "ip prefix-list NEVER seq 10 permit 10.0.0.0/24 le 32" in got
    assert "ip prefix-list NEVER seq 15 permit 10.1.0.0/24 le 32" in got
    # Both sessions to n2 share one import list.
    assert "neighbor 10.0.0.4 prefix-list FROM-n2 in" in got
    assert "neighbor 10.1.0.4 prefix-list FROM-n2 in" in got
    assert len([line for line in got if line.startswith("ip prefix-list FROM-n2 ")]) == 1
    # BFD: one profile, used by the whole peer-group (multihop BFD: the sessions are). Its
    # timers are FRR's defaults, which FRR never shows: left out, so a reload has nothing
    # to set again.
    bfd = re.search(r"^bfd\n(.*?)^exit", text, re.M | re.S).group(1)
    assert lines(bfd) == ["profile wgbgp", "exit"]
    # `bfd` itself, as FRR shows it: a reload that found it missing would remove BFD, and
    # with it reset every session.
    assert "neighbor MESH bfd" in got and "neighbor MESH bfd profile wgbgp" in got
    assert "neighbor MESH ebgp-multihop 2" in got
    assert "wgbgp-bird" not in text  # no BIRD neighbour


@pytest.mark.parametrize("mode", ["mesh", "hub"])
def test_bfd_with_bird_neighbours_through_a_hub_accepts_their_ttl(mode):
    """BIRD sends multihop BFD with TTL 64; FRR wants 254 unless told otherwise. Only the
    sessions with BIRD nodes through a hub get the lower minimum; single-hop BFD (hub
    mode, where BIRD sends 255) and FRR-to-FRR sessions keep FRR's default."""
    plans = compile_topology(load(dual_stack(mode)))
    text = frr_text(dual_stack(mode), "n1")
    got = lines(text)
    if mode == "hub":
        assert "wgbgp-bird" not in text
        assert "wgbgp-bird" not in render_frr(plans["vps"]).text
        return
    profile = re.search(r"^ profile wgbgp-bird\n(.*?)^ exit", text, re.M | re.S).group(1)
    assert lines(profile) == ["minimum-ttl 63"]
    bird_peers = {str(s.peer_address) for s in plans["n1"].bgp.sessions if s.peer == "n2"}
    assert len(bird_peers) == 4  # two planes, two families
    for s in plans["n1"].bgp.sessions:
        mine = f"neighbor {s.peer_address} bfd profile wgbgp-bird"
        assert (mine in got) == (s.peer == "n2"), s.peer_address
        assert (f"neighbor {s.peer_address} bfd" in got) == (s.peer == "n2")


def test_bfd_timers_from_the_topology():
    text = frr_text(topo(2, bfd={"enabled": True, "interval": 150, "multiplier": 4}), "n1")
    assert "transmit-interval 150" in text and "receive-interval 150" in text
    assert "detect-multiplier 4" in text
    assert "local-preference" not in text  # one hub: nothing to prefer


def big_hub_mode(clients: int) -> dict:
    """`clients` clients over two hubs in hub mode, overlays /22, one /24 each."""
    d = topo(0, "hub", hubs=2, overlay="10.0.0.0/22")
    d["hubs"]["h1"]["overlay"] = "10.4.0.0/22"
    for i in range(1, clients + 1):
        d["nodes"][f"n{i}"] = {"asn": 4200000000 + i, "public_key": pub(f"n{i}"),
                               "announce": [f"100.{64 + i // 256}.{i % 256}.0/24"]}
    return d


@pytest.mark.real_tools("vtysh")
@pytest.mark.parametrize("machine", ["vps", "n7"])
def test_large_hub_mode_configs_accepted_by_vtysh(machine, tmp_path):
    """500 clients over two hubs: the route server and a client parse in FRR 8.4."""
    path = tmp_path / "frr.conf"
    path.write_text(frr_text(big_hub_mode(500), machine))
    result = subprocess.run(["vtysh", "--dryrun", "--inputfile", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "%" not in result.stdout + result.stderr, result.stdout


def test_route_server_hub_firewall_lets_bgp_and_bfd_in():
    from wgbgp.render import render_nftables
    plans = compile_topology(load(topo(2, "hub", hubs=2)))
    text = render_nftables(plans["h1"]).text
    assert 'iifname "wg-h1" tcp dport 179 accept' in text
    assert 'iifname "wg-h1" udp dport 3784 accept' in text
    mesh = render_nftables(compile_topology(load(topo(2, hubs=2)))["h1"]).text
    assert "dport 179" not in mesh and "3784" not in mesh  # BFD goes through, not to, it


def dual_stack(mode: str) -> dict:
    d = topo(3, mode, hubs=2, overlay6="auto")
    d["nodes"]["n1"]["announce"].append("2001:db8:1::/48")
    d["nodes"]["n3"]["announce"].append("2001:db8:3::1/128")
    d["nodes"]["n2"]["daemon"] = "bird"
    return d


@pytest.mark.parametrize("mode", ["mesh", "hub"])
def test_dual_stack_planes_have_both_families(mode):
    plans = compile_topology(load(dual_stack(mode)))
    # Each hub's plane has its own IPv6 subnet too (a ULA /64 of the network's /48).
    a6, b6 = (t.address6.network for t in plans["n1"].tunnels)
    assert a6 != b6 and a6.supernet(16) == b6.supernet(16)
    got = lines(render_frr(plans["n1"]).text)
    group = "HUBS" if mode == "hub" else "MESH"
    assert f"neighbor {group}6 peer-group" in got and f"neighbor {group}6 bfd profile wgbgp" in got
    assert "route-map IMPORT6-wg-h1 permit 10" in got
    if mode == "hub":
        assert "ipv6 prefix-list FROM6-HUBS seq 5 permit 2001:db8:3::1/128" in got
        hub = lines(render_frr(plans["h1"]).text)
        assert "neighbor CLIENTS6 route-server-client" in hub
        assert [line for line in hub if line.startswith("ipv6 prefix-list FROM6-n1 ")] == [
            "ipv6 prefix-list FROM6-n1 seq 5 permit 2001:db8:1::/48"]
    from wgbgp.render import render_bird
    bird = render_bird(plans["n2"]).text
    assert "bfd on;" in bird and "bgp_local_pref = 90;" in bird
    assert ("direct;" in bird) == (mode == "hub")


@pytest.mark.real_tools("vtysh", "bird")
@pytest.mark.parametrize("mode", ["mesh", "hub"])
def test_dual_stack_planes_accepted_by_vtysh_and_bird(mode, tmp_path):
    from wgbgp.render import render_bird
    plans = compile_topology(load(dual_stack(mode)))
    for name, plan in plans.items():
        for rendered, check in ((render_frr(plan), ["vtysh", "--dryrun", "--inputfile"]),
                                (render_bird(plan), ["bird", "-p", "-c"])):
            if rendered is None:
                continue
            path = tmp_path / f"{name}.conf"
            path.write_text(rendered.text)
            res = subprocess.run([*check, str(path)], capture_output=True, text=True,
                                 timeout=60)
            out = res.stdout + res.stderr
            assert res.returncode == 0 and "%" not in out, f"{name}: {out}"
