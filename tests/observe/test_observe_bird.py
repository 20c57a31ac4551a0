"""BIRD's text output (fixtures: real BIRD 2.0.12 output from a lab BIRD node) -> the
same objects FRR's JSON becomes; and FRR's summary with IPv6 sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from wgbgp.observe import Snapshot, bird, status_from_snapshot
from wgbgp.observe.frr import parse_neighbors
from wgbgp.transport import CommandResult

FIX = Path(__file__).parent / "fixtures" / "bird"


def read(name: str) -> str:
    return (FIX / name).read_text()


def test_established_protocols():
    protocols = bird.parse_protocols(read("protocols_all_established.txt"))
    names = [p.name for p in protocols]
    assert {"laptop_v4", "friend_v4", "laptop_v6", "friend_v6"} <= set(names)
    by = {p.name: p for p in protocols}
    assert by["laptop_v6"].fields["Neighbor address"] == "fd42:42:42::2"
    assert by["laptop_v6"].channels["ipv6"]["Output filter"] == "export_own6"
    now = bird.parse_server_time(read("status.txt"))
    neighbours = {n.address: n for n in bird.neighbors(protocols, now)}
    assert set(neighbours) == {"10.42.0.2", "10.42.0.3", "fd42:42:42::2", "fd42:42:42::3"}
    n = neighbours["fd42:42:42::2"]
    assert n.established and n.remote_as == 65010 and n.local_as == 65030
    assert n.name == "laptop" and n.prefixes_received == 1 and n.prefixes_sent == 1
    assert n.policy_in and n.policy_out and n.filters_out == ("filter export_own6",)
    assert n.established_for is not None and n.established_for >= 0
    assert bird.local_as(protocols) == 65030
    assert bird.parse_router_id(read("status.txt")) == "10.42.0.4"


def test_sessions_not_up():
    neighbours = bird.neighbors(bird.parse_protocols(read("protocols_all_active.txt")))
    assert [(n.address, n.state) for n in neighbours] == [("127.0.0.2", "Active"),
                                                          ("::1", "Active")]
    assert all(n.prefixes_received is None and n.established_for is None for n in neighbours)
    # Import all / export all: no policy, as doctor's RFC 8212 check wants to know.
    assert all(n.policy_in is False and n.policy_out is False for n in neighbours)


def test_routes_attributed_to_neighbours():
    protocols = bird.parse_protocols(read("protocols_all_established.txt"))
    paths = bird.parse_routes(read("route.txt"), bird.protocol_names(protocols))
    by = {p.prefix: p for p in paths}
    assert by["2001:db8:1::/48"].peer == "fd42:42:42::2" and by["2001:db8:1::/48"].best
    assert by["100.100.100.2/32"].peer == "10.42.0.3"
    assert by["100.100.100.2/32"].as_path == "65020"
    assert by["100.100.100.3/32"].peer is None  # our own, from the static protocol


def test_not_bird_output_is_an_error():
    with pytest.raises(bird.BirdOutputError):
        bird.parse_protocols("Unable to connect to server control socket (/run/bird/bird.ctl)")


def test_uptime_wraps_midnight():
    assert bird.uptime("23:59:50.000", "2026-01-02 00:00:10.000") == 20


def test_status_of_a_bird_node_from_a_snapshot():
    def out(argv, text, rc=0):
        return CommandResult(tuple(argv), rc, text, "")
    snap = Snapshot("builder", 0, {
        "bird_status": out(["birdc", "show", "status"], read("status.txt")),
        "bird_protocols": out(["birdc"], read("protocols_all_established.txt")),
        "bird_routes": out(["birdc"], read("route.txt")),
        "bird_kernel4": out(["ip"], '[{"dst":"100.100.100.1","dev":"wg-vps","protocol":"bird"}]'),
        "bird_kernel6": out(["ip"], '[{"dst":"2001:db8:1::/48","dev":"wg-vps"}]'),
    })
    status = status_from_snapshot(snap)
    assert not status.errors
    assert status.bgp.asn == 65030 and status.bgp.router_id == "10.42.0.4"
    assert len(status.bgp.neighbors) == 4
    assert {r.prefix for r in status.bgp.routes} == {"100.100.100.1/32", "2001:db8:1::/48"}
    down = status_from_snapshot(Snapshot("builder", 0, {"bird_status": out(
        ["birdc"], "Unable to connect to server control socket (/run/bird/bird.ctl): "
        "No such file or directory", 1)}))
    assert down.bgp is None and down.bgp_down and "bgp" in down.errors


def test_frr_summary_with_ipv6_sessions():
    router_id, asn, neighbours = parse_neighbors(read("frr_dualstack_summary.json"))
    assert router_id == "10.42.0.2" and asn == 65010
    assert [n.address for n in neighbours] == ["10.42.0.3", "10.42.0.4", "fd42:42:42::3",
                                               "fd42:42:42::4"]
    assert all(n.established for n in neighbours)
