"""`check`'s counts: peerings (pairs of BGP speakers) and sessions (one per peering, hub's
plane and address family), against the sessions compile really makes."""

from __future__ import annotations

import pytest

from topogen import load, topo
from wgbgp.compile import compile_topology, peering_count, session_counts


def compiled(d: dict) -> tuple[dict[str, int], int]:
    """(sessions by family, peerings) counted from the plans: each session once."""
    plans = compile_topology(load(d))
    by_family = {"ipv4": 0, "ipv6": 0}
    pairs = set()
    for name, plan in plans.items():
        for s in plan.bgp.sessions if plan.bgp else ():
            by_family[s.afi] += 1
            pairs.add(frozenset((name, s.peer)))
    # Mesh: both ends hold the session. Hub mode: the route server and the client do too.
    return {afi: n // 2 for afi, n in by_family.items()}, len(pairs)


@pytest.mark.parametrize("mode", ["mesh", "hub"])
@pytest.mark.parametrize("hubs", [1, 2])
@pytest.mark.parametrize("families", ["v4", "v6", "dual"])
def test_counts_match_the_compiled_sessions(mode: str, hubs: int, families: str) -> None:
    network = {"v4": {}, "v6": {"overlay": None, "overlay6": "fd42:1:2::/64"},
               "dual": {"overlay6": "auto"}}[families]
    d = topo(4, mode, hubs, **network)
    if families == "v6":
        for i in range(1, hubs):
            del d["hubs"][f"h{i}"]["overlay"]
    topology = load(d)
    want, pairs = compiled(d)
    assert session_counts(topology) == want
    assert peering_count(topology) == pairs
    per_plane = 4 if mode == "hub" else 6
    assert sum(want.values()) == per_plane * hubs * (2 if families == "dual" else 1)


def test_explicit_peerings_are_counted_once_each() -> None:
    d = topo(4, overlay6="auto")
    d["peerings"] = [["n1", "n2"], ["n2", "n3"], ["n3", "n2"]]
    topology = load(d)
    assert peering_count(topology) == 2
    assert session_counts(topology) == {"ipv4": 2, "ipv6": 2}
