"""model/addrindex.py answers as the linear scan it replaces, and special_purpose as
ipaddress's overlaps() over the registry."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from hypothesis import given
from hypothesis import strategies as st

from wgbgp.model.addrindex import AddressIndex
from wgbgp.model.special import SPECIAL, special_purpose

# Small spaces, so that prefixes often cover some of the addresses, and repeats happen.
V4 = st.integers(0, 255).map(lambda n: IPv4Address((10 << 24) + n))
V6 = st.integers(0, 255).map(lambda n: IPv6Address((0xFD << 120) + n))
P4 = st.tuples(st.integers(0, 255), st.integers(24, 32)).map(
    lambda t: IPv4Network(((10 << 24) + t[0], t[1]), strict=False))
P6 = st.tuples(st.integers(0, 255), st.integers(120, 128)).map(
    lambda t: IPv6Network(((0xFD << 120) + t[0], t[1]), strict=False))


@given(st.lists(V4 | V6, max_size=30), st.lists(P4 | P6, min_size=1, max_size=10))
def test_first_in_is_the_first_in_order(addresses, prefixes):
    index = AddressIndex((a, i) for i, a in enumerate(addresses))
    for prefix in prefixes:
        want = next((i for i, a in enumerate(addresses)
                     if a.version == prefix.version and a in prefix), None)
        assert index.first_in(prefix) == want


def _overlaps_scan(prefix):
    return next(((b, w) for b, w in SPECIAL if b.version == prefix.version
                 and b.overlaps(prefix)), None)


ANY4 = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
    lambda t: IPv4Network(t, strict=False))
# IPv6 near the registry's blocks, and anywhere.
ANY6 = st.tuples(st.sampled_from([0, 0x100 << 112, 0x2001 << 112, 0x2002 << 112,
                                  0xFE80 << 112, 0xFF00 << 112, 0xFFFF << 32])
                 | st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
    lambda t: IPv6Network(t, strict=False))


@given(ANY4 | ANY6)
def test_special_purpose_blocks_as_overlaps_finds_them(prefix):
    found = special_purpose(prefix)
    scan = _overlaps_scan(prefix)
    if scan is not None:
        assert found == scan
    else:  # only the IPv6 unicast rules may refuse it then, naming the prefix itself
        assert found is None or (prefix.version == 6 and found[0] == prefix)


def test_every_block_is_refused():
    for block, _ in SPECIAL:
        found = special_purpose(ip_network(block))
        assert found is not None and found == _overlaps_scan(block)
