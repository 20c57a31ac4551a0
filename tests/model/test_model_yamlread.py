"""model/yamlread.py: libyaml reads every topology exactly as the pure-Python parser does
(the same data, the same line of every key and value, the same duplicates and asdot
ASNs), falls back to it for its error messages, and the lock's dump is the same text."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import topogen
from wgbgp.model import TopologyError, parse
from wgbgp.model.source import LineMap, Loader
from wgbgp.model.yamlread import compose, safe_dump

pytestmark = pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="PyYAML without libyaml")

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*(ROOT / "examples").glob("*.yaml"), *(ROOT / "tests/model/errors").glob("*.yaml")])

# What a hand-written file holds beyond the examples: anchors, aliases and merge keys,
# asdot ASNs plain and quoted, duplicate keys, block and folded scalars, comments, a BOM,
# YAML 1.1 booleans that YAML 1.2 reads as strings, nested flow collections.
TRICKY = [
    "\ufeffnetwork: {name: t, overlay: 10.0.0.0/24}\n"
    "nodes:\n  a: {asn: 1.10}\n  b: {asn: '1.10'}\n",
    "base: &b {asn: 65001, announce: [10.1.0.0/24]}\nnodes:\n  a:\n    <<: *b\n    asn: 65002\n"
    "  b: *b\n",
    "nodes:\n  a: {asn: 1}\n  a: {asn: 2}\n  on: {asn: 3}\n  no: yes\n",
    "network:\n  name: >\n    folded\n    text\n  note: |\n    block\n      kept\n# comment\n",
    "peerings: [[a, b], [b, c]]\nlab: {nodes: {a: {carrier: x}}}\n",
    "a: !!str 12\nb: 0x1F\nc: 1_000\nd: ~\ne: 2001:db8::1\nf: 10.0.0.1/32\ng: 1.5\n",
    "x: [1, {a: [2, {b: c}]}, 'q''uote', \"d\\tq\"]\n",
]


def read(text: str, fast: bool) -> tuple[object, dict, dict, list, dict]:
    loader_cls = Loader
    if fast:
        root, loader = compose(text, loader_cls)
        assert type(loader).__name__.startswith("C"), "libyaml did not read it"
    else:
        loader = loader_cls(text)
        root = loader.get_single_node()
    try:
        lines = LineMap(root)
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return data, lines.keys, lines.values, lines.duplicates, lines.asdot


def _well_formed(text: str) -> bool:
    try:
        Loader(text).get_single_node()
    except yaml.YAMLError:
        return False  # a syntax error case: see test_errors_are_pythons
    return True


CASES = {p.name: p.read_text() for p in FILES} | {f"tricky{i}": t for i, t in enumerate(TRICKY)}
CASES = {k: v for k, v in CASES.items() if _well_formed(v)}


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_same_tree_as_python(text: str):
    assert read(text, fast=True) == read(text, fast=False)


@settings(max_examples=40, deadline=None)
@given(topogen.topology_docs(max_nodes=8))
def test_generated_topologies(d: dict):
    text = topogen.text(d)
    assert read(text, fast=True) == read(text, fast=False)


@pytest.mark.parametrize("text", [
    "nodes: {a: [1, 2}\n",          # a flow mapping closed by ']'
    "a: b: c\n",                     # mapping values not allowed here
    "a:\n\t- b\n",                   # a tab
    "x: {file: /etc/bgp-{pair}.secret}\n",
    "a: 'open\n",
    "a: \x07\n",                    # a character the Python reader refuses
])
def test_errors_are_pythons(text: str):
    with pytest.raises(yaml.YAMLError) as python:
        Loader(text).get_single_node()
    with pytest.raises(yaml.YAMLError) as ours:
        compose(text, Loader)
    assert type(ours.value) is type(python.value)
    assert str(ours.value) == str(python.value)
    # And the located issue parse() reports is the same either way.
    with pytest.raises(TopologyError):
        parse(text, "t.yaml")


# What a lock holds: machine names (the schema's: lowercase letters, digits, '-'; some
# are YAML words such as "on", "no" or "null", which must be quoted), host numbers, and
# tunnel addresses of both families.
NAMES = st.from_regex(r"\A[a-z][a-z0-9-]{0,31}\Z") | st.sampled_from(
    ["on", "off", "no", "yes", "y", "n", "null", "true", "false", "nan", "inf", "e1", "a-"])
ADDRESSES = st.ip_addresses().map(str)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(NAMES, st.integers(1, 1 << 40), max_size=8),
       st.dictionaries(NAMES, st.lists(ADDRESSES, max_size=2), max_size=8))
def test_lock_dump_is_the_same_text(numbers: dict, deployed: dict):
    data = {"ipv4": numbers, "ipv6": numbers, "deployed": deployed}
    options = {"sort_keys": False, "default_flow_style": False}
    assert safe_dump(data, **options) == yaml.safe_dump(data, **options)
