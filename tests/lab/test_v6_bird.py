"""End to end, dual stack with a BIRD node among FRR nodes (issue 8), on real namespaces
with wireguard-go, FRR 8.4 and BIRD 2.

One lab for the module: hub `vps`, FRR clients `laptop` and `friend`, BIRD client
`builder`; IPv4 and IPv6 overlay, each client announcing one IPv4 and one IPv6 prefix.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wgbgp.apply import apply_machine
from wgbgp.compile import compile_topology
from wgbgp.lab.build import open_lab
from wgbgp.lab.runner import convergence, kernel_routes, up, wait_converged
from wgbgp.lab.selftest import run_selftest
from wgbgp.lab.state import teardown
from wgbgp.model import parse
from wgbgp.observe.bird import neighbors, parse_protocols
from wgbgp.observe.status import collect
from wgbgp.render import render_machine

pytestmark = pytest.mark.lab("wireguard", "frr", "bird")

TOPOLOGY = """\
network: {name: mixed, overlay: 10.42.0.0/24, overlay6: 'fd42:42:42::/64'}
hubs:
  vps: {endpoint: '203.0.113.10:51820'}
nodes:
  laptop: {asn: 65010, announce: [100.100.100.1/32, '2001:db8:1::/48']}
  friend: {asn: 65020, announce: [100.100.100.2/32, '2001:db8:2::/48']}
  builder: {asn: 65030, daemon: bird, announce: [100.100.100.3/32, '2001:db8:3::/48']}
"""




def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 100000}"


class Net:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lab = open_lab(name)
        self.x = {n: m.executor() for n, m in self.lab.machines.items()}
        path = f"/run/wgbgp/{name}/topology.yaml"
        self.topology, _ = parse(Path(path).read_text(), path)
        self.plans = compile_topology(self.topology)

    def run(self, machine: str, *argv: str) -> str:
        return self.x[machine].run(list(argv), check=False, timeout=30).stdout

    def bird_protocols(self) -> dict:
        return {p.name: p for p in parse_protocols(self.run("builder", "birdc", "show",
                                                            "protocols", "all"))}


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    name = unique("v6b")
    topology, _ = parse(TOPOLOGY, "mixed.yaml")
    try:
        up(topology, name=name, timeout=60)
        yield Net(name)
    finally:
        teardown(name)


def test_every_session_established_every_prefix_reachable(net: Net) -> None:
    results = run_selftest(net.lab)
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    c = convergence(net.x, net.plans)
    # 3 clients, 3 pairs, 2 families: 12 session ends, 12 prefixes installed.
    assert (c.sessions_up, c.sessions, c.prefixes_in, c.prefixes) == (12, 12, 12, 12)
    # The BIRD node reaches every FRR node's IPv4 and IPv6 prefixes, and they reach it.
    for dst in ("100.100.100.1", "2001:db8:1::1", "100.100.100.2", "2001:db8:2::1"):
        src = "2001:db8:3::1" if ":" in dst else "100.100.100.3"
        assert net.x["builder"].run(["ping", "-c", "1", "-W", "2", "-I", src, dst],
                                    check=False).ok, dst


def test_sessions_per_family_between_tunnel_addresses(net: Net) -> None:
    protocols = net.bird_protocols()
    assert {n: p.fields["BGP state"] for n, p in protocols.items() if p.proto == "BGP"} == {
        "laptop_v4": "Established", "friend_v4": "Established",
        "laptop_v6": "Established", "friend_v6": "Established"}
    assert protocols["laptop_v6"].fields["Neighbor address"] == "fd42:42:42::2"
    assert list(protocols["laptop_v6"].channels) == ["ipv6"]
    assert list(protocols["laptop_v4"].channels) == ["ipv4"]
    # Next hops are tunnel addresses of the route's own family, on both daemons.
    routes6 = net.run("laptop", "ip", "-6", "route", "show", "2001:db8:3::/48")
    assert "wg-vps" in routes6 and "proto bgp" in routes6
    assert "dev wg-vps" in net.run("builder", "ip", "-6", "route", "show", "2001:db8:1::/48")


def test_status_shows_the_bird_node_like_the_others(net: Net) -> None:
    bird = collect(net.x["builder"], net.plans["builder"])
    frr = collect(net.x["laptop"], net.plans["laptop"])
    assert not bird.errors, bird.errors
    for status, asn in ((bird, 65030), (frr, 65010)):
        assert status.bgp.asn == asn
        assert len(status.bgp.neighbors) == 4
        assert all(n.established and n.prefixes_received == 1 for n in status.bgp.neighbors)
        assert {r.prefix for r in status.bgp.routes if r.installed} >= {
            p for p in ("100.100.100.1/32", "100.100.100.2/32", "100.100.100.3/32",
                        "2001:db8:1::/48", "2001:db8:2::/48", "2001:db8:3::/48")
            if not any(str(o) == p for o in net.plans[status.machine].bgp.originate)}
    assert bird.bgp.router_id == "10.42.0.4"
    assert {n.name for n in bird.bgp.neighbors} == {"laptop", "friend"}
    assert all(n.established_for is not None and n.established_for >= 0
               for n in bird.bgp.neighbors)
    addrs = {str(a) for a in bird.addresses_on("wg-vps")}
    assert addrs == {"10.42.0.4/24", "fd42:42:42::4/64"}


def test_reapply_is_a_noop_and_a_change_reloads_without_resetting_sessions(net: Net) -> None:
    files = render_machine(net.plans["builder"])
    again = apply_machine(net.x["builder"], files, enable_at_boot=False)
    assert again.ok and not again.changed, again.summary()
    before = {n: p.since for n, p in net.bird_protocols().items() if p.proto == "BGP"}
    # builder announces one more prefix per family: every machine gets new configs.
    text = TOPOLOGY.replace("'2001:db8:3::/48']", "'2001:db8:3::/48', 100.100.103.0/24, "
                            "'2001:db8:33::/48']")
    topology, _ = parse(text, "mixed.yaml")
    keys = {n: m.public_key for n, m in (*net.topology.hubs.items(),
                                         *net.topology.nodes.items())}
    topology = topology.model_copy(update={
        "hubs": {n: h.model_copy(update={"public_key": keys[n], "endpoint":
                                         net.topology.hubs[n].endpoint})
                 for n, h in topology.hubs.items()},
        "nodes": {n: m.model_copy(update={"public_key": keys[n]})
                  for n, m in topology.nodes.items()}})
    plans = compile_topology(topology)
    results = {n: apply_machine(net.x[n], render_machine(plans[n]), enable_at_boot=False)
               for n in ("vps", "laptop", "friend", "builder")}
    assert all(r.ok for r in results.values()), [r.summary() for r in results.values()]
    actions = [s.action for s in results["builder"].steps]
    assert "bird-reload" in actions and "bird-start" not in actions, actions
    wait_converged(net.x, plans, timeout=30)
    after = {n: p.since for n, p in net.bird_protocols().items() if p.proto == "BGP"}
    assert after == before  # no BGP session of the BIRD node was restarted
    assert "100.100.103.0/24" in kernel_routes(net.x["laptop"], "bgp")
    assert "2001:db8:33::/48" in kernel_routes(net.x["friend"], "bgp")
    net.plans = plans


def test_bird_node_rejects_what_a_hostile_frr_node_announces(net: Net) -> None:
    """Issue 6's hostile announcements, received by the BIRD node: another's prefix, a
    more-specific of it, a default route, the overlay -- in both families."""
    hostile = {
        4: ["100.100.100.2/32", "100.100.100.3/32", "100.100.100.0/28", "0.0.0.0/0",
            "10.42.0.0/24"],
        6: ["2001:db8:2::/48", "2001:db8:3::/48", "2001:db8:3:1::/64", "::/0",
            "fd42:42:42::/64"],
    }
    cmds = []
    for v, prefixes in hostile.items():
        ip = "ip" if v == 4 else "ipv6"
        af = "ipv4" if v == 4 else "ipv6"
        own = "OWN" if v == 4 else "OWN6"
        cmds += [f"{ip} route {p} blackhole 250" for p in prefixes]
        cmds += [f"{ip} prefix-list {own} seq {100 + i} permit {p}"
                 for i, p in enumerate(prefixes)]
        cmds += ["router bgp 65010", f"address-family {af} unicast",
                 *(f"network {p}" for p in prefixes), "exit-address-family", "exit"]
    argv = ["vtysh", "-c", "configure terminal"]
    for c in cmds:
        argv += ["-c", c]
    assert net.x["laptop"].run(argv, check=False).ok
    deadline = time.monotonic() + 30
    while True:
        filtered = [_filtered(net, proto) for proto in ("laptop_v4", "laptop_v6")]
        if all(f >= 5 for f in filtered) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # laptop really sent all ten, and BIRD's import filters rejected every one.
    assert all(f >= 5 for f in filtered), filtered
    learnt = net.run("builder", "birdc", "show", "route", "protocol", "laptop_v4")
    learnt += net.run("builder", "birdc", "show", "route", "protocol", "laptop_v6")
    got = set(re.findall(r"^(\S+/\d+)\s", learnt, re.M))
    assert got == {"100.100.100.1/32", "2001:db8:1::/48"}, got
    # Its kernel has only the declared routes; traffic still goes to the rightful owner.
    routes = kernel_routes(net.x["builder"], "bird")
    assert not routes & {"0.0.0.0/0", "::/0", "100.100.100.0/28", "2001:db8:3:1::/64"}
    assert net.x["builder"].run(["ping", "-c", "1", "-W", "2", "-I", "2001:db8:3::1",
                                 "2001:db8:2::1"], check=False).ok
    out = net.run("builder", "ip", "-6", "route", "get", "2001:db8:2::1")
    assert "wg-vps" in out
    # The sessions stay up: rejecting is not a reason to tear a session down.
    states = [n.state for n in neighbors(parse_protocols(
        net.run("builder", "birdc", "show", "protocols", "all")))]
    assert states == ["Established"] * 4


def _filtered(net: Net, proto: str) -> int:
    """How many of a BIRD protocol's received updates its import filter rejected."""
    text = net.run("builder", "birdc", "show", "protocols", "all", proto)
    m = re.search(r"Import updates:\s+(\d+)\s+(\d+)\s+(\d+)", text)
    return int(m.group(3)) if m else -1
