"""A machine's live state: what its tunnels and its BGP daemon say right now.

Collection is two steps so that everything but the first is pure and testable:

1. `snapshot(executor, plan)` runs a fixed set of read-only commands on the machine
   (through its executor: local, lab node or SSH) and keeps their raw output, secrets
   redacted. A snapshot is plain data; test fixtures are saved snapshots.
2. `status_from_snapshot(snapshot)` parses that into a `MachineStatus`.

`collect(executor, plan)` does both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Interface, IPv6Interface, ip_interface
from typing import Any

from ..apply.agentstate import AGENT_STATE, AgentState, read_agent_state
from ..compile import Plan
from ..transport import CommandResult, Executor, capture
from . import bird
from .frr import BgpPath, BgpStatus, FrrJsonError, Route, parse_neighbors, parse_routes, parse_table
from .wireguard import DumpError, WgInterface, parse_dump, redact_dump

SCHEMA = "wgbgp.status/1"

# Every command a snapshot may run, by key. All read-only.
COMMANDS: dict[str, list[str]] = {
    "clock": ["date", "+%s"],
    "wg": ["wg", "show", "all", "dump"],
    "addresses": ["ip", "-j", "addr", "show"],
    "ip_forward": ["sysctl", "-n", "net.ipv4.ip_forward"],
    "bgp_summary": ["vtysh", "-c", "show bgp summary json"],
    "bgp_neighbors": ["vtysh", "-c", "show bgp neighbors json"],
    "bgp_table": ["vtysh", "-c", "show bgp ipv4 unicast json"],
    "bgp_routes": ["vtysh", "-c", "show ip route bgp json"],
    # The agent's own report (apply/agentstate.py); absent where no agent runs.
    "agent": ["cat", AGENT_STATE],
}
BGP_KEYS = ("bgp_summary", "bgp_neighbors", "bgp_table", "bgp_routes")
# IPv6 in FRR: asked only when the plan has IPv6 sessions.
FRR6_COMMANDS: dict[str, list[str]] = {
    "bgp_table6": ["vtysh", "-c", "show bgp ipv6 unicast json"],
    "bgp_routes6": ["vtysh", "-c", "show ipv6 route bgp json"],
}
# A BIRD node (daemon: bird) instead of BGP_KEYS: BIRD prints text only (observe.bird).
BIRD_COMMANDS: dict[str, list[str]] = {
    "bird_status": ["birdc", "show", "status"],
    "bird_protocols": ["birdc", "show", "protocols", "all"],
    "bird_routes": ["birdc", "show", "route"],
    "bird_kernel4": ["ip", "-j", "-4", "route", "show", "proto", "bird"],
    "bird_kernel6": ["ip", "-j", "-6", "route", "show", "proto", "bird"],
}


ROUTE_GET = "route_get"  # snapshot key prefix: `ip -j route get HOST`, one per endpoint


def dialled_hosts(wg: CommandResult) -> list[str]:
    """The endpoint addresses of peers without keepalive, from `wg show all dump`."""
    if not wg.ok:
        return []
    try:
        interfaces = parse_dump(wg.stdout)
    except DumpError:
        return []
    hosts = [p.endpoint.rsplit(":", 1)[0].strip("[]") for i in interfaces for p in i.peers
             if p.endpoint and p.keepalive is None]
    return list(dict.fromkeys(hosts))


@dataclass(frozen=True)
class Snapshot:
    """Raw outputs of the status commands on one machine, at one moment."""

    machine: str
    taken_at: float  # this host's clock when taken
    outputs: dict[str, CommandResult]

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "taken_at": self.taken_at,
                "outputs": {k: v.to_json() for k, v in self.outputs.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        return cls(data["machine"], data["taken_at"],
                   {k: CommandResult.from_json(v) for k, v in data["outputs"].items()})


def snapshot(executor: Executor, plan: Plan | None = None, *, timeout: float = 10) -> Snapshot:
    """Run the status commands on a machine and keep their raw output (keys redacted).

    BGP is asked about unless the plan says this machine does not speak it (a mesh hub):
    FRR, or BIRD when the plan says so. Without a plan, BIRD is asked when FRR does not
    answer and BIRD does.
    """
    keys = [k for k in COMMANDS if not (plan is not None and plan.bgp is None
                                        and k in BGP_KEYS)]
    commands = dict(COMMANDS)
    if plan is not None and plan.bgp is not None and plan.bgp.daemon == "bird":
        keys = [k for k in keys if k not in BGP_KEYS] + list(BIRD_COMMANDS)
        commands.update(BIRD_COMMANDS)
    elif plan is not None and plan.bgp is not None and any(
            s.peer_address.version == 6 for s in plan.bgp.sessions):
        keys += list(FRR6_COMMANDS)
        commands.update(FRR6_COMMANDS)
    outputs: dict[str, CommandResult] = {}
    for key in keys:
        if (key in (*BGP_KEYS[1:], *FRR6_COMMANDS) and not outputs["bgp_summary"].ok) or (
                key in list(BIRD_COMMANDS)[1:3] and not outputs["bird_status"].ok):
            continue  # the daemon is not answering: the rest would say the same
        out = capture(executor, commands[key], timeout)
        if key == "wg":
            out = replace(out, stdout=redact_dump(out.stdout))
        if key == "ip_forward" and out.returncode == 127:
            text = executor.read_file("/proc/sys/net/ipv4/ip_forward")
            out = CommandResult(("cat", "/proc/sys/net/ipv4/ip_forward"), 0 if text else 1,
                         text or "", "")
        outputs[key] = out
    if plan is None:
        # Without a plan, whether a peer we dial sits behind NAT is a local fact: the
        # source address this machine uses towards the peer's endpoint.
        for host in dialled_hosts(outputs["wg"]):
            outputs[f"{ROUTE_GET} {host}"] = capture(executor, ["ip", "-j", "route", "get",
                                                                host], timeout)
    summary = outputs.get("bgp_summary")
    if plan is None and summary is not None and not summary.ok:
        status = capture(executor, BIRD_COMMANDS["bird_status"], timeout)
        if status.ok:  # a BIRD node: read it as such
            del outputs["bgp_summary"]
            outputs["bird_status"] = status
            for key, argv in list(BIRD_COMMANDS.items())[1:]:
                outputs[key] = capture(executor, argv, timeout)
    return Snapshot(getattr(executor, "name", "") or "localhost", time.time(), outputs)


@dataclass(frozen=True)
class Address:
    """An address configured on an interface."""

    interface: str
    address: IPv4Interface | IPv6Interface


@dataclass(frozen=True)
class MachineStatus:
    """Everything observed on one machine."""

    machine: str
    time: float  # the machine's own clock (handshake ages are computed against it)
    interfaces: tuple[WgInterface, ...] = ()
    addresses: tuple[Address, ...] = ()
    mtus: dict[str, int] = field(default_factory=dict)
    ip_forward: bool | None = None
    bgp: BgpStatus | None = None
    # Why a source could not be read, by source ("wg", "bgp", "addresses", "ip_forward").
    errors: dict[str, str] = field(default_factory=dict)
    bgp_asked: bool = True  # False when the plan says this machine runs no BGP
    bgp_daemon: str = "frr"  # whom BGP was asked: "frr" (vtysh) or "bird" (birdc)
    # Per interface: administratively up (`ip link set ... up`, flag UP). A WireGuard
    # interface that is down still lists its peers in `wg show`, and carries nothing.
    links_up: dict[str, bool] = field(default_factory=dict)
    # Per peer endpoint address: the source address this machine sends to it from
    # (`ip route get`), asked only without a plan (for NAT). Empty when not asked.
    sources: dict[str, str] = field(default_factory=dict)
    agent: AgentState | None = None  # what `wgbgp agent` last reported, if one runs here

    def interface(self, name: str) -> WgInterface | None:
        return next((i for i in self.interfaces if i.name == name), None)

    def has_address(self, address: str) -> bool:
        return any(str(a.address.ip) == address for a in self.addresses)

    def addresses_on(self, interface: str) -> tuple[IPv4Interface | IPv6Interface, ...]:
        return tuple(a.address for a in self.addresses if a.interface == interface)

    @property
    def bgp_down(self) -> bool:
        """BGP was asked about and bgpd did not answer."""
        return self.bgp_asked and self.bgp is None

    def to_json(self, names: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Stable JSON for scripts. `names` (public key or address -> machine name), when
        given, adds a `name` to every tunnel peer and BGP neighbour it knows."""
        names = names or {}
        tunnels = []
        for i in self.interfaces:
            t = dict(i.to_json(self.time), mtu=self.mtus.get(i.name),
                     up=self.links_up.get(i.name),
                     addresses=[str(a) for a in self.addresses_on(i.name)])
            for p in t["peers"]:
                p["name"] = names.get(p["public_key"])
            tunnels.append(t)
        bgp = self.bgp.to_json() if self.bgp else None
        if bgp:
            for n in bgp["neighbors"]:
                n["name"] = names.get(n["address"], n["name"])
        return {
            "schema": SCHEMA,
            "machine": self.machine,
            "time": self.time,
            "tunnels": tunnels,
            "ip_forward": self.ip_forward,
            "bgp": bgp,
            "agent": None if self.agent is None else agent_json(self.agent, self.time),
            "errors": dict(self.errors),
        }


AGENT_STALE = 60.0  # seconds without a reconcile after which the agent is reported stale


def agent_json(agent: AgentState, now: float) -> dict[str, Any]:
    """The agent's state for `status --json`, with the age of its last reconcile."""
    data = dict(agent.__dict__)
    age = now - agent.last_reconcile if agent.last_reconcile else None
    data["last_reconcile_age"] = None if age is None else round(age, 1)
    data["stale"] = age is None or age > AGENT_STALE
    return data


def status_from_snapshot(snap: Snapshot) -> MachineStatus:
    """Parse a snapshot. Pure: unreadable sources become `errors`, never exceptions."""
    o = snap.outputs
    errors: dict[str, str] = {}
    now = snap.taken_at
    clock = o.get("clock")
    if clock and clock.ok and clock.stdout.strip().isdigit():
        now = float(clock.stdout.strip())

    interfaces: tuple[WgInterface, ...] = ()
    wg = o.get("wg")
    if wg is not None:
        if wg.ok:
            try:
                interfaces = parse_dump(wg.stdout)
            except DumpError as exc:
                errors["wg"] = f"cannot read `wg show all dump`: {exc}"
        else:
            errors["wg"] = wg.error

    addresses: list[Address] = []
    mtus: dict[str, int] = {}
    links_up: dict[str, bool] = {}
    addr = o.get("addresses")
    if addr is not None:
        if addr.ok:
            try:
                for link in json.loads(addr.stdout or "[]"):
                    name = link.get("ifname", "")
                    if "mtu" in link:
                        mtus[name] = int(link["mtu"])
                    if isinstance(link.get("flags"), list):
                        links_up[name] = "UP" in link["flags"]
                    for a in link.get("addr_info", []):
                        if a.get("family") == "inet" or (
                                a.get("family") == "inet6" and a.get("scope") == "global"):
                            addresses.append(Address(name, ip_interface(
                                f"{a['local']}/{a.get('prefixlen', 32)}")))
            except (ValueError, KeyError, TypeError) as exc:
                errors["addresses"] = f"cannot read `ip -j addr`: {exc}"
        else:
            errors["addresses"] = addr.error

    ip_forward = None
    fwd = o.get("ip_forward")
    if fwd is not None:
        if fwd.ok and fwd.stdout.strip() in ("0", "1"):
            ip_forward = fwd.stdout.strip() == "1"
        else:
            errors["ip_forward"] = fwd.error

    sources: dict[str, str] = {}
    for key, out in o.items():
        if key.startswith(ROUTE_GET + " ") and out.ok:
            try:
                src = (json.loads(out.stdout or "[]") or [{}])[0].get("prefsrc")
            except (ValueError, AttributeError, IndexError):
                continue
            if src:
                sources[key.split(" ", 1)[1]] = str(src)

    bgp = None
    summary = o.get("bgp_summary") or o.get("bird_status")
    if summary is not None:
        bgp, err = _bird(o) if "bird_status" in o else _bgp(o)
        if err:
            errors["bgp"] = err
    agent = o.get("agent")
    return MachineStatus(
        machine=snap.machine, time=now, interfaces=interfaces, addresses=tuple(addresses),
        mtus=mtus, ip_forward=ip_forward, bgp=bgp, errors=errors,
        bgp_asked=summary is not None, bgp_daemon="bird" if "bird_status" in o else "frr",
        links_up=links_up, sources=sources,
        agent=read_agent_state(agent.stdout) if agent is not None and agent.ok else None,
    )


def _bgp(o: dict[str, CommandResult]) -> tuple[BgpStatus | None, str | None]:
    summary = o["bgp_summary"]
    if not summary.ok:
        return None, summary.error
    try:
        neighbors = o.get("bgp_neighbors")
        router_id, asn, peers = parse_neighbors(
            summary.stdout, neighbors.stdout if neighbors and neighbors.ok else None)
        paths: tuple[BgpPath, ...] = ()
        rib: tuple[Route, ...] = ()
        for tkey, rkey in (("bgp_table", "bgp_routes"), ("bgp_table6", "bgp_routes6")):
            table, routes = o.get(tkey), o.get(rkey)
            paths += parse_table(table.stdout) if table and table.ok else ()
            rib += parse_routes(routes.stdout, ("bgp",)) if routes and routes.ok else ()
    except FrrJsonError as exc:
        return None, str(exc)
    if asn is None and not peers:
        return BgpStatus(None, None), "FRR runs but has no BGP instance (no `router bgp`)"
    return BgpStatus(router_id, asn, peers, paths, rib), None


def _bird(o: dict[str, CommandResult]) -> tuple[BgpStatus | None, str | None]:
    """A BIRD node's BGP, as FRR's would read: sessions, paths, and the routes BIRD put in
    the kernel (BIRD's `kernel` protocols export BGP routes only)."""
    status = o["bird_status"]
    if not status.ok:
        return None, status.error
    protocols = o.get("bird_protocols")
    try:
        parsed = bird.parse_protocols(protocols.stdout) if protocols and protocols.ok else []
    except bird.BirdOutputError as exc:
        return None, str(exc)
    routes = o.get("bird_routes")
    paths = (bird.parse_routes(routes.stdout, bird.protocol_names(parsed))
             if routes and routes.ok else ())
    rib: list[Route] = []
    for key, host in (("bird_kernel4", 32), ("bird_kernel6", 128)):
        out = o.get(key)
        if out is None or not out.ok:
            continue
        try:
            rib += parse_kernel_routes(out.stdout, host)
        except ValueError as exc:
            return None, f"cannot read `ip -j route show proto bird`: {exc}"
    neighbours = bird.neighbors(parsed, bird.parse_server_time(status.stdout))
    return BgpStatus(bird.parse_router_id(status.stdout), bird.local_as(parsed), neighbours,
                     paths, tuple(rib)), None


def parse_kernel_routes(text: str, host: int) -> tuple[Route, ...]:
    """Routes from `ip -j route show` of one family (`host`: 32 or 128, the length of a
    host route, which ip prints without one), as BGP routes in the kernel. ValueError when
    it is not that output."""
    out: list[Route] = []
    try:
        for r in json.loads(text or "[]"):
            dst = r.get("dst", "")
            if not dst:
                continue
            dst = dst if "/" in dst else f"{dst}/{host}"
            hop, dev = r.get("gateway"), r.get("dev")
            out.append(Route(dst, "bgp", True, True,
                             (f"{hop} via {dev}" if hop else str(dev or ""),),
                             (str(dev),) if dev else ()))
    except AttributeError as exc:  # JSON, but not a list of routes
        raise ValueError(str(exc)) from None
    return tuple(out)


# What a wait for convergence asks, and no more: sessions, and the routes BGP installed.
FRR_STATE = ("bgp_summary", "bgp_routes")
BIRD_STATE = ("bird_status", "bird_protocols", "bird_kernel4", "bird_kernel6")


def bgp_state(executor: Executor, plan: Plan, *, timeout: float = 10) -> BgpStatus | None:
    """The BGP sessions and installed BGP routes of a BGP speaker, read by the same parsers
    as `collect` from the few commands that say so (no paths, no WireGuard): what the lab
    polls while it waits for convergence. None when the daemon does not answer."""
    if plan.bgp is None:
        return None
    if plan.bgp.daemon == "bird":
        outputs = {k: capture(executor, BIRD_COMMANDS[k], timeout) for k in BIRD_STATE}
        return _bird(outputs)[0]
    keys = list(FRR_STATE)
    if any(s.afi == "ipv6" or s.peer_address.version == 6 for s in plan.bgp.sessions):
        keys.append("bgp_routes6")
    commands = {**COMMANDS, **FRR6_COMMANDS}
    return _bgp({k: capture(executor, commands[k], timeout) for k in keys})[0]


def collect(executor: Executor, plan: Plan | None = None) -> MachineStatus:
    """The live status of the machine behind `executor` (runs read-only commands there)."""
    status = status_from_snapshot(snapshot(executor, plan))
    if plan is not None and status.machine != plan.machine:
        status = MachineStatus(**{**status.__dict__, "machine": plan.machine})
    return status
