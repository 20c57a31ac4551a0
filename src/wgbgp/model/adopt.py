"""A hand-made setup as topology entries (`wgbgp adopt`). Pure.

From one machine's wg-quick config and BGP daemon config (model/handmade.py reads them),
the entries that describe it: the network's overlay, the hub its tunnel dials, the
machine itself, and the BGP neighbours it has, each with what its import policy lets
them send. What cannot be mapped is listed, and so is what changes when wgbgp takes over
(the classic recipe's gaps: a hub peer allowing only the hub's /32, no keepalive, no
outbound policy), so that the migration is one reviewed step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface
from typing import Any

from .edit import add_machine
from .fields import HUB_NAME_MAX, NAME_RE
from .handmade import BgpConf, Neighbor, Prefix, WgPeer, WgQuick, permitted, prefix_list
from .schema import Hub, Node, Topology


class AdoptError(ValueError):
    """The setup lacks something adopt needs (says what, and how to give it)."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass
class Adoption:
    """Topology entries for one hand-made machine, and what the report says about it."""

    network: dict[str, Any]
    hub_name: str
    hub: dict[str, Any]
    node_name: str
    node: dict[str, Any]
    peers: dict[str, dict[str, Any]] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    interface: str = ""
    hub_asn: int | None = None  # set when a neighbour is the hub (a route server)


def _name(raw: str | None, fallback: str, max_len: int = 32) -> str:
    """A topology name from free text ('Friend's laptop' -> 'friend-s-laptop')."""
    if raw:
        name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:max_len].strip("-")
        if NAME_RE.match(name):
            return name
    return fallback


def hub_peer(wg: WgQuick) -> WgPeer:
    """The peer this machine dials: the one with an Endpoint."""
    dialled = [p for p in wg.peers if p.endpoint]
    if not dialled:
        raise AdoptError(f"{wg.interface}.conf has no [Peer] with an Endpoint, so no hub to "
                         "dial", "adopt a node of a hub-and-spoke setup (its hub peer has "
                         "Endpoint = HOST:PORT)")
    return dialled[0]


def adopt(name: str, wg: WgQuick, bgp: BgpConf | None, public_key: str, *,
          network: str = "adopted", hub_name: str | None = None) -> Adoption:
    """The entries describing this machine, from its wg-quick config `wg` and BGP daemon
    config `bgp` (None: no daemon config found); `public_key` derived from its key."""
    v4 = next((a for a in wg.addresses if isinstance(a, IPv4Interface)), None)
    v6 = next((a for a in wg.addresses if isinstance(a, IPv6Interface)), None)
    if v4 is None and v6 is None:
        raise AdoptError(f"{wg.interface}.conf has no Address", "add the machine's tunnel "
                         "address (Address = 10.0.0.10/24) and adopt again")
    peer = hub_peer(wg)
    if not peer.public_key:
        raise AdoptError(f"{wg.interface}.conf's hub peer has no PublicKey",
                         "add the hub's public key to it and adopt again")
    hname = _name(hub_name or peer.name, "hub", HUB_NAME_MAX)
    net: dict[str, Any] = {"name": network}
    if v4 is not None:
        net["overlay"] = str(v4.network)
    if v6 is not None:
        net["overlay6"] = str(v6.network)
    hub: dict[str, Any] = {"endpoint": peer.endpoint}
    in_overlay = [p for p in peer.allowed_ips if p.num_addresses == 1 and any(
        p.network_address in a.network for a in (v4, v6) if a is not None)]
    for p in in_overlay:
        hub["address" if p.version == 4 else "address6"] = str(p.network_address)
    hub["public_key"] = peer.public_key
    node: dict[str, Any] = {"asn": bgp.asn if bgp and bgp.asn else None}
    if v4 is not None:
        node["address"] = str(v4.ip)
    if v6 is not None:
        node["address6"] = str(v6.ip)
    node["public_key"] = public_key
    a = Adoption(net, hname, hub, name, node, interface=wg.interface)
    a.unmapped += wg.unknown
    for other in wg.peers:
        if other is not peer:
            a.unmapped.append(f"{wg.interface}.conf: a second [Peer] "
                              f"({other.name or other.public_key}): a node has one peer per "
                              "hub; direct tunnels are not mapped")
    _tunnel_changes(a, wg, peer, hname)
    if bgp is None:
        a.unmapped.append("no BGP daemon config found (frr.conf or bird.conf): asn and "
                          "announce must be written by hand")
        node.pop("asn")
        node["announce"] = []
        return a
    if bgp.asn is None:
        a.unmapped.append(f"{bgp.daemon}.conf has no local ASN: write nodes.{name}.asn")
        node.pop("asn")
    if bgp.daemon != "frr":
        node["daemon"] = bgp.daemon
    node["announce"] = [str(p) for p in bgp.networks]
    if not bgp.networks:
        a.unmapped.append(f"{bgp.daemon}.conf announces nothing wgbgp can read (no `network` "
                          "/ static route): write nodes." + name + ".announce")
    a.unmapped += bgp.unknown
    _neighbors(a, bgp, v4, v6)
    return a


def _tunnel_changes(a: Adoption, wg: WgQuick, peer: WgPeer, hub: str) -> None:
    a.changes.append(f"{wg.interface} is replaced by wg-{hub} (same key, address and hub): "
                     f"take {wg.interface} down just before applying")
    wide = any(p.prefixlen == 0 for p in peer.allowed_ips)
    if not wide:
        shown = ", ".join(map(str, peer.allowed_ips)) or "nothing"
        a.changes.append(f"the hub peer allows only {shown}: wgbgp's tunnel sends everything "
                         "through the hub (AllowedIPs 0.0.0.0/0, ::/0 with Table = off), so "
                         "the other nodes' tunnel addresses and prefixes become reachable")
    if not peer.keepalive:
        a.changes.append("no PersistentKeepalive: wgbgp sends one every 25 s "
                         "(network.keepalive), which keeps the carrier's NAT mapping open")
    if wg.mtu and wg.mtu != 1420:
        a.network["mtu"] = wg.mtu
    if peer.preshared:
        a.unmapped.append(f"{wg.interface}.conf uses a PresharedKey: name it in "
                          "network.preshared_key (a 0600 file), never in the topology")
    if wg.listen_port:
        a.changes.append(f"ListenPort {wg.listen_port} is dropped: a node behind NAT only "
                         "dials out")


def _neighbors(a: Adoption, bgp: BgpConf, v4: IPv4Interface | None,
               v6: IPv6Interface | None) -> None:
    groups = {k[len("group:"):]: n for k, n in bgp.neighbors.items() if k.startswith("group:")}
    hub_addrs = {a.hub.get("address"), a.hub.get("address6")}
    for key, n in bgp.neighbors.items():
        if key.startswith("group:"):
            continue
        g = groups.get(n.group or "")
        asn = n.asn if n.asn is not None else (g.asn if g else None)
        where = f"{bgp.daemon}.conf neighbor {n.address}"
        if str(n.address) in hub_addrs:
            a.hub_asn = asn
            a.hub["asn"] = asn
            a.network["mode"] = "hub"
            continue
        if not any(n.address in i.network for i in (v4, v6) if i is not None):
            a.unmapped.append(f"{where}: outside the tunnel's subnet, not a node of this "
                              "overlay")
            continue
        if asn is None:
            a.unmapped.append(f"{where}: no remote-as")
            continue
        accept, why = _accepts(bgp, n, g)
        name = _peer_name(n, a, asn)
        entry: dict[str, Any] = {"asn": asn, "address" if n.address.version == 4
                                 else "address6": str(n.address)}
        entry["announce"] = [str(p) for p in accept or ()]
        if accept is None:
            a.unmapped.append(f"{where}: what it may send is not readable ({why}); write "
                              f"nodes.{name}.announce")
        a.peers[name] = entry
        out = n.route_map_out or n.prefix_list_out or (g and (g.route_map_out or
                                                               g.prefix_list_out))
        if not out and bgp.daemon == "frr":
            a.changes.append(f"{name} ({n.address}) has no outbound policy, so FRR sends it "
                             "nothing (RFC 8212): wgbgp exports this node's own prefixes")
        if not (n.multihop or (g and g.multihop)):
            a.changes.append(f"{name} is reached through the hub: wgbgp sets eBGP multihop 2 "
                             "(TTL 1 never arrives)")
        if n.password or (g and g.password):
            a.unmapped.append(f"{where} has a TCP-MD5 password: name it in "
                              "network.bgp_password (a 0600 file), never in the topology")


def _accepts(bgp: BgpConf, n: Neighbor, g: Neighbor | None) -> tuple[list[Prefix] | None, str]:
    if str(n.address) in bgp.import_sets:
        return bgp.import_sets[str(n.address)], ""
    rmap = n.route_map_in or (g.route_map_in if g else None)
    plist = n.prefix_list_in or (g.prefix_list_in if g else None)
    if rmap and plist:
        return None, "both a route-map and a prefix-list inbound"
    if rmap:
        return permitted(bgp, rmap)
    if plist:
        return prefix_list(bgp, plist)
    return None, "no inbound policy"


def _peer_name(n: Neighbor, a: Adoption, asn: int) -> str:
    hint = n.description or next((re.sub(r"^(from|in|import)[-_]", "", m, flags=re.I)
                                  for m in (n.route_map_in, n.prefix_list_in) if m), None)
    name = _name(hint, f"as{asn}")
    while name in a.peers or name == a.node_name:
        name += "-2"
    return name


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


SKELETON = "network: {network}\nhubs:\nnodes:\n"


def standalone_text(a: Adoption, source: str) -> str:
    """A topology file holding just the adopted entries, with a header saying whence."""
    net = "{" + ", ".join(f"{k}: {v}" for k, v in a.network.items()) + "}"
    text = (f"# Adopted by `wgbgp adopt` on {a.node_name} from {source}.\n"
            "# Review it (and the report printed with it) before applying.\n"
            + SKELETON.format(network=net))
    text = add_machine(text, "hubs", a.hub_name, _clean(a.hub))
    text = add_machine(text, "nodes", a.node_name, _clean(a.node))
    for name, fields in a.peers.items():
        text = add_machine(text, "nodes", name, fields)
    return text


def merge(text: str, topo: Topology, a: Adoption) -> tuple[str, list[str]]:
    """`text` (the topology `topo`) with the adopted entries added where they are new:
    the hub and peers it already has are matched, never repeated. AdoptError on a clash."""
    notes = []
    overlay = a.network.get("overlay")
    if overlay and topo.network.overlay and str(topo.network.overlay) != overlay:
        raise AdoptError(f"{a.interface} is in {overlay}, the topology's overlay is "
                         f"{topo.network.overlay}", "adopt into a topology of the same "
                         "overlay (or print the entries without --into and edit them)")
    if a.node_name in topo.nodes or a.node_name in topo.hubs:
        raise AdoptError(f"{a.node_name} is already in the topology",
                         "pass --name with the name this machine should have")
    machines: list[tuple[str, Hub | Node]] = [*topo.hubs.items(), *topo.nodes.items()]
    for name, m in machines:
        if m.public_key == a.node["public_key"]:
            raise AdoptError(f"this machine's key is already {name}'s in the topology",
                             "nothing to adopt: apply that entry")
    hub = next((h for h, m in topo.hubs.items() if m.public_key == a.hub["public_key"]
                or m.endpoint == a.hub["endpoint"]), None)
    if hub is None:
        text = add_machine(text, "hubs", a.hub_name, _clean(a.hub))
    else:
        notes.append(f"hub {a.hub_name} is the topology's {hub}")
    text = add_machine(text, "nodes", a.node_name, _clean(a.node))
    for name, fields in a.peers.items():
        known = next((n for n, m in topo.nodes.items()
                      if str(m.address) == fields.get("address") or m.asn == fields["asn"]),
                     None)
        if known is not None:
            notes.append(f"neighbour {name} is the topology's {known}")
            continue
        text = add_machine(text, "nodes", name if name not in topo.nodes else f"{name}-2",
                           fields)
    return text, notes

