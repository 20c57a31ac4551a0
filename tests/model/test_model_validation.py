"""Bad input: errors name file, line and field, with a fix. Issue 2's list of cases is
in tests/model/errors/ (golden files); here, what a fixed file cannot show: suggestions
for typos, several errors at once, generated mistakes."""

from __future__ import annotations

import copy
import re
from ipaddress import IPv4Network

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from topogen import keypair, pub, topology_docs
from wgbgp.model import TopologyError, parse
from wgbgp.model.keys import looks_clamped

HUB_PRIV, HUB_PUB = keypair("vps")
LAPTOP_PRIV, LAPTOP_PUB = keypair("laptop")

BASE = f"""\
network:
  name: friends
  overlay: 10.0.0.0/24
  mtu: 1420
hubs:
  vps:
    endpoint: 203.0.113.10:51820
    address: 10.0.0.1
    public_key: {HUB_PUB}
nodes:
  laptop:
    asn: 65010
    address: 10.0.0.10
    public_key: {LAPTOP_PUB}
    announce: [100.100.100.1/32]
  friend:
    asn: 65020
    public_key: {pub("friend")}
    announce: [100.100.100.2/32]
"""


def edit(old: str, new: str, base: str = BASE) -> str:
    assert base.count(old) == 1, old
    return base.replace(old, new)


def errors(text: str) -> list:
    with pytest.raises(TopologyError) as exc:
        parse(text, "topo.yaml")
    return exc.value.issues


def test_base_is_valid():
    topology, warnings = parse(BASE, "topo.yaml")
    assert warnings == []
    assert list(topology.nodes) == ["laptop", "friend"]


# The table of bad inputs (one edited line each, the line an error must name marked `# <-`)
# lives in tests/model/errors/ as golden files: test_errors_golden.py.


@pytest.mark.parametrize(("typo", "where", "suggestion"), [
    ("overlya", "network", "overlay"),
    ("keepalve", "network", "keepalive"),
    ("endpont", "hub", "endpoint"),
    ("publickey", "hub", "public_key"),
    ("annouce", "node", "announce"),
    ("asnn", "node", "asn"),
    ("adress", "node", "address"),
    ("peering", "top", "peerings"),
    ("hub", "top", "hubs"),
])
def test_unknown_key_suggests_closest(typo, where, suggestion):
    anchor = {"network": "  mtu: 1420\n", "hub": "    address: 10.0.0.1\n",
              "node": "    asn: 65020\n", "top": "nodes:\n"}[where]
    indent = anchor[: len(anchor) - len(anchor.lstrip())]
    text = edit(anchor, f"{indent}{typo}: 1\n{anchor}") if where != "top" else (
        f"{typo}: 1\n" + BASE)
    (issue,) = errors(text)
    assert issue.message == f"unknown key '{typo}'"
    assert issue.fix == f"did you mean '{suggestion}'?"
    assert issue.line == next(n for n, t in enumerate(text.splitlines(), 1)
                              if t.strip().startswith(f"{typo}:"))


def test_unknown_key_far_from_all_lists_known_ones():
    (issue,) = errors(edit("  mtu: 1420\n", "  mtu: 1420\n  zzzzzz: 1\n"))
    assert "known keys: name, overlay, " in issue.fix


def test_several_errors_all_reported_in_line_order():
    text = (BASE
            .replace("  mtu: 1420\n", "  mtu: 99999\n")                      # schema
            .replace("    address: 10.0.0.1\n", "    adress: 10.0.0.1\n")     # schema
            .replace("    asn: 65010\n", "    asn: 23456\n")                  # schema
            .replace("    address: 10.0.0.10\n", "    address: 10.0.9.10\n")  # semantic
            .replace("[100.100.100.2/32]", "[100.100.100.0/24, 0.0.0.0/0]")    # both
            + "peerings:\n  - [laptop, ghost]\n")                              # semantic
    issues = errors(text)
    got = [(i.line, i.field) for i in issues]
    assert got == [
        (4, "network.mtu"),
        (8, "hubs.vps.adress"),
        (12, "nodes.laptop.asn"),
        (13, "nodes.laptop.address"),
        (19, "nodes.friend.announce.0"),
        (19, "nodes.friend.announce.1"),
        (21, "peerings.0.1"),
    ], "\n".join(i.format() for i in issues)


def test_several_semantic_errors_all_reported():
    text = (BASE.replace("    address: 10.0.0.10\n", "    address: 10.0.0.1\n")
            .replace("[100.100.100.2/32]", "[100.100.100.1/32, 10.0.0.0/16]")
            + "peerings:\n  - [laptop, nobody]\n  - [nobody2, friend]\n")
    fields = {i.field for i in errors(text)}
    assert fields == {"nodes.laptop.address", "nodes.friend.announce.0",
                      "nodes.friend.announce.1", "peerings.0.1", "peerings.1.0"}


def test_semantic_errors_after_a_dropped_list_item_keep_their_index():
    # The bad item 0 is dropped to check the rest; item 2's error must still say 2.
    text = edit("[100.100.100.2/32]", "[100.100.100.2/33, 100.100.100.9/32, 100.100.100.1/32]")
    assert [i.field for i in errors(text)] == ["nodes.friend.announce.0",
                                               "nodes.friend.announce.2"]


def test_no_false_private_key_warnings():
    # Regression: a clamped bit pattern used to earn a "looks like a private key" warning,
    # which 1 genuine public key in 32 has (and --strict then failed). Only proof counts.
    clamped_publics = [pub(f"k{i}") for i in range(400) if looks_clamped(pub(f"k{i}"))]
    assert clamped_publics
    text = edit(f"    public_key: {LAPTOP_PUB}\n", f"    public_key: {clamped_publics[0]}\n")
    assert parse(text, "topo.yaml")[1] == []


@pytest.mark.parametrize("name", ["on", "off", "yes", "no", "y", "n"])
def test_yaml_1_1_boolean_words_are_names(name):
    text = edit("  friend:\n", f"  {name}:\n")
    topology, _ = parse(text, "topo.yaml")
    assert name in topology.nodes


def test_warnings_are_located_too():
    text = edit(f"    public_key: {pub('friend')}\n", "").replace(
        "    announce: [100.100.100.2/32]\n", "")
    _, warnings = parse(text, "topo.yaml")
    assert {w.message for w in warnings} == {"friend has no public_key yet",
                                             "friend announces no prefixes"}
    assert all(w.line == 16 and w.fix for w in warnings)


def test_shared_asn_is_a_warning():
    _, warnings = parse(edit("    asn: 65020\n", "    asn: 65010\n"), "topo.yaml")
    assert [w.field for w in warnings] == ["nodes.friend.asn"]


@pytest.mark.parametrize("text", ["just a string\n", "- a\n- b\n", "42\n"])
def test_not_a_mapping(text):
    (issue,) = errors(text)
    assert issue.message == "the file is not a YAML mapping" and issue.line == 1


@pytest.mark.parametrize("text", ["", "\n\n", "   \n"])
def test_an_empty_file_is_called_empty(text):
    (issue,) = errors(text)
    assert issue.message == "the file is empty" and issue.line == 1


def test_json_of_an_issue():
    (issue,) = errors(edit("    asn: 65010\n", "    asn: 0\n"))
    assert issue.to_json() == {
        "level": "error", "file": "topo.yaml", "line": 12, "field": "nodes.laptop.asn",
        "message": "ASN 0 is reserved (RFC 7607)",
        "fix": "use a private ASN: 64512-65534 or 4200000000-4294967294",
    }


@pytest.mark.parametrize("key", ["n[etwork", "[key]", "function-after[x]"])
def test_keys_that_look_like_pydantic_markers(key):
    # Regression: keys holding '[' were dropped from the error's location (and crashed).
    issues = errors(f"'{key}': 1\n" + BASE)
    assert [(i.field, i.line, i.message) for i in issues] == [(key, 1, f"unknown key '{key}'")]


def test_control_character_is_located():
    (issue,) = errors(BASE.replace("  friend:\n", "  fri\x1fend:\n"))
    assert issue.line == 16 and "not allowed" in issue.message and issue.fix


# --- properties: inject one known mistake into any valid topology -----------------------

@st.composite
def broken(draw):
    """(document, field the error must name, message pattern) for one injected mistake."""
    d = copy.deepcopy(draw(topology_docs()))
    names = list(d["nodes"])
    victim = draw(st.sampled_from(names))
    node = d["nodes"][victim]
    overlay = IPv4Network(d["network"]["overlay"])
    kind = draw(st.sampled_from(["asn", "outside", "collision", "overlay-prefix", "default",
                                 "overlap", "peering", "bad-key", "private-key"]))
    if kind == "asn":
        node["asn"] = draw(st.sampled_from([0, 23456, 64500, 65535, 70000, 2**32]))
        return d, f"nodes.{victim}.asn", "ASN"
    if kind == "outside":
        node["address"] = str(overlay.broadcast_address + 1 + draw(st.integers(0, 1000)))
        return d, f"nodes.{victim}.address", "outside the overlay"
    if kind == "collision":
        d["hubs"]["hub"]["address"] = node["address"] = str(next(overlay.hosts()))
        return d, f"nodes.{victim}.address", "already used by hub"
    if kind == "overlay-prefix":
        node["announce"] = [str(overlay), *node.get("announce", [])]
        return d, f"nodes.{victim}.announce.0", "overlaps the overlay"
    if kind == "default":
        node.setdefault("announce", []).append("0.0.0.0/0")
        return d, f"nodes.{victim}.announce.{len(node['announce']) - 1}", "default route"
    if kind == "overlap":
        # A supernet of everything announced, last in the file: it is the one in error.
        # (Another node's: one node may announce an aggregate of its own prefixes.)
        assume(any(d["nodes"][n]["announce"] for n in names[:-1]))
        last = d["nodes"][names[-1]]
        last["announce"].append("100.0.0.0/8")
        field = f"nodes.{names[-1]}.announce.{len(last['announce']) - 1}"
        return d, field, "overlaps .*announced by"
    if kind == "peering":
        d["peerings"] = [*d.get("peerings", []), [victim, "nobody"]]
        return d, f"peerings.{len(d['peerings']) - 1}.1", "unknown node 'nobody'"
    if kind == "bad-key":
        node["public_key"] = draw(st.sampled_from(["abc", "A" * 44, "A" * 42 + "=="]))
        return d, f"nodes.{victim}.public_key", "invalid public key"
    other = draw(st.sampled_from([n for n in ["hub", *names] if n != victim]))
    node["public_key"] = keypair(other)[0]  # topology_docs keys are pub(name)
    return d, f"nodes.{victim}.public_key", f"PRIVATE key .*declared for {other}"


@given(broken())
def test_any_injected_mistake_is_reported_where_it_is(case):
    d, field, pattern = case
    source = yaml.safe_dump(d, sort_keys=False)
    issues = errors(source)
    hits = [i for i in issues if i.field == field and re.search(pattern, i.message)]
    assert hits, "\n".join(i.format() for i in issues)
    line = source.splitlines()[hits[0].line - 1]
    # The line named holds the field (or, for a list item, its value).
    last = field.split(".")[-1]
    assert (last + ":" in line) or last.isdigit(), (line, field)
    assert hits[0].fix


def test_name_lengths():
    # A hub's name becomes the interface name wg-<hub>, at most 15 characters on Linux.
    ok = BASE.replace("  vps:\n", "  " + "v" * 12 + ":\n")
    assert "v" * 12 in parse(ok, "topo.yaml")[0].hubs
    (issue,) = errors(BASE.replace("  vps:\n", "  " + "v" * 13 + ":\n"))
    assert issue.field == "hubs." + "v" * 13 and "longer than 12" in issue.message
    (issue,) = errors(BASE.replace("  friend:\n", "  " + "f" * 33 + ":\n"))
    assert "longer than 32" in issue.message and issue.fix


def test_self_referencing_alias_is_an_error_not_a_crash():
    # Regression: the line map walked a recursive alias forever (RecursionError).
    issues = errors(BASE.replace("  mtu: 1420\n", "  mtu: 1420\n  loop: &x [*x]\n"))
    assert [i.field for i in issues] == ["network.loop"]


def test_deep_nesting_is_an_error_not_a_crash():
    (issue,) = errors("network: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nests too deeply" in issue.message and issue.line == 1


def test_anchors_and_merge_keys_work():
    text = BASE.replace("  laptop:\n    asn: 65010\n", "  laptop: &laptop\n    asn: 65010\n")
    text += "  other:\n    <<: *laptop\n    asn: 65030\n    address: 10.0.0.30\n"
    text += f"    public_key: {pub('other')}\n    announce: [100.100.100.3/32]\n"
    topology, warnings = parse(text, "topo.yaml")
    assert topology.nodes["other"].asn == 65030 and warnings == []


@pytest.mark.parametrize("key", ["? [a, b]\n: 1\n", "? {a: b}\n: 1\n", "[x]: 1\n"])
def test_complex_keys_are_an_error_not_a_crash(key):
    (issue,) = errors(key + BASE)
    assert issue.line == 1 and "unhashable" in issue.message
