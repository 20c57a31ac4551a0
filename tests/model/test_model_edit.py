"""Editing a topology file in place: one value changes, every other byte stays."""

from __future__ import annotations

import pytest
from hypothesis import given

from topogen import pub, text, topology_docs
from wgbgp.model import parse
from wgbgp.model.edit import EditError, set_public_key

COMMENTED = f"""\
# our network
network: {{name: friends, overlay: 10.0.0.0/24}}   # keep me
hubs:
  vps: {{endpoint: 203.0.113.10:51820, public_key: {pub("vps")}}}
nodes:
  laptop:
    asn: 65010            # mine
    public_key: "{pub("laptop")}"   # quoted, commented
    announce: [100.100.100.1/32]
  friend:
    # no key yet
    asn: 65020
  other: {{asn: 65030}}
"""


def test_replaces_only_the_value():
    new = pub("new")
    out = set_public_key(COMMENTED, "nodes", "laptop", new)
    assert out == COMMENTED.replace(f'"{pub("laptop")}"', new)
    assert parse(out)[0].nodes["laptop"].public_key == new


def test_flow_style_machine():
    out = set_public_key(COMMENTED, "hubs", "vps", pub("new"))
    assert out == COMMENTED.replace(pub("vps"), pub("new"))
    out = set_public_key(COMMENTED, "nodes", "other", pub("new"))
    assert f"  other: {{asn: 65030, public_key: {pub('new')}}}\n" in out
    assert parse(out)[0].nodes["other"].public_key == pub("new")


def test_adds_a_missing_key_under_the_machine():
    out = set_public_key(COMMENTED, "nodes", "friend", pub("new"))
    assert f"  friend:\n    # no key yet\n    public_key: {pub('new')}\n    asn: 65020\n" in out
    assert parse(out)[0].nodes["friend"].public_key == pub("new")


def test_unknown_machine():
    with pytest.raises(EditError):
        set_public_key(COMMENTED, "nodes", "nobody", pub("new"))


@given(topology_docs(max_nodes=5))
def test_any_valid_file_changes_in_that_key_only(d):
    src = text(d)
    name = next(iter(d["nodes"]))
    out = set_public_key(src, "nodes", name, pub("rotated"))
    before, after = parse(src)[0], parse(out)[0]
    assert after.nodes[name].public_key == pub("rotated")
    assert after.model_copy(update={"nodes": {**after.nodes, name: before.nodes[name]}}) == before
    assert len(out.splitlines()) == len(src.splitlines())


def test_topology_machine_is_a_hub_or_a_node_by_name() -> None:
    from topogen import doc, load

    t = load(doc(2))
    assert t.machine("vps") is t.hubs["vps"] and t.machine("n2") is t.nodes["n2"]
    with pytest.raises(KeyError):
        t.machine("nobody")
