"""Collect everything doctor reasons over: status of each machine, then active probes.

Order matters and is fixed:
1. a snapshot of every reachable machine (read-only commands, in parallel);
2. probes from the hub towards each client, *before* the clients send anything: a
   client whose NAT mapping has expired is reachable again as soon as it sends a
   packet, so this is the only moment the expiry is visible;
3. probes from each client (in parallel across clients): hub, peers, BGP port,
   announced addresses, full-size packets; then, where full-size packets fail, a
   bisection for the largest packet that passes.

Which probes to run is decided by `plan_probes` (pure); only running them touches machines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from ..compile import Plan
from ..transport import Executor, capture
from .expect import Expected
from .probe import ICMP_OVERHEAD, ProbeResult, ProbeSpec, run_probe
from .status import COMMANDS, MachineStatus, Snapshot, snapshot, status_from_snapshot
from .wireguard import DumpError, WgInterface, parse_dump, redact_dump

OBSERVATION_SCHEMA = "wgbgp.observation/1"
# Smallest packet the search tries: IPv6 needs 1280, nothing sane goes below 576.
MTU_FLOOR = 576


@dataclass(frozen=True)
class Observation:
    """Raw material for doctor: snapshots and probe results, keyed by machine."""

    snapshots: dict[str, Snapshot]
    probes: tuple[ProbeResult, ...] = ()
    # Machines of the topology we had no executor for (doctor skips what needs them).
    unobserved: tuple[str, ...] = ()
    statuses: dict[str, MachineStatus] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.statuses:
            self.statuses.update({m: _named(status_from_snapshot(s), m)
                                  for m, s in self.snapshots.items()})

    def wg_after(self, machine: str) -> tuple[WgInterface, ...] | None:
        """The machine's WireGuard state read again after the probes (hubs only)."""
        snap = self.snapshots.get(machine)
        out = snap.outputs.get("wg_after") if snap else None
        if out is None or not out.ok:
            return None
        try:
            return parse_dump(out.stdout)
        except DumpError:
            return None

    def only(self, machines: list[str] | tuple[str, ...]) -> Observation:
        """The same observation as if only `machines` had been reachable."""
        keep = [m for m in self.snapshots if m in machines]
        return Observation({m: self.snapshots[m] for m in keep},
                           tuple(p for p in self.probes if p.spec.machine in keep),
                           tuple(sorted({*self.unobserved, *(m for m in self.snapshots
                                                             if m not in keep)})),
                           {m: self.statuses[m] for m in keep if m in self.statuses})

    def to_json(self) -> dict[str, Any]:
        return {"schema": OBSERVATION_SCHEMA,
                "snapshots": {m: s.to_json() for m, s in self.snapshots.items()},
                "probes": [p.to_json() for p in self.probes],
                "unobserved": list(self.unobserved)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Observation:
        return cls({m: Snapshot.from_json(s) for m, s in data["snapshots"].items()},
                   tuple(ProbeResult.from_json(p) for p in data.get("probes", [])),
                   tuple(data.get("unobserved", ())))


def _named(status: MachineStatus, machine: str) -> MachineStatus:
    if status.machine == machine:
        return status
    return MachineStatus(**{**status.__dict__, "machine": machine})


def _own_source(status: MachineStatus | None,
                prefixes: tuple[IPv4Network | IPv6Network, ...],
                version: int | None = None) -> str | None:
    """An address of this machine inside one of its announced prefixes (ping's source),
    of one address family when `version` is given."""
    if status is None:
        return None
    for prefix in prefixes:
        if version is not None and prefix.version != version:
            continue
        for a in status.addresses:
            if a.address.ip in prefix:
                return str(a.address.ip)
    return None


def _announced_target(expected: Expected, peer: str,
                      statuses: Mapping[str, MachineStatus],
                      version: int | None = None) -> str | None:
    """An address that should answer inside the peer's announced prefixes (of one address
    family when `version` is given)."""
    prefixes = tuple(p for p in expected.announced(peer) if version in (None, p.version))
    local = _own_source(statuses.get(peer), prefixes)
    if local:
        return local
    # Without a view of the peer, only a single-address prefix (/32, /128) names a host
    # that must exist.
    return next((str(p.network_address) for p in prefixes
                 if p.prefixlen == p.max_prefixlen), None)


def plan_probes(plans: Mapping[str, Plan], statuses: Mapping[str, MachineStatus],
                machine: str) -> list[ProbeSpec]:
    """The probes to run on `machine`, given what the snapshots showed. Pure."""
    expected = Expected(plans)
    plan = plans.get(machine)
    status = statuses.get(machine)
    if plan is None or status is None:
        return []
    specs: list[ProbeSpec] = []
    if plan.role == "hub":
        for tunnel in plan.tunnels:
            for peer in tunnel.peers:
                addr = expected.tunnel_address(peer.name, tunnel.interface)
                if addr:
                    specs.append(ProbeSpec(machine, "ping", "client", str(addr), peer.name))
        return specs
    for tunnel in plan.tunnels:
        mtu = status.mtus.get(tunnel.interface, tunnel.mtu)
        full = mtu - ICMP_OVERHEAD
        hub_addr = expected.tunnel_address(tunnel.hub, tunnel.interface)
        if hub_addr:
            specs.append(ProbeSpec(machine, "ping", "hub", str(hub_addr), tunnel.hub))
            specs.append(ProbeSpec(machine, "ping", "mtu", str(hub_addr), tunnel.hub,
                                   size=full, df=True))
        for s in expected.sessions(machine):
            if s.interface != tunnel.interface:
                continue
            specs.append(ProbeSpec(machine, "ping", "peer", str(s.peer_address), s.peer))
            specs.append(ProbeSpec(machine, "ping", "mtu", str(s.peer_address), s.peer,
                                   size=full, df=True))
    mine = expected.announced(machine)
    for s in expected.sessions(machine):
        neighbor = status.bgp.neighbor(str(s.peer_address)) if status.bgp else None
        peer_status = statuses.get(s.peer)
        if (neighbor is None or not neighbor.established) and (
                peer_status is None or peer_status.bgp is None):
            # Only when the session is down, and only when the peer's own BGP daemon could
            # not be read (not observed, or not answering): to the peer's FRR, a connection
            # from our tunnel address *is* us connecting, and each aborted one disturbs its
            # recovery (a doctor run every 4 s kept a healed session Active for minutes).
            # When the peer answered, its own daemon state says what the probe would.
            specs.append(ProbeSpec(machine, "tcp", "bgp", str(s.peer_address), s.peer,
                                   port=179))
        pair = _announced_pair(expected, status, mine, s.peer, statuses)
        if pair:
            own, target = pair
            specs.append(ProbeSpec(machine, "ping", "announced", target, s.peer, source=own))
    return specs


def _announced_pair(expected: Expected, status: MachineStatus,
                    mine: tuple[IPv4Network | IPv6Network, ...], peer: str,
                    statuses: Mapping[str, MachineStatus]) -> tuple[str, str] | None:
    """(source, target) for pinging from one of our announced addresses to one of the
    peer's, both of one address family (ping cannot cross families): the family of the
    peer's first announced prefix that has both, else None."""
    for version in dict.fromkeys(p.version for p in expected.announced(peer)):
        own = _own_source(status, mine, version)
        target = _announced_target(expected, peer, statuses, version) if own else None
        if own and target:
            return own, target
    return None


def mtu_search(run: Callable[[ProbeSpec], ProbeResult], failed: ProbeSpec) -> list[ProbeResult]:
    """Bisect the largest DF packet that passes where a full-size one did not."""
    assert failed.size is not None
    lo, hi = MTU_FLOOR - ICMP_OVERHEAD, failed.size  # lo assumed to pass, hi fails
    results = []
    first = run(ProbeSpec(failed.machine, "ping", "mtu-search", failed.target,
                          failed.target_machine, size=lo, df=True))
    results.append(first)
    if not first.ok:
        return results
    while hi - lo > 8:
        mid = (lo + hi) // 2
        r = run(ProbeSpec(failed.machine, "ping", "mtu-search", failed.target,
                          failed.target_machine, size=mid, df=True))
        results.append(r)
        lo, hi = (mid, hi) if r.ok else (lo, mid)
    return results


def gather(executors: Mapping[str, Executor], plans: Mapping[str, Plan] | None = None, *,
           probe: bool = True, workers: int = 4) -> Observation:
    """Snapshot every machine we have an executor for, then probe (see module doc)."""
    plans = plans or {}
    names = list(executors)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        snaps = dict(zip(names, pool.map(
            lambda n: snapshot(executors[n], plans.get(n)), names), strict=True))
    snaps = {n: Snapshot(n, s.taken_at, s.outputs) for n, s in snaps.items()}
    obs = Observation(snaps, (), tuple(m for m in plans if m not in executors))
    if not probe or not plans:
        return obs
    statuses = obs.statuses
    results: list[ProbeResult] = []
    hubs = [n for n in names if n in plans and plans[n].role == "hub"]
    clients = [n for n in names if n in plans and plans[n].role == "client"]
    for hub in hubs:
        results += [run_probe(executors[hub], s) for s in plan_probes(plans, statuses, hub)]

    def probe_client(name: str) -> list[ProbeResult]:
        ex = executors[name]
        out = [run_probe(ex, s) for s in plan_probes(plans, statuses, name)]
        small_ok = {r.spec.target for r in out if r.spec.purpose in ("hub", "peer") and r.ok}
        for r in list(out):
            if r.spec.purpose == "mtu" and not r.ok and r.spec.target in small_ok:
                out += mtu_search(lambda spec: run_probe(ex, spec), r.spec)
        return out

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for res in pool.map(probe_client, clients):
            results += res
    # What reached the hub from each client while they probed it (UDP blocked or not).
    for hub in hubs:
        out = capture(executors[hub], COMMANDS["wg"], 10)
        snaps[hub] = Snapshot(hub, snaps[hub].taken_at, {
            **snaps[hub].outputs,
            "wg_after": replace(out, stdout=redact_dump(out.stdout))})
    return Observation(snaps, tuple(results), obs.unobserved, statuses)
