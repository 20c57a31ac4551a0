"""more_specifics per address family: up to /32 for IPv4 prefixes, /128 for IPv6 ones;
one length for every prefix, or one per family."""

from __future__ import annotations

import pytest

from topogen import doc, load, text
from wgbgp.compile import compile_topology
from wgbgp.model import TopologyError, parse
from wgbgp.model.schema import MoreSpecifics


def node_with(announce: list[str], more_specifics) -> dict:
    d = doc(2, overlay6="auto")
    d["nodes"]["n2"]["announce"] = announce
    d["nodes"]["n2"]["more_specifics"] = more_specifics
    return d


def issues(d: dict) -> list:
    try:
        _, warnings = parse(text(d), "t.yaml")
    except TopologyError as exc:
        return exc.issues
    return warnings


@pytest.mark.parametrize("announce,value,longest", [
    (["2001:db8:2::/48"], 64, {"2001:db8:2::/48": 64}),
    (["2001:db8:2::/48"], 128, {"2001:db8:2::/48": 128}),
    (["100.64.2.0/24"], 28, {"100.64.2.0/24": 28}),
    (["100.64.2.0/24", "2001:db8:2::/48"], {"ipv4": 28, "ipv6": 64},
     {"100.64.2.0/24": 28, "2001:db8:2::/48": 64}),
    (["100.64.2.0/24", "2001:db8:2::/48"], {"ipv6": 56},
     {"100.64.2.0/24": None, "2001:db8:2::/48": 56}),
    (["100.64.2.1/32", "2001:db8:2::/48"], {"ipv4": 32, "ipv6": 48},
     {"100.64.2.1/32": None, "2001:db8:2::/48": None}),  # as long as announced: exactly
])
def test_accepted_lengths_reach_the_importing_peers(announce, value, longest) -> None:
    topology = load(node_with(announce, value))
    node = topology.nodes["n2"]
    assert {str(p): node.longest(p) for p in node.announce} == longest
    # n1 imports n2's prefixes up to those lengths, in each family's session.
    plans = compile_topology(topology)
    got = {str(p): le for s in plans["n1"].bgp.sessions for p, le in s.import_filter()}
    assert got == longest
    # and n2 exports them as far.
    own = {str(p): le for v in (4, 6) for p, le in plans["n2"].bgp.export_filter(v)}
    assert own == longest


@pytest.mark.parametrize("announce,value,field,words", [
    # IPv4 lengths stop at 32, IPv6 ones at 128.
    (["100.64.2.0/24"], 33, "nodes.n2.more_specifics", "longer than an IPv4 prefix"),
    (["100.64.2.0/24"], 64, "nodes.n2.more_specifics", "longer than an IPv4 prefix"),
    (["2001:db8:2::/48"], 129, "nodes.n2.more_specifics", "not a prefix length"),
    (["2001:db8:2::/48"], {"ipv6": 129}, "nodes.n2.more_specifics.ipv6", "out of range"),
    (["100.64.2.0/24"], {"ipv4": 33}, "nodes.n2.more_specifics.ipv4", "out of range"),
    # Shorter than what is announced, in either family.
    (["2001:db8:2::/48"], 40, "nodes.n2.more_specifics", "shorter than the announced"),
    (["100.64.2.0/24", "2001:db8:2::/48"], {"ipv4": 28, "ipv6": 40},
     "nodes.n2.more_specifics.ipv6", "shorter than the announced 2001:db8:2::/48"),
    # One length cannot suit a /24 and a /48: the fix says how to give two.
    (["100.64.2.0/24", "2001:db8:2::/48"], 28, "nodes.n2.more_specifics",
     "shorter than the announced 2001:db8:2::/48"),
    (["100.64.2.0/24"], {"ipv5": 28}, "nodes.n2.more_specifics.ipv5", "unknown key"),
    (["100.64.2.0/24"], "28", "nodes.n2.more_specifics", "not a prefix length"),
    (["100.64.2.0/24"], True, "nodes.n2.more_specifics", "not a prefix length"),
])
def test_lengths_checked_per_family(announce, value, field, words) -> None:
    errors = [i for i in issues(node_with(announce, value)) if i.level == "error"]
    assert [i.field for i in errors] == [field], [i.format() for i in errors]
    assert words in errors[0].message
    if isinstance(value, int) and len(announce) == 2:
        assert "{ipv4: N, ipv6: M}" in errors[0].fix


def test_a_family_without_prefixes_is_a_warning() -> None:
    warnings = [i for i in issues(node_with(["100.64.2.0/24"], {"ipv4": 26, "ipv6": 64}))
                if i.field.startswith("nodes.n2.more_specifics")]
    assert [(w.level, w.field) for w in warnings] == [("warning",
                                                       "nodes.n2.more_specifics.ipv6")]
    assert load(node_with(["100.64.2.0/24"], {"ipv4": 26})).nodes["n2"].more_specifics == \
        MoreSpecifics(ipv4=26)
