"""Address space no node may announce, and a sane floor on prefix lengths. Pure.

From the IANA special-purpose address registries (RFC 6890 and its updates) for IPv4 and
IPv6, plus IPv6 space the IETF has not allocated for unicast (RFC 4291).

Decisions:
- Entries meant for private use stay allowed: RFC 1918 (10/8, 172.16/12, 192.168/16),
  shared address space 100.64/10 (RFC 6598), unique local fc00::/7 (RFC 4193) and the
  local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215). Private prefixes are what people
  announce over an overlay.
- Documentation prefixes (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32,
  3fff::/20) stay allowed: they never appear on the Internet, so announcing them breaks
  nothing, and every example (this project's included) uses them.
- Globally reachable entries (AS112, AMT, the well-known NAT64 prefix 64:ff9b::/96) are
  ordinary routed space and stay allowed.
- Everything else in the registries is refused: a prefix inside such a block, or one
  covering it (announcing 0.0.0.0/1 would carry loopback and "this network").
"""

from __future__ import annotations

import re
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)

Prefix = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

# Prefixes shorter than this are refused unless the node sets `allow_short: true`:
# 128.0.0.0/1 or 2000::/3 is half (an eighth) of the Internet, not something one node owns.
MIN_LENGTH = {4: 8, 6: 16}

# (block, what it is): refused for announcements.
SPECIAL: tuple[tuple[Prefix, str], ...] = tuple((ip_network(net), what) for net, what in (
    ("0.0.0.0/8", "'this network' (RFC 791, RFC 6890)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link-local (RFC 3927)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.88.99.0/24", "the deprecated 6to4 relay anycast (RFC 7526)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved (RFC 1112), with 255.255.255.255 the limited broadcast "
     "(RFC 919)"),
    ("::/128", "the unspecified address (RFC 4291)"),
    ("::1/128", "loopback (RFC 4291)"),
    ("::ffff:0:0/96", "IPv4-mapped addresses (RFC 4291)"),
    ("::/96", "deprecated IPv4-compatible addresses (RFC 4291)"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("2001::/23", "IETF protocol assignments (Teredo, benchmarking, ORCHID; RFC 2928)"),
    ("2002::/16", "6to4 (RFC 3056), derived from IPv4 addresses"),
    ("5f00::/16", "segment routing SIDs (RFC 9602)"),
    ("fe80::/10", "link-local (RFC 4291)"),
    ("fec0::/10", "deprecated site-local (RFC 3879)"),
    ("ff00::/8", "multicast (RFC 4291)"),
))

# IPv6 space that holds unicast addresses at all: global unicast, unique local, NAT64.
# The rest is "reserved by the IETF" in the IPv6 address space registry.
IPV6_UNICAST: tuple[IPv6Network, ...] = tuple(IPv6Network(n) for n in (
    "2000::/3", "fc00::/7", "64:ff9b::/96", "64:ff9b:1::/48"))


# SPECIAL as integer ranges per family, (first, last, entry): every announced prefix is
# checked against every block, and ipaddress's overlaps() (Python, several attribute
# look-ups) made that the largest part of validating thousands of prefixes.
_SPECIAL_RANGES: dict[int, tuple[tuple[int, int, tuple[Prefix, str]], ...]] = {
    version: tuple((int(b.network_address), int(b.broadcast_address), (b, what))
                   for b, what in SPECIAL if b.version == version)
    for version in (4, 6)}


def special_purpose(prefix: Prefix) -> tuple[Prefix, str] | None:
    """The special-purpose block this prefix lies in or covers, or None when it is fine."""
    first = int(prefix.network_address)
    last = first + prefix.num_addresses - 1
    for start, end, entry in _SPECIAL_RANGES[prefix.version]:
        if start <= last and first <= end:  # two CIDR blocks overlap: one holds the other
            return entry
    if isinstance(prefix, IPv6Network) and not any(prefix.subnet_of(u) for u in IPV6_UNICAST):
        outside = next((u for u in IPV6_UNICAST if prefix.supernet_of(u)), None)
        if outside is None:
            return prefix, ("space the IETF has not allocated for unicast (RFC 4291: "
                            "global unicast is 2000::/3, unique local fc00::/7)")
        return prefix, ("more than global unicast (RFC 4291: global unicast is 2000::/3, "
                        "unique local fc00::/7)")
    return None


DOCUMENTATION: tuple[Prefix, ...] = tuple(ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"))


def is_public(address: IPv4Address | IPv6Address) -> bool:
    """Whether clients on the Internet can reach this address (a hub endpoint)."""
    return address.is_global


def host_bits_fix(text: str) -> str | None:
    """What to suggest for a prefix written with host bits set ('100.64.2.0/2'), never
    something broader than the user wrote; None when the text is no prefix at all.

    The network at the written length (64.0.0.0/2 here) covers addresses the user never
    wrote, so it is offered only when that length is at least the floor (10.0.0.1/8 ->
    10.0.0.0/8). The written address is always offered with the shortest length at an
    octet (IPv4) or hextet (IPv6) boundary that leaves no host bits (100.64.2.0/24)."""
    try:
        wide = ip_network(text.strip(), strict=False)
        address = ip_network(text.strip().split("/")[0])
    except ValueError:
        return None
    bits = wide.max_prefixlen
    value = int(address.network_address)
    needed = bits - ((value & -value).bit_length() - 1) if value else 0
    step = 8 if bits == 32 else 16
    length = max(wide.prefixlen, needed)
    length = min(bits, -(-length // step) * step)
    narrow = ip_network((value, length))
    options = [str(narrow)]
    if wide.prefixlen >= MIN_LENGTH[wide.version] and special_purpose(wide) is None:
        options.insert(0, str(wide))
    if len(options) == 1:
        return f"did you mean {options[0]}? (or set the host bits to zero)"
    return f"did you mean {options[0]} or {options[1]}?"


_SSH_TARGET = re.compile(
    r"^(?:ssh://)?(?:[^@\s/]+@)?(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:@\s/\[\]]+))"
    r"(?::\d+)?/?$")


def ssh_host(target: str) -> str | None:
    """The host of an `ssh:` target (user@host, ssh://user@host:port, [v6]:port)."""
    m = _SSH_TARGET.match(target.strip())
    return (m.group("v6") or m.group("host")) if m else None


def literal(host: str) -> IPv4Address | IPv6Address | None:
    """The address a host names when it is written as one, else None (a DNS name)."""
    try:
        return ip_address(host)
    except ValueError:
        return None
