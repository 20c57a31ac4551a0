"""Policy checks: the import-policy knobs (max_prefixes, more_specifics), Internet exits,
and the warnings about a topology that works but may not do what was meant (no keys yet,
nothing announced, an MTU too large, a mesh too big, hubs tied in preference)."""

from __future__ import annotations

from collections.abc import Iterator

from ...words import plural
from ..addressing import implied_overlay6, overlay6
from ..derive import hub_preferences
from ..issues import Issue, error, warning
from ..schema import MoreSpecifics, Node, Topology

MESH_SESSIONS_HINT = 30  # clients past which a full mesh gets heavy


def check_lints(t: Topology) -> Iterator[Issue]:
    for section, name, m in t.located():
        if not m.public_key:
            yield warning((section, name), f"{name} has no public_key yet",
                          f"run `wgbgp keygen {name}` on {name} and paste the public key")
    for name, node in t.nodes.items():
        if not node.announce:
            yield warning(("nodes", name), f"{name} announces no prefixes",
                          "add the addresses it should make reachable under 'announce'")
    if implied_overlay6(t):
        yield warning(("network",), "IPv6 prefixes are announced but no overlay6 is declared: "
                      f"tunnels get IPv6 addresses from {overlay6(t)} (a ULA derived from the "
                      "network name)", f"write 'overlay6: {overlay6(t)}' (or 'auto') to say so")
    if t.network.mtu > 1420:
        yield warning(("network", "mtu"), f"MTU {t.network.mtu} exceeds 1420, the largest that "
                      "fits WireGuard over a 1500-byte path; large packets may be dropped",
                      "leave mtu out (1420) unless every underlay path carries jumbo frames")
    if t.network.mode == "mesh" and t.peerings is None and len(t.nodes) > MESH_SESSIONS_HINT:
        n = len(t.nodes)
        planes = f" on each of {len(t.hubs)} hubs" if len(t.hubs) > 1 else ""
        yield warning(("network", "mode"), f"a full mesh of {plural(n, 'client')} needs "
                      f"{plural(n * (n - 1) // 2, 'BGP session')}{planes}",
                      "set 'mode: hub' (one session per client, to the hub as route server; "
                      "give the hub an 'asn'), or list only the peerings you need under "
                      "'peerings'")
    prefs: dict[int, list[str]] = {}
    for name, pref in hub_preferences(t).items():
        prefs.setdefault(pref, []).append(name)
    for pref, names in prefs.items():
        if len(names) > 1:
            yield warning(("hubs", names[1], "preference"),
                          f"hubs {', '.join(names)} have the same preference ({pref}): which "
                          "plane carries traffic is left to BGP's tie-breaking",
                          "give the hub that should carry traffic a higher 'preference'")


def check_policy(t: Topology) -> Iterator[Issue]:
    """The import-policy knobs must make sense for what the node declares."""
    for name, node in t.nodes.items():
        if node.more_specifics is not None:
            yield from _more_specifics(name, node)
        if node.max_prefixes is not None and node.max_prefixes < len(node.announce):
            yield error(("nodes", name, "max_prefixes"),
                        f"max_prefixes {node.max_prefixes} is below the {len(node.announce)} "
                        "prefixes this node announces: its sessions would close at once",
                        f"use at least {len(node.announce)}, or leave it out")


def _more_specifics(name: str, node: Node) -> Iterator[Issue]:
    """more_specifics against the prefixes of each family: a length per family, each from
    the longest announced prefix of that family to /32 (IPv4) or /128 (IPv6)."""
    loc = ("nodes", name, "more_specifics")
    per_family = isinstance(node.more_specifics, MoreSpecifics)
    if not node.announce:
        yield warning(loc, f"{name} announces nothing, so more_specifics has no effect",
                      "remove it, or list the prefixes under 'announce'")
        return
    both = {p.version for p in node.announce} == {4, 6}
    for version, bits in ((4, 32), (6, 128)):
        length = node.more_specifics_of(version)
        prefixes = [p for p in node.announce if p.version == version]
        where = (*loc, f"ipv{version}") if per_family else loc
        if length is None:
            continue
        if not prefixes:
            if per_family:
                yield warning(where, f"{name} announces no IPv{version} prefix, so "
                              f"more_specifics.ipv{version} has no effect",
                              f"remove ipv{version}, or announce an IPv{version} prefix")
            continue
        longest = max(p.prefixlen for p in prefixes)
        per_family_fix = (" (or one length per family: {ipv4: N, ipv6: M})"
                          if both and not per_family else "")
        if length > bits:
            yield error(where, f"more_specifics /{length} is longer than an IPv{version} "
                        f"prefix can be (/{bits}), and {name} announces "
                        f"{prefixes[0]}", f"use a length from /{longest} to /{bits}"
                        + per_family_fix)
        elif length < longest:
            shorter = next(p for p in prefixes if p.prefixlen > length)
            yield error(where, f"more_specifics /{length} is shorter than the announced "
                        f"{shorter}", f"use a length from /{longest} to /{bits}"
                        + per_family_fix + ", or leave it out")


def check_exits(t: Topology) -> Iterator[Issue]:
    exits = [name for name, hub in t.hubs.items() if hub.exit]
    wanted = [name for name, node in t.nodes.items() if node.exit]
    if not exits:
        for name in wanted:
            yield error(("nodes", name, "exit"),
                        f"{name} asks for an exit to the Internet, but no hub provides one",
                        "set 'exit: true' on the hub that should forward its Internet traffic, "
                        "or remove 'exit' here")
    elif not wanted:
        for name in exits:
            yield warning(("hubs", name, "exit"), f"hub {name} offers an exit no node uses",
                          "set 'exit: true' on the nodes that may use it, or remove it here")
