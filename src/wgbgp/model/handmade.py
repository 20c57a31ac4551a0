"""Read a hand-made setup: wg-quick configs, frr.conf, bird.conf. Pure (text in, facts out).

Only what `wgbgp adopt` can map is extracted; every line that says something this does
not understand is kept in `unknown`, so that adopt can report it instead of dropping it.
The private key is never extracted as text to show: `WgQuick.private_key` holds it only
so the caller can derive the public key and copy it where wgbgp's configs read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
    ip_interface,
    ip_network,
)

Address = IPv4Address | IPv6Address
Prefix = IPv4Network | IPv6Network


@dataclass
class WgPeer:
    name: str | None  # from a `# name` comment right after [Peer], if any
    public_key: str | None = None
    endpoint: str | None = None
    allowed_ips: list[Prefix] = field(default_factory=list)
    keepalive: int | None = None
    preshared: bool = False


@dataclass
class WgQuick:
    """One wg-quick config: its interface section and peers."""

    interface: str
    addresses: list[IPv4Interface | IPv6Interface] = field(default_factory=list)
    private_key: str | None = None  # inline PrivateKey (never shown)
    private_key_file: str | None = None  # PostUp = wg set %i private-key FILE
    listen_port: int | None = None
    mtu: int | None = None
    table: str | None = None
    peers: list[WgPeer] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


_KEYFILE = re.compile(r"wg set %i private-key (\S+)")


def parse_wg_quick(interface: str, text: str) -> WgQuick:
    """The facts of one wg-quick file (named after `interface`)."""
    conf = WgQuick(interface)
    section = ""
    peer: WgPeer | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            # `# vps` right after [Peer] names that peer (wgbgp and many recipes do it).
            words = line.lstrip("#").split()
            if section == "peer" and peer is not None and peer.name is None and words \
                    and peer.public_key is None:
                peer.name = words[0]
            continue
        if line.startswith("["):
            section = line.strip("[]").strip().lower()
            if section == "peer":
                peer = WgPeer(None)
                conf.peers.append(peer)
            continue
        key, _, value = (p.strip() for p in line.partition("="))
        if key.lower() not in ("postup", "postdown", "preup", "predown"):
            value = value.split("#", 1)[0].strip()
        k = key.lower()
        if section == "interface":
            if k == "address":
                conf.addresses += [ip_interface(a.strip()) for a in value.split(",") if a.strip()]
            elif k == "privatekey":
                conf.private_key = value
            elif k == "listenport":
                conf.listen_port = int(value)
            elif k == "mtu":
                conf.mtu = int(value)
            elif k == "table":
                conf.table = value
            elif k == "postup" and (found := _KEYFILE.search(value)):
                conf.private_key_file = found.group(1)
            else:
                conf.unknown.append(f"{interface}.conf [Interface] {key} = {_shown(key, value)}")
        elif section == "peer" and peer is not None:
            if k == "publickey":
                peer.public_key = value
            elif k == "endpoint":
                peer.endpoint = value
            elif k == "allowedips":
                peer.allowed_ips += [ip_network(a.strip(), strict=False)
                                     for a in value.split(",") if a.strip()]
            elif k == "persistentkeepalive":
                peer.keepalive = int(value) if value.isdigit() else None
            elif k == "presharedkey":
                peer.preshared = True
            else:
                conf.unknown.append(f"{interface}.conf [Peer] {key} = {_shown(key, value)}")
    return conf


_KEYLIKE = re.compile(r"[A-Za-z0-9+/]{42,43}=")


def _shown(key: str, value: str) -> str:
    """A value fit to print: a key's value is never repeated, nor anything in a hook that
    looks like a key (44 base64 characters)."""
    if "key" in key.lower():
        return "(not shown)"
    return _KEYLIKE.sub("(a key, not shown)", value)


def _masked(line: str) -> str:
    """A config line to report: cut before any password or key it may hold."""
    m = re.search(r"\b(password|key|secret)\b", line, re.I)
    return line[:m.end()] + " (rest not shown)" if m else _shown("", line)


@dataclass
class Neighbor:
    address: Address
    asn: int | None = None
    description: str | None = None
    multihop: int | None = None
    route_map_in: str | None = None
    route_map_out: str | None = None
    prefix_list_in: str | None = None
    prefix_list_out: str | None = None
    password: bool = False
    group: str | None = None


@dataclass
class RouteMapEntry:
    action: str  # permit / deny
    seq: int
    lines: list[str] = field(default_factory=list)


@dataclass
class BgpConf:
    """A BGP speaker's facts, from FRR or BIRD."""

    daemon: str
    asn: int | None = None
    router_id: str | None = None
    networks: list[Prefix] = field(default_factory=list)
    neighbors: dict[str, Neighbor] = field(default_factory=dict)
    prefix_lists: dict[str, list[tuple[str, Prefix, str]]] = field(default_factory=dict)
    route_maps: dict[str, list[RouteMapEntry]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    # BIRD: the prefix set each neighbour's import filter accepts, when it is a plain one.
    import_sets: dict[str, list[Prefix]] = field(default_factory=dict)


_PL = re.compile(r"^(?:ip|ipv6) prefix-list (\S+)(?: seq \d+)? (permit|deny) (\S+)(.*)$")
_IGNORED_FRR = re.compile(r"^(frr (version|defaults)|hostname|log |service |line vty|"
                          r"end$|exit|!|no ipv6 forwarding|ip forwarding|no ip forwarding|"
                          r"ipv6 forwarding|password|enable password|interface |"
                          r"bgp log-neighbor-changes|no bgp ebgp-requires-policy|"
                          r"bgp ebgp-requires-policy)")


def parse_frr(text: str) -> BgpConf:
    """The facts of an frr.conf (router bgp, its neighbours, prefix-lists, route-maps)."""
    conf = BgpConf("frr")
    context = ""
    rmap: RouteMapEntry | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("!"):
            continue
        if m := _PL.match(line):
            name, action, prefix, rest = m.groups()
            conf.prefix_lists.setdefault(name, []).append(
                (action, ip_network(prefix, strict=False), rest.strip()))
            continue
        if m := re.match(r"^router bgp (\d+)", line):
            context, conf.asn = "bgp", int(m.group(1))
            continue
        if m := re.match(r"^route-map (\S+) (permit|deny) (\d+)$", line):
            context = "route-map"
            rmap = RouteMapEntry(m.group(2), int(m.group(3)))
            conf.route_maps.setdefault(m.group(1), []).append(rmap)
            continue
        if line.startswith(("address-family", "exit-address-family")):
            continue
        if line in ("exit", "end"):
            context = ""
            continue
        if context == "route-map" and rmap is not None and raw[:1].isspace():
            rmap.lines.append(line)
            continue
        if context == "bgp" and raw[:1].isspace():
            _frr_bgp_line(conf, line)
            continue
        context = ""
        if not _IGNORED_FRR.match(line):
            conf.unknown.append(f"frr.conf: {_masked(line)}")
    return conf


def _frr_bgp_line(conf: BgpConf, line: str) -> None:
    if m := re.match(r"^bgp router-id (\S+)$", line):
        conf.router_id = m.group(1)
        return
    if m := re.match(r"^network (\S+)$", line):
        conf.networks.append(ip_network(m.group(1), strict=False))
        return
    if m := re.match(r"^neighbor (\S+) (.+)$", line):
        who, rest = m.groups()
        try:
            ip_address(who)
        except ValueError:  # a peer-group: its options apply to its members
            conf.neighbors.setdefault(f"group:{who}", Neighbor(IPv4Address(0)))
            _neighbor_option(conf, conf.neighbors[f"group:{who}"], rest, line)
            return
        n = conf.neighbors.setdefault(who, Neighbor(ip_address(who)))
        _neighbor_option(conf, n, rest, line)
        return
    if not re.match(r"^(bgp log-neighbor-changes|no bgp ebgp-requires-policy|"
                    r"no bgp default ipv4-unicast|timers bgp .*)$", line):
        conf.unknown.append(f"frr.conf router bgp: {_masked(line)}")


def _neighbor_option(conf: BgpConf, n: Neighbor, rest: str, line: str) -> None:
    words = rest.split()
    if words[0] == "remote-as" and words[1].isdigit():
        n.asn = int(words[1])
    elif words[0] == "description":
        n.description = " ".join(words[1:])
    elif words[0] == "ebgp-multihop":
        n.multihop = int(words[1]) if len(words) > 1 else 255
    elif words[0] == "route-map" and len(words) == 3:
        setattr(n, f"route_map_{words[2]}", words[1])
    elif words[0] == "prefix-list" and len(words) == 3:
        setattr(n, f"prefix_list_{words[2]}", words[1])
    elif words[0] == "password":
        n.password = True
    elif words[0] == "peer-group" and len(words) == 2:
        n.group = words[1]
    elif words[0] in ("peer-group", "activate", "timers", "update-source", "soft-reconfiguration",
                      "maximum-prefix", "capability"):
        pass
    else:
        conf.unknown.append(f"frr.conf router bgp: {_masked(line)}")


def permitted(conf: BgpConf, route_map: str) -> tuple[list[Prefix] | None, str]:
    """The prefixes an inbound route-map lets in, when it is the plain kind: permit entries
    that only match prefix-lists of exact `permit` lines. (None, why) otherwise."""
    entries = conf.route_maps.get(route_map)
    if entries is None:
        return None, f"route-map {route_map} is used but not defined"
    out: list[Prefix] = []
    for e in sorted(entries, key=lambda e: e.seq):
        if e.action != "permit":
            return None, f"route-map {route_map} {e.action} {e.seq} (a deny entry)"
        for line in e.lines:
            m = re.match(r"^match (?:ip|ipv6) address prefix-list (\S+)$", line)
            if not m:
                return None, f"route-map {route_map} {e.seq}: '{line}'"
            found, why = prefix_list(conf, m.group(1))
            if found is None:
                return None, why
            out += found
        if not e.lines:
            return None, f"route-map {route_map} {e.seq} permits everything"
    return out, ""


def prefix_list(conf: BgpConf, name: str) -> tuple[list[Prefix] | None, str]:
    """The prefixes of a prefix-list of exact permits; (None, why) for any other kind."""
    entries = conf.prefix_lists.get(name)
    if entries is None:
        return None, f"prefix-list {name} is used but not defined"
    out = []
    for action, prefix, rest in entries:
        if action != "permit" or rest:
            return None, f"prefix-list {name}: '{action} {prefix} {rest}'"
        out.append(prefix)
    return out, ""


def parse_bird(text: str) -> BgpConf:
    """The facts of a bird.conf: BGP protocols (local as, neighbor, multihop, a plain
    import filter `where net ~ [ ... ]`) and static routes (what it announces)."""
    conf = BgpConf("bird")
    body = re.sub(r"#[^\n]*", "", text)
    if m := re.search(r"\brouter id ([\d.]+);", body):
        conf.router_id = m.group(1)
    for m in re.finditer(r"protocol static\s*(\w*)\s*\{(.*?)\n\}", body, re.S):
        for r in re.finditer(r"route ([0-9a-fA-F:.]+/\d+)", m.group(2)):
            conf.networks.append(ip_network(r.group(1), strict=False))
    for m in re.finditer(r"protocol bgp\s+(\w+)\s*(?:from \w+\s*)?\{(.*?)\n\}", body, re.S):
        name, block = m.groups()
        if a := re.search(r"local(?: [0-9a-fA-F:.]+)? as (\d+);", block):
            conf.asn = int(a.group(1))
        n = re.search(r"neighbor ([0-9a-fA-F:.]+) as (\d+);", block)
        if n is None:
            conf.unknown.append(f"bird.conf protocol bgp {name}: no neighbor ADDRESS as ASN")
            continue
        neighbor = Neighbor(ip_address(n.group(1)), int(n.group(2)), description=name)
        if mh := re.search(r"multihop(?: (\d+))?;", block):
            neighbor.multihop = int(mh.group(1) or 64)
        if "password" in block:
            neighbor.password = True
        conf.neighbors[n.group(1)] = neighbor
        imp = re.search(r"import (.*?);", block, re.S)
        if imp and (s := re.fullmatch(r"where net ~ \[(.*)\]", imp.group(1).strip(), re.S)):
            conf.import_sets[n.group(1)] = [ip_network(p.strip(), strict=False)
                                            for p in s.group(1).split(",") if p.strip()]
        elif imp:
            conf.unknown.append(f"bird.conf protocol bgp {name}: import "
                                f"{_masked(imp.group(1).strip())}")
    return conf
