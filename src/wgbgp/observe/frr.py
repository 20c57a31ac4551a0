"""BGP state from FRRouting's JSON output. Pure: JSON text in, typed objects out.

Sources (all `vtysh -c '... json'`, never the text tables):
- `show bgp summary json`: router id, local AS, per neighbour state, uptime, prefix counts;
- `show bgp neighbors json`: per neighbour detail: multihop TTL
  (`externalBgpNbrMaxHopsAway`, absent = 1), policy configured per direction
  (`inboundPathPolicyConfig`/`outboundPathPolicyConfig`, prefix-list / route-map names),
  last reset and last NOTIFICATION reason (e.g. "Bad Peer AS");
- `show bgp ipv4 unicast json`: the BGP table: which prefixes came from whom;
- `show ip route bgp json`: what zebra selected and installed in the kernel.

Field names are those of FRR 8.4; missing fields are tolerated (older/newer FRR).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ESTABLISHED = "Established"


class FrrJsonError(ValueError):
    """Output that is not the JSON FRR prints for that command."""


@dataclass(frozen=True)
class BgpNeighbor:
    """One configured BGP neighbour and its session."""

    address: str
    state: str  # Established, Idle, Connect, Active, OpenSent, OpenConfirm, Clearing...
    remote_as: int | None = None
    local_as: int | None = None
    description: str | None = None
    hostname: str | None = None  # the peer's hostname, from the hostname capability
    peer_group: str | None = None
    established_for: float | None = None  # seconds, when Established
    prefixes_received: int | None = None  # accepted (after inbound policy)
    prefixes_sent: int | None = None
    # Detail from `show bgp neighbors json` (None when that was not collected).
    multihop: int | None = None  # eBGP TTL: 1 = directly connected only
    policy_in: bool | None = None
    policy_out: bool | None = None
    filters_in: tuple[str, ...] = ()  # e.g. ("prefix-list FROM-friend",)
    filters_out: tuple[str, ...] = ()
    last_reset: str | None = None
    last_notification: str | None = None
    connections_established: int | None = None
    connections_dropped: int | None = None
    admin_down: bool = False
    # FRR says it discards every outbound update for want of an export policy (RFC 8212,
    # `bgp ebgp-requires-policy`, on by default): it sends this neighbour nothing.
    outbound_discarded: bool = False

    @property
    def established(self) -> bool:
        return self.state == ESTABLISHED

    @property
    def name(self) -> str:
        return self.description or self.hostname or self.address

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "name": self.name,
            "state": self.state,
            "remote_as": self.remote_as,
            "local_as": self.local_as,
            "uptime": self.established_for,
            "prefixes_received": self.prefixes_received,
            "prefixes_sent": self.prefixes_sent,
            "multihop": self.multihop,
            "policy_in": self.policy_in,
            "policy_out": self.policy_out,
            "filters_in": list(self.filters_in),
            "filters_out": list(self.filters_out),
            "last_reset": self.last_reset,
            "last_notification": self.last_notification,
        }


@dataclass(frozen=True)
class BgpPath:
    """One path for a prefix in the BGP table."""

    prefix: str
    peer: str | None  # neighbour address; None for locally originated
    valid: bool
    best: bool
    as_path: str = ""
    nexthop: str | None = None


@dataclass(frozen=True)
class Route:
    """A route in zebra's RIB (from `show ip route ... json`)."""

    prefix: str
    protocol: str
    selected: bool
    installed: bool
    nexthops: tuple[str, ...] = ()  # "10.0.0.2 via wg-vps", "wg-vps"
    interfaces: tuple[str, ...] = ()
    distance: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "protocol": self.protocol, "selected": self.selected,
                "installed": self.installed, "nexthops": list(self.nexthops)}


@dataclass(frozen=True)
class BgpStatus:
    """A BGP speaker as FRR reports it."""

    router_id: str | None
    asn: int | None
    neighbors: tuple[BgpNeighbor, ...] = ()
    paths: tuple[BgpPath, ...] = ()
    routes: tuple[Route, ...] = field(default=())  # BGP routes in zebra

    def neighbor(self, address: str) -> BgpNeighbor | None:
        return next((n for n in self.neighbors if n.address == address), None)

    def paths_for(self, prefix: str) -> tuple[BgpPath, ...]:
        return tuple(p for p in self.paths if p.prefix == prefix)

    def route(self, prefix: str) -> Route | None:
        return next((r for r in self.routes if r.prefix == prefix), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "router_id": self.router_id,
            "asn": self.asn,
            "neighbors": [n.to_json() for n in self.neighbors],
            "routes": [r.to_json() for r in self.routes],
        }


def loads(text: str, what: str) -> Any:
    """FRR JSON, or FrrJsonError saying which command's output was unreadable."""
    text = text.strip()
    if not text:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        first = text.splitlines()[0][:120]
        raise FrrJsonError(f"`{what}` did not print JSON: {first!r} ({exc.msg})") from None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_summary(text: str) -> tuple[str | None, int | None, dict[str, dict[str, Any]]]:
    """`show bgp summary json` -> (router id, local AS, {neighbour address: fields})."""
    data = loads(text, "show bgp summary json")
    if not isinstance(data, dict):
        return None, None, {}
    # One object per address family; IPv6 sessions appear under ipv6Unicast only.
    afs = [data[k] for k in ("ipv4Unicast", "ipv6Unicast") if isinstance(data.get(k), dict)]
    if not afs:
        return None, None, {}
    peers: dict[str, dict[str, Any]] = {}
    for af in afs:
        for address, fields in (af.get("peers") or {}).items():
            peers.setdefault(address, fields)
    return afs[0].get("routerId"), _int(afs[0].get("as")), peers


def _filters(af: dict[str, Any], direction: str) -> tuple[str, ...]:
    """Names of the policies applied in one direction ("in"/"out") of one address family."""
    keys = {
        "in": (("incomingUpdatePrefixFilterList", "prefix-list"),
               ("routeMapForIncomingAdvertisements", "route-map"),
               ("incomingUpdateNetworkFilterList", "distribute-list"),
               ("incomingUpdateAsPathFilterList", "filter-list")),
        "out": (("outgoingUpdatePrefixFilterList", "prefix-list"),
                ("routeMapForOutgoingAdvertisements", "route-map"),
                ("outgoingUpdateNetworkFilterList", "distribute-list"),
                ("outgoingUpdateAsPathFilterList", "filter-list")),
    }[direction]
    return tuple(f"{kind} {af[k]}" for k, kind in keys if af.get(k))


def _state(fields: dict[str, Any]) -> str:
    return str(fields.get("bgpState") or fields.get("state") or "Unknown")


def parse_neighbors(summary: str, neighbors: str | None = None) -> tuple[
        str | None, int | None, tuple[BgpNeighbor, ...]]:
    """Summary (required) and neighbour detail (optional) -> (router id, AS, neighbours)."""
    router_id, asn, peers = parse_summary(summary)
    detail: dict[str, dict[str, Any]] = {}
    if neighbors is not None:
        data = loads(neighbors, "show bgp neighbors json")
        if isinstance(data, dict):
            detail = {k: v for k, v in data.items() if isinstance(v, dict)}
    out = []
    for address in [*peers, *(a for a in detail if a not in peers)]:
        s = peers.get(address, {})
        d = detail.get(address, {})
        state = _state(d) if d else _state(s)
        families = d.get("addressFamilyInfo") or {}
        af = families.get("ipv4Unicast") or families.get("ipv6Unicast") or {}
        established = state == ESTABLISHED
        up_ms = d.get("bgpTimerUpMsec", s.get("peerUptimeMsec"))
        received = s.get("pfxRcd", af.get("acceptedPrefixCounter"))
        sent = s.get("pfxSnt", af.get("sentPrefixCounter"))
        multihop = None
        if d:
            # Absent for a directly connected eBGP neighbour, i.e. TTL 1.
            multihop = _int(d.get("externalBgpNbrMaxHopsAway")) or 1
        out.append(BgpNeighbor(
            address=address,
            state=state,
            remote_as=_int(d.get("remoteAs", s.get("remoteAs"))),
            local_as=_int(d.get("localAs", s.get("localAs"))),
            description=d.get("nbrDesc") or s.get("desc"),
            hostname=d.get("hostname") or s.get("hostname"),
            peer_group=d.get("peerGroup"),
            established_for=(int(up_ms) / 1000 if established and up_ms is not None else None),
            prefixes_received=_int(received) if established else None,
            prefixes_sent=_int(sent) if established else None,
            multihop=multihop,
            policy_in=bool(af.get("inboundPathPolicyConfig")) if d else None,
            policy_out=bool(af.get("outboundPathPolicyConfig")) if d else None,
            filters_in=_filters(af, "in"),
            filters_out=_filters(af, "out"),
            last_reset=d.get("lastResetDueTo"),
            last_notification=_notification(d),
            connections_established=_int(d.get("connectionsEstablished",
                                                s.get("connectionsEstablished"))),
            connections_dropped=_int(d.get("connectionsDropped", s.get("connectionsDropped"))),
            admin_down="Admin" in state or bool(d.get("adminShutDown")),
            outbound_discarded=any("missing policy" in str(f.get("outboundEbgpRequiresPolicy",
                                                                 "")).lower()
                                   for f in families.values() if isinstance(f, dict)),
        ))
    return router_id, asn, tuple(out)


def _notification(d: dict[str, Any]) -> str | None:
    """The last NOTIFICATION sent or received, in FRR's words."""
    reason = d.get("lastNotificationReason")
    if reason:
        return str(reason).strip()
    error = d.get("lastErrorCodeSubcode")
    return f"error {error}" if error else None


def parse_table(text: str) -> tuple[BgpPath, ...]:
    """`show bgp ipv4 unicast json` -> every path of every prefix."""
    data = loads(text, "show bgp ipv4 unicast json")
    routes = data.get("routes") if isinstance(data, dict) else None
    out = []
    for prefix, paths in (routes or {}).items():
        for p in paths if isinstance(paths, list) else []:
            peer = p.get("peerId")
            nexthops = p.get("nexthops") or []
            out.append(BgpPath(
                prefix=prefix,
                peer=None if peer in (None, "(unspec)") else str(peer),
                valid=bool(p.get("valid")),
                best=bool(p.get("bestpath")),
                as_path=str(p.get("path") or ""),
                nexthop=nexthops[0].get("ip") if nexthops else None,
            ))
    return tuple(out)


def parse_routes(text: str, protocols: tuple[str, ...] | None = None) -> tuple[Route, ...]:
    """`show ip route [bgp] json` -> routes (optionally only those of some protocols)."""
    data = loads(text, "show ip route json")
    out = []
    for prefix, entries in (data or {}).items() if isinstance(data, dict) else ():
        for e in entries if isinstance(entries, list) else []:
            proto = str(e.get("protocol", ""))
            if protocols and proto not in protocols:
                continue
            hops, ifaces = [], []
            for nh in e.get("nexthops") or []:
                iface = nh.get("interfaceName")
                if nh.get("blackhole"):
                    hops.append("blackhole")
                elif nh.get("ip"):
                    hops.append(f"{nh['ip']} via {iface}" if iface else str(nh["ip"]))
                elif iface:
                    hops.append(str(iface))
                if iface:
                    ifaces.append(str(iface))
            out.append(Route(prefix=prefix, protocol=proto, selected=bool(e.get("selected")),
                             installed=bool(e.get("installed")), nexthops=tuple(hops),
                             interfaces=tuple(ifaces), distance=_int(e.get("distance"))))
    return tuple(out)
