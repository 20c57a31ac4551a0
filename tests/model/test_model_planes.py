"""Hub mode and several hubs: schema, validation and addressing (issue 7)."""

from __future__ import annotations

import copy
from ipaddress import IPv4Address, IPv4Network

import pytest

from topogen import doc, load, pub, text
from wgbgp.model import TopologyError, parse
from wgbgp.model.addressing import host_numbers, hub_overlays, plane_addresses
from wgbgp.model.derive import bfd_enabled, hub_preferences
from wgbgp.model.validate import MESH_SESSIONS_HINT


def two_hubs(nodes: int = 3, mode: str = "mesh") -> dict:
    d = doc(nodes, mode=mode)
    d["hubs"]["b"] = {"endpoint": "203.0.113.11:51820", "overlay": "10.1.0.0/24",
                      "public_key": pub("b")}
    if mode == "hub":
        for hub in d["hubs"].values():
            hub["asn"] = 64600
    return d


def issues(d: dict) -> list:
    with pytest.raises(TopologyError) as exc:
        parse(text(d), "t.yaml")
    return exc.value.issues


def only_error(d: dict):
    errs = [i for i in issues(d) if i.level == "error"]
    assert len(errs) == 1, [e.format() for e in errs]
    return errs[0]


def warnings(d: dict) -> list:
    return parse(text(d), "t.yaml")[1]


def test_files_written_before_stay_valid_and_mean_the_same():
    t = load(doc(2))
    assert t.network.mode == "mesh"
    assert t.network.bfd.enabled is None and not bfd_enabled(t)
    assert hub_overlays(t) == {"vps": IPv4Network("10.0.0.0/24")}
    assert plane_addresses(t) == {"vps": {"vps": IPv4Address("10.0.0.1"),
                                          "n1": IPv4Address("10.0.0.2"),
                                          "n2": IPv4Address("10.0.0.3")}}


def test_hub_mode_and_two_hubs_are_valid():
    t = load(two_hubs(3, "hub"))
    assert t.network.mode == "hub" and [h.asn for h in t.hubs.values()] == [64600, 64600]
    assert warnings(two_hubs(3, "hub")) == []


def test_hub_mode_needs_a_hub_asn():
    d = doc(2, mode="hub")
    err = only_error(d)
    assert err.loc == ("hubs", "vps", "asn") and err.line == 6  # the hub missing it
    assert "route server" in err.message and "asn: 64512" in err.fix


def test_hub_asn_must_differ_from_the_nodes():
    d = doc(2, mode="hub")
    d["hubs"]["vps"]["asn"] = 65001  # n1's
    err = only_error(d)
    assert err.loc == ("hubs", "vps", "asn") and "n1" in err.message and "iBGP" in err.message


def test_hub_asn_is_checked_like_any_asn():
    d = doc(2, mode="hub")
    d["hubs"]["vps"]["asn"] = 23456
    err = only_error(d)
    assert err.loc == ("hubs", "vps", "asn") and "AS_TRANS" in err.message


def test_hub_asn_in_mesh_mode_is_a_warning():
    d = doc(2)
    d["hubs"]["vps"]["asn"] = 64600
    (w,) = warnings(d)
    assert w.loc == ("hubs", "vps", "asn") and "mesh mode" in w.message


def test_unknown_mode_is_an_error():
    err = only_error(doc(2, mode="star"))
    assert err.loc == ("network", "mode") and "'mesh'" in err.message + err.fix


def test_second_hub_needs_its_own_overlay_and_gets_a_suggestion():
    d = two_hubs()
    del d["hubs"]["b"]["overlay"]
    err = only_error(d)
    assert err.loc == ("hubs", "b", "overlay")
    # The suggestion is free: not the first overlay, not an announced prefix.
    assert "overlay: 10.0.1.0/24" in err.fix


def test_overlays_must_be_disjoint():
    d = two_hubs()
    d["hubs"]["b"]["overlay"] = "10.0.0.128/25"
    err = only_error(d)
    assert err.loc == ("hubs", "b", "overlay") and "overlaps 10.0.0.0/24" in err.message
    assert "'vps'" in err.message


def test_one_hub_uses_network_overlay_whatever_the_order():
    d = two_hubs()
    d["hubs"] = {"b": d["hubs"]["b"], "vps": d["hubs"]["vps"]}  # b listed first
    t = load(d)
    assert hub_overlays(t) == {"b": IPv4Network("10.1.0.0/24"),
                              "vps": IPv4Network("10.0.0.0/24")}
    d["hubs"]["vps"]["overlay"] = "10.0.0.0/24"  # saying so is the same
    load(d)
    d["hubs"]["vps"]["overlay"] = "10.9.0.0/24"  # nobody on network.overlay
    err = only_error(d)
    assert err.loc == ("hubs", "b", "overlay") and "network.overlay" in err.message


def test_announced_prefix_may_not_overlap_any_plane():
    d = two_hubs()
    d["nodes"]["n2"]["announce"] = ["10.1.0.128/25"]
    err = only_error(d)
    assert err.loc == ("nodes", "n2", "announce", 0) and "10.1.0.0/24" in err.message


def test_every_node_keeps_its_host_number_on_every_plane():
    d = two_hubs(3)
    d["nodes"]["n2"]["address"] = "10.0.0.77"
    t = load(d)
    planes = plane_addresses(t)
    assert planes["vps"]["n2"] == IPv4Address("10.0.0.77")
    assert planes["b"]["n2"] == IPv4Address("10.1.0.77")
    # Hubs first (1, 2), then nodes take the lowest free numbers.
    assert host_numbers(t) == {"vps": 1, "b": 2, "n1": 3, "n2": 77, "n3": 4}
    assert planes["b"] == {"b": IPv4Address("10.1.0.2"), "n1": IPv4Address("10.1.0.3"),
                           "n2": IPv4Address("10.1.0.77"), "n3": IPv4Address("10.1.0.4")}
    assert "vps" not in planes["b"] and "b" not in planes["vps"]


def test_a_hub_is_pinned_in_its_own_overlay():
    d = two_hubs(2)
    d["hubs"]["b"]["address"] = "10.1.0.254"
    assert plane_addresses(load(d))["b"]["b"] == IPv4Address("10.1.0.254")
    d["hubs"]["b"]["address"] = "10.0.0.254"  # network.overlay is not b's plane
    err = only_error(d)
    assert err.loc == ("hubs", "b", "address") and "10.1.0.0/24" in err.message


def test_one_host_number_per_machine_across_planes():
    d = two_hubs(2)
    d["hubs"]["b"]["address"] = "10.1.0.9"
    d["nodes"]["n1"]["address"] = "10.0.0.9"
    err = only_error(d)
    assert err.loc == ("nodes", "n1", "address")
    assert "same host number as 10.1.0.9" in err.message and "b" in err.message


def test_a_smaller_plane_must_hold_every_node():
    d = two_hubs(3)
    d["nodes"]["n3"]["address"] = "10.0.0.100"
    d["hubs"]["b"]["overlay"] = "10.1.0.0/26"
    err = only_error(d)
    assert err.loc == ("hubs", "b", "overlay") and "host number 100" in err.message


def test_peerings_are_a_mesh_mode_setting():
    d = doc(3, mode="hub")
    d["hubs"]["vps"]["asn"] = 64600
    d["peerings"] = [["n1", "n2"]]
    err = only_error(d)
    assert err.loc == ("peerings",) and "hub mode" in err.message


def test_preferences_default_to_file_order_and_ties_warn():
    t = load(two_hubs())
    assert hub_preferences(t) == {"vps": 100, "b": 90}
    d = two_hubs()
    d["hubs"]["b"]["preference"] = 500
    assert hub_preferences(load(d)) == {"vps": 100, "b": 500}
    d["hubs"]["b"]["preference"] = 100
    (w,) = warnings(d)
    assert w.loc == ("hubs", "b", "preference") and "tie" in w.message


def test_bfd_defaults_on_with_several_hubs_and_has_a_shorthand():
    assert bfd_enabled(load(two_hubs())) and not bfd_enabled(load(doc(2)))
    for value, on in ((True, True), (False, False), ({"interval": 200}, True)):
        d = two_hubs()
        d["network"]["bfd"] = value
        t = load(d)
        assert bfd_enabled(t) is on
    d = doc(2, bfd=True)
    assert bfd_enabled(load(d))
    d = doc(2, bfd={"interval": 20})
    err = only_error(d)
    assert err.loc == ("network", "bfd", "interval")


def test_large_mesh_hint_suggests_hub_mode():
    d = doc(MESH_SESSIONS_HINT + 1)
    (w,) = [w for w in warnings(d) if w.loc == ("network", "mode")]
    assert "mode: hub" in w.fix
    hub = copy.deepcopy(d)
    hub["network"]["mode"] = "hub"
    hub["hubs"]["vps"]["asn"] = 64600
    assert not [w for w in warnings(hub) if w.loc == ("network", "mode")]
