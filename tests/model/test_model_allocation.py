"""Tunnel-address allocation: deterministic, pinned kept, no collisions, append-stable."""

from __future__ import annotations

import copy
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topogen import doc, load, text, topology_docs
from wgbgp.model import TopologyError, allocate, parse
from wgbgp.model.addressing import OverlayFull


def test_classic_allocation():
    d = doc(2)
    d["hubs"]["vps"]["address"] = "10.0.0.1"
    d["nodes"]["n1"]["address"] = "10.0.0.10"
    assert allocate(load(d)) == {
        "vps": IPv4Address("10.0.0.1"),
        "n1": IPv4Address("10.0.0.10"),
        "n2": IPv4Address("10.0.0.2"),  # lowest free host address
    }


def test_hubs_first_then_nodes_in_file_order():
    got = allocate(load(doc(3)))
    assert list(got) == ["vps", "n1", "n2", "n3"]
    assert [str(a) for a in got.values()] == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]


def test_overlay_exactly_full_is_fine():
    # /29: 6 host addresses, hub + 5 nodes.
    assert len(allocate(load(doc(5, overlay="10.0.0.0/29")))) == 6


def test_overlay_too_small_raises_and_is_reported():
    d = doc(6, overlay="10.0.0.0/29")  # 7 machines, 6 addresses
    topology = load(doc(5, overlay="10.0.0.0/29"))
    crowded = topology.model_copy(
        update={"nodes": {**topology.nodes, "extra": topology.nodes["n1"]}})
    with pytest.raises(OverlayFull, match="6 host addresses, 7 machines"):
        allocate(crowded)
    with pytest.raises(TopologyError) as exc:
        parse(text(d), "t.yaml")
    (issue,) = exc.value.issues
    assert issue.field == "network.overlay"
    assert "too small" in issue.message and issue.fix and issue.line == 3


@pytest.mark.parametrize("overlay", ["10.0.0.0/31", "10.0.0.0/32"])
def test_overlay_without_room_for_hub_and_clients(overlay):
    with pytest.raises(TopologyError) as exc:
        parse(text(doc(1, overlay=overlay)), "t.yaml")
    assert [i.field for i in exc.value.issues] == ["network.overlay"]


@given(topology_docs())
def test_allocation_properties(d):
    topology = load(d)
    got = allocate(topology)
    machines = topology.machines
    # Every machine has an address, inside the overlay, a host address, all distinct.
    assert set(got) == set(machines)
    overlay = topology.network.overlay
    hosts = set(overlay.hosts())
    assert all(a in hosts for a in got.values())
    assert len(set(got.values())) == len(got)
    # Pinned addresses are kept.
    for name, m in machines.items():
        if m.address is not None:
            assert got[name] == m.address
    # Deterministic: same input, same output, also through a fresh parse.
    assert allocate(topology) == got
    assert allocate(load(copy.deepcopy(d))) == got


@given(topology_docs(), st.integers(1, 3))
def test_appending_nodes_moves_no_one(d, extra):
    before = allocate(load(d))
    grown = copy.deepcopy(d)
    overlay = IPv4Network(d["network"]["overlay"])
    room = overlay.num_addresses - 2 - len(before)
    for i in range(min(extra, room)):
        grown["nodes"][f"new{i}"] = {"asn": 4200000000 + i}
    after = allocate(load(grown))
    assert {k: after[k] for k in before} == before


@given(topology_docs())
def test_unpinned_take_lowest_free_addresses(d):
    topology = load(d)
    got = allocate(topology)
    machines = topology.machines
    pinned = {m.address for m in machines.values() if m.address is not None}
    allocated = [got[n] for n, m in machines.items() if m.address is None]
    free = [a for a in topology.network.overlay.hosts() if a not in pinned]
    assert allocated == free[: len(allocated)]
