"""Prometheus metrics of a machine's tunnels and BGP sessions (prometheus_client).

Every scrape collects fresh (`collect(executor)`: `wg show all dump` plus a few vtysh
JSON commands, ~0.1 s), so values are never stale and nothing runs between scrapes.

Metrics (all with label `machine`):
  wgbgp_up                                      1 when every source could be read
  wgbgp_source_ok{source}                       wg / bgp / ... readable
  wgbgp_wireguard_latest_handshake_seconds{interface,peer,name}  unix time, 0 = never
  wgbgp_wireguard_handshake_age_seconds{...}    seconds since (absent when never)
  wgbgp_wireguard_received_bytes_total{...}     counter
  wgbgp_wireguard_sent_bytes_total{...}         counter
  wgbgp_wireguard_persistent_keepalive_seconds{...}  0 = off
  wgbgp_bgp_session_up{neighbor,name,remote_as} 1 when Established
  wgbgp_bgp_session_state{neighbor,name,state}  1 for the current state (enum)
  wgbgp_bgp_session_uptime_seconds{...}         time Established
  wgbgp_bgp_prefixes_received{...} / wgbgp_bgp_prefixes_sent{...}
  wgbgp_bgp_routes_installed                    BGP routes in the kernel
  wgbgp_bgp_max_prefix_tripped{neighbor,name}   1 when the session was closed for sending
                                                more prefixes than allowed (maximum-prefix)
  wgbgp_hub_reachable{hub}                      clients: 1 when the tunnel to that hub had a
                                                handshake within 180 s (needs the topology)
  wgbgp_route_direct{prefix,name}               1 when the route's next hop is reached
                                                straight (a WireGuard peer that is no hub),
                                                0 through a hub (needs the topology)
  wgbgp_agent_up                                1 when the agent reconciled within 60 s
  wgbgp_agent_info{revision,source}             1: the topology revision the agent runs
  wgbgp_agent_last_reconcile_timestamp_seconds / wgbgp_agent_last_repair_timestamp_seconds
  wgbgp_agent_source_ok                         0 while the source cannot be read
  wgbgp_agent_refused{revision}                 1 while a newer revision stands refused
  wgbgp_agent_repairs_total / _errors_total / _bgp_kicks_total / _restarts_total /
  wgbgp_agent_endpoint_updates_total            counters since the agent started
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from ipaddress import ip_address, ip_network

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from ..compile import Plan
from ..transport import Executor
from .expect import Expected
from .frr import BgpNeighbor
from .status import AGENT_STALE, MachineStatus, collect

DEFAULT_LISTEN = "127.0.0.1:9586"
STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established")
# WireGuard gives up on a session 180 s after its handshake (REJECT_AFTER_TIME).
HANDSHAKE_DEAD = 180.0


def max_prefix_tripped(n: BgpNeighbor) -> bool:
    """The session is down because a side sent more prefixes than its maximum-prefix.

    FRR says so three ways: the state "Idle (PfxCt)", the reset reason "Reached received
    prefix count" on the side that closed it, and the Cease NOTIFICATION "Maximum Number
    of Prefixes Reached" on the side that sent too many."""
    if n.established:
        return False
    words = " ".join(w for w in (n.state, n.last_reset, n.last_notification) if w).lower()
    return "pfxct" in words or "prefix count" in words or "maximum number of prefixes" in words


def hub_reachability(status: MachineStatus, plan: Plan | None) -> dict[str, bool]:
    """A client's hubs -> whether its tunnel to each had a recent handshake."""
    if plan is None or plan.role != "client":
        return {}
    out = {}
    for t in plan.tunnels:
        iface = status.interface(t.interface)
        ages = [p.handshake_age(status.time) for p in iface.peers] if iface else []
        out[t.hub] = any(a is not None and a <= HANDSHAKE_DEAD for a in ages)
    return out


def route_paths(status: MachineStatus, names: Mapping[str, str], hubs: frozenset[str]
                ) -> list[tuple[str, str, bool]]:
    """(prefix, its next hop's machine, direct) for every BGP route whose next hop sits
    behind a WireGuard peer: direct when WireGuard sends it to a peer that is no hub.

    The next hop is the announcing machine's tunnel address whichever way the packets go
    (a mesh session runs through the hub, a route server keeps next hops), so the labels
    stay the same when the path changes: only the value does."""
    if status.bgp is None or not hubs:
        return []
    found = []
    for r in status.bgp.routes:
        for hop in r.nexthops:
            addr, _, dev = hop.partition(" via ")
            iface = status.interface(dev.strip() or (r.interfaces[0] if r.interfaces else ""))
            try:
                ip = ip_address(addr.strip())
            except ValueError:
                continue
            if iface is None:
                continue
            # WireGuard sends to the peer whose AllowedIPs match longest.
            best = max(((ip_network(a, strict=False).prefixlen, p) for p in iface.peers
                        for a in p.allowed_ips
                        if ip in ip_network(a, strict=False)), default=None,
                       key=lambda t: t[0])
            if best is None:
                continue
            peer = names.get(best[1].public_key, "")
            if peer:
                found.append((r.prefix, names.get(str(ip), str(ip)), peer not in hubs))
            break
    return found


def metric_families(status: MachineStatus, names: Mapping[str, str] | None = None,
                    plan: Plan | None = None, hubs: frozenset[str] = frozenset()
                    ) -> list[GaugeMetricFamily | CounterMetricFamily]:
    """The metrics of one status (pure). `names`: public key or address -> machine name;
    `plan` (this machine's) and `hubs` (the topology's) add the hub and path metrics."""
    names = names or {}
    m = status.machine
    up = GaugeMetricFamily("wgbgp_up", "1 when every source on the machine could be read",
                           labels=["machine"])
    up.add_metric([m], 0 if status.errors else 1)
    src = GaugeMetricFamily("wgbgp_source_ok", "1 when this source could be read",
                            labels=["machine", "source"])
    for source in ("wg", "addresses", "ip_forward", *(["bgp"] if status.bgp_asked else [])):
        src.add_metric([m, source], 0 if source in status.errors else 1)
    peer_labels = ["machine", "interface", "peer", "name"]
    hs = GaugeMetricFamily("wgbgp_wireguard_latest_handshake_seconds",
                           "Unix time of the latest handshake (0 = never)", labels=peer_labels)
    age = GaugeMetricFamily("wgbgp_wireguard_handshake_age_seconds",
                            "Seconds since the latest handshake", labels=peer_labels)
    rx = CounterMetricFamily("wgbgp_wireguard_received_bytes",
                             "Bytes received from the peer", labels=peer_labels)
    tx = CounterMetricFamily("wgbgp_wireguard_sent_bytes", "Bytes sent to the peer",
                             labels=peer_labels)
    ka = GaugeMetricFamily("wgbgp_wireguard_persistent_keepalive_seconds",
                           "PersistentKeepalive interval (0 = off)", labels=peer_labels)
    for iface in status.interfaces:
        for p in iface.peers:
            labels = [m, iface.name, p.public_key, names.get(p.public_key, "")]
            hs.add_metric(labels, p.latest_handshake)
            a = p.handshake_age(status.time)
            if a is not None:
                age.add_metric(labels, a)
            rx.add_metric(labels, p.rx_bytes)
            tx.add_metric(labels, p.tx_bytes)
            ka.add_metric(labels, p.keepalive or 0)
    out: list[GaugeMetricFamily | CounterMetricFamily] = [up, src, hs, age, rx, tx, ka,
                                                          *agent_families(status)]
    reach = hub_reachability(status, plan)
    if reach:
        hub_up = GaugeMetricFamily("wgbgp_hub_reachable", "1 when the tunnel to the hub had "
                                   "a handshake within 180 s", labels=["machine", "hub"])
        for hub, ok in reach.items():
            hub_up.add_metric([m, hub], 1 if ok else 0)
        out.append(hub_up)
    if status.bgp is None:
        return out
    n_labels = ["machine", "neighbor", "name", "remote_as"]
    sess_up = GaugeMetricFamily("wgbgp_bgp_session_up", "1 when the session is Established",
                                labels=n_labels)
    state = GaugeMetricFamily("wgbgp_bgp_session_state", "1 for the session's current state",
                              labels=["machine", "neighbor", "name", "state"])
    uptime = GaugeMetricFamily("wgbgp_bgp_session_uptime_seconds",
                               "Seconds the session has been Established", labels=n_labels)
    rcvd = GaugeMetricFamily("wgbgp_bgp_prefixes_received",
                             "Prefixes accepted from the neighbour", labels=n_labels)
    sent = GaugeMetricFamily("wgbgp_bgp_prefixes_sent", "Prefixes sent to the neighbour",
                             labels=n_labels)
    tripped = GaugeMetricFamily("wgbgp_bgp_max_prefix_tripped", "1 when the session was "
                                "closed for exceeding its maximum-prefix",
                                labels=["machine", "neighbor", "name"])
    for n in status.bgp.neighbors:
        name = names.get(n.address, n.description or n.hostname or "")
        tripped.add_metric([m, n.address, name], 1 if max_prefix_tripped(n) else 0)
        labels = [m, n.address, name, str(n.remote_as or "")]
        sess_up.add_metric(labels, 1 if n.established else 0)
        current = n.state.split()[0] if n.state else "Unknown"
        for s in STATES if current in STATES else (*STATES, current):
            state.add_metric([m, n.address, name, s], 1 if s == current else 0)
        uptime.add_metric(labels, n.established_for or 0)
        rcvd.add_metric(labels, n.prefixes_received or 0)
        sent.add_metric(labels, n.prefixes_sent or 0)
    routes = GaugeMetricFamily("wgbgp_bgp_routes_installed",
                               "BGP routes installed in the kernel", labels=["machine"])
    routes.add_metric([m], sum(1 for r in status.bgp.routes if r.installed))
    direct = GaugeMetricFamily("wgbgp_route_direct", "1 when the route's next hop is reached "
                               "straight, 0 through a hub", labels=["machine", "prefix", "name"])
    for prefix, peer, straight in route_paths(status, names, hubs):
        direct.add_metric([m, prefix, peer], 1 if straight else 0)
    return [*out, sess_up, state, uptime, rcvd, sent, routes, tripped, direct]


def agent_families(status: MachineStatus) -> list[GaugeMetricFamily | CounterMetricFamily]:
    """The agent's report as metrics (only wgbgp_agent_up = 0 where no agent runs)."""
    m, a = status.machine, status.agent
    up = GaugeMetricFamily("wgbgp_agent_up", "1 when the agent reconciled within the last "
                           f"{AGENT_STALE:.0f} s", labels=["machine"])
    fresh = a is not None and a.last_reconcile > 0 and \
        status.time - a.last_reconcile <= AGENT_STALE
    up.add_metric([m], 1 if fresh else 0)
    if a is None:
        return [up]
    info = GaugeMetricFamily("wgbgp_agent_info", "The topology revision the agent runs",
                             labels=["machine", "revision", "source"])
    info.add_metric([m, a.revision, a.source], 1)
    out: list[GaugeMetricFamily | CounterMetricFamily] = [up, info]
    for name, value, what in (
            ("last_reconcile_timestamp_seconds", a.last_reconcile, "Unix time of the last "
             "reconcile"),
            ("last_repair_timestamp_seconds", a.last_repair, "Unix time of the last repair "
             "(0 = none)"),
            ("source_ok", 0 if a.source_error else 1, "0 while the source cannot be read")):
        g = GaugeMetricFamily(f"wgbgp_agent_{name}", what, labels=["machine"])
        g.add_metric([m], value)
        out.append(g)
    refused = GaugeMetricFamily("wgbgp_agent_refused", "1 while this newer revision stands "
                                "refused (it failed check)", labels=["machine", "revision"])
    if a.refused_revision:
        refused.add_metric([m, a.refused_revision], 1)
    out.append(refused)
    for name, value, what in (("repairs", a.repairs, "Repairs made"),
                              ("errors", a.errors, "Reconciles that failed"),
                              ("bgp_kicks", a.bgp_kicks, "BGP sessions started on a handshake"),
                              ("restarts", a.restarts, "Daemons or interfaces started again"),
                              ("endpoint_updates", a.endpoint_updates, "DNS endpoints followed")):
        c = CounterMetricFamily(f"wgbgp_agent_{name}", what, labels=["machine"])
        c.add_metric([m], value)
        out.append(c)
    return out


def peer_names(plans: Mapping[str, Plan] | None) -> dict[str, str]:
    """Public keys and tunnel addresses -> machine names, from the topology."""
    if not plans:
        return {}
    exp = Expected(plans)
    names: dict[str, str] = {}
    for m, plan in plans.items():
        key = exp.public_key(m)
        if key:
            names[key] = m
        for t in plan.tunnels:
            for a in t.addresses:
                names[str(a.ip)] = m
    return names


class StatusCollector(Collector):
    """A prometheus_client collector that reads the machine on every scrape."""

    def __init__(self, executor: Executor, plan: Plan | None = None,
                 plans: Mapping[str, Plan] | None = None,
                 collect_fn: Callable[[Executor, Plan | None], MachineStatus] = collect) -> None:
        self.executor = executor
        self.plan = plan
        self.names = peer_names(plans)
        self.hubs = frozenset(n for n, p in (plans or {}).items() if p.role == "hub")
        self.collect_fn = collect_fn

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from metric_families(self.collect_fn(self.executor, self.plan), self.names,
                                   self.plan, self.hubs)


def registry_for(executor: Executor, plan: Plan | None = None,
                 plans: Mapping[str, Plan] | None = None) -> CollectorRegistry:
    """A registry holding only wgbgp's metrics for one machine."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(executor, plan, plans))
    return registry


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:9586', ':9586', '[::1]:9586' -> (address, port); ValueError with a reason."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {text!r} is not ADDRESS:PORT (e.g. {DEFAULT_LISTEN})")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)
