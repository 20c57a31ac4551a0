"""The prefix-overlap check: the fast index agrees with comparing every pair."""

from __future__ import annotations

from ipaddress import IPv4Network

from hypothesis import given
from hypothesis import strategies as st

from wgbgp.model.checks import PrefixOwners

# Small address space, many lengths: plenty of nesting, equality and disjointness.
prefixes = st.builds(
    lambda addr, length: IPv4Network((addr, length), strict=False),
    st.integers(0x0A000000, 0x0A0000FF) | st.integers(0, 2**32 - 1),
    st.integers(0, 32) | st.integers(24, 32),
)


def naive(entries):
    """The original O(n^2) check, as the oracle."""
    owners, verdicts = [], []
    for prefix, name in entries:
        clash = next(((p, o) for p, o in owners if p.overlaps(prefix)), None)
        verdicts.append(clash)
        if clash is None:
            owners.append((prefix, name))
    return verdicts


@given(st.lists(st.tuples(prefixes, st.sampled_from("abc")), max_size=40))
def test_index_agrees_with_pairwise_check(entries):
    index, verdicts = PrefixOwners(), []
    for prefix, name in entries:
        clash = index.first_overlap(prefix)
        verdicts.append(clash)
        if clash is None:
            index.add(prefix, name)
    assert verdicts == naive(entries)


def test_examples():
    index = PrefixOwners()
    index.add(IPv4Network("10.0.1.0/24"), "a")
    index.add(IPv4Network("10.0.3.0/24"), "b")
    assert index.first_overlap(IPv4Network("10.0.0.0/16")) == (IPv4Network("10.0.1.0/24"), "a")
    assert index.first_overlap(IPv4Network("10.0.3.128/25")) == (IPv4Network("10.0.3.0/24"), "b")
    assert index.first_overlap(IPv4Network("10.0.2.0/24")) is None
    assert index.first_overlap(IPv4Network("0.0.0.0/0")) == (IPv4Network("10.0.1.0/24"), "a")
    assert index.first_overlap(IPv4Network("10.0.3.0/24")) == (IPv4Network("10.0.3.0/24"), "b")
