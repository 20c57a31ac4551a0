"""`wgbgp lab test`: prove the lab network does what the recipe promises.

Each assertion is measured on the live machines: sessions, reachability between announced
addresses, that the CG-NAT really refuses inbound, and that client traffic crosses the hub.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from ..compile import Plan, compile_topology
from ..model import parse
from ..transport import Executor
from ..words import plural
from .build import Lab
from .runner import announced_addresses, convergence, lab_topology_path
from .underlay import INET, carrier_node


@dataclass(frozen=True)
class Assertion:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def lab_plans(lab: Lab) -> dict[str, Plan]:
    """The plans the lab was brought up with (from its own copy of the topology)."""
    path = lab_topology_path(lab.name)
    topology, _ = parse(path.read_text(), str(path))
    return compile_topology(topology)


def run_selftest(lab: Lab) -> list[Assertion]:
    """Every assertion of `wgbgp lab test`, in order."""
    plans = lab_plans(lab)
    executors = {n: m.executor() for n, m in lab.machines.items()}
    hubs = [n for n, p in plans.items() if p.role == "hub"]
    before = {h: hub_forwarded_packets(executors[h]) for h in hubs}
    results = [sessions_established(executors, plans)]
    reach, pings = reachability(executors, plans)
    results.append(reach)
    results.append(crosses_hub(executors, hubs, before, pings))
    results.extend(cgnat_refuses_inbound(lab, executors, plans))
    return results


def sessions_established(executors: Mapping[str, Executor], plans: dict[str, Plan]) -> Assertion:
    c = convergence(executors, plans)
    missing = [m for m in c.missing if "session" in m]
    return Assertion("every configured BGP session is Established", not missing,
                     f"{c.sessions_up}/{c.sessions} Established" +
                     ("; " + "; ".join(missing[:10]) if missing else ""))


def _source(plan: Plan, version: int = 4) -> str:
    """The address a client pings from: its first announced address of that family, else
    its tunnel address of that family."""
    originate = [p for p in (plan.bgp.originate if plan.bgp else ()) if p.version == version]
    if originate:
        return announced_addresses(originate)[0].split("/")[0]
    tunnel = plan.tunnels[0]
    own = tunnel.address if version == 4 else tunnel.address6
    return str((own or tunnel.addresses[0]).ip)


def reachability(executors: Mapping[str, Executor], plans: dict[str, Plan]
                 ) -> tuple[Assertion, int]:
    """Ping every announced prefix from every other client, sourced from its own prefix."""
    # Each client that speaks BGP, with what it announces.
    originated = {n: p.bgp.originate for n, p in plans.items()
                  if p.role == "client" and p.bgp is not None}
    probes = [(a, b, dst.split("/")[0])
              for a in originated for b, prefixes in originated.items() if a != b
              for dst in announced_addresses(prefixes)]

    def ping(probe: tuple[str, str, str]) -> bool:
        a, _, dst = probe
        source = _source(plans[a], 6 if ":" in dst else 4)
        res = executors[a].run(["ping", "-c", "1", "-W", "2", "-I", source, dst],
                               check=False, timeout=10)
        return res.ok

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(ping, probes))
    failed = [f"{a} -> {dst} ({b})"
              for (a, b, dst), ok in zip(probes, outcomes, strict=True) if not ok]
    detail = (f"{len(probes) - len(failed)}/{len(probes)} announced "
              f"{'address answers' if len(probes) == 1 else 'addresses answer'}")
    if failed:
        detail += "; no answer: " + ", ".join(failed[:10])
    return Assertion("every announced prefix is reachable from every other client",
                     not failed and bool(probes), detail), len(probes)


def hub_forwarded_packets(executor: Executor) -> int:
    """Packets the hub forwarded from one tunnel peer to another (its nftables counter)."""
    res = executor.run(["nft", "-j", "list", "table", "inet", "wgbgp"], check=False)
    if not res.ok:
        return 0
    total = 0
    for item in json.loads(res.stdout).get("nftables", []):
        rule = item.get("rule")
        if not rule:
            continue
        exprs = rule.get("expr", [])
        ifaces = [e["match"]["right"] for e in exprs
                  if _meta_key(e) in ("iifname", "oifname")]
        if len(ifaces) == 2 and ifaces[0] == ifaces[1] and any("accept" in e for e in exprs):
            total += sum(e["counter"]["packets"] for e in exprs if "counter" in e)
    return total


def _meta_key(expr: dict[str, Any]) -> str | None:
    """The meta key an nft JSON expression matches on (e.g. "iifname"), if any."""
    key = expr.get("match", {}).get("left", {}).get("meta", {}).get("key")
    return key if isinstance(key, str) else None


def crosses_hub(executors: Mapping[str, Executor], hubs: list[str], before: dict[str, int],
                pings: int) -> Assertion:
    after = {h: hub_forwarded_packets(executors[h]) for h in hubs}
    forwarded = sum(after[h] - before[h] for h in hubs)
    # Each ping is a request and a reply, both forwarded tunnel-to-tunnel by the hub.
    return Assertion("traffic between clients crosses the hub", forwarded >= 2 * pings > 0,
                     f"hub forwarded {plural(forwarded, 'packet')} between tunnels for "
                     f"{plural(pings, 'ping')}")


def cgnat_refuses_inbound(lab: Lab, executors: Mapping[str, Executor],
                          plans: dict[str, Plan]) -> list[Assertion]:
    """From the Internet, a client is unreachable: by its address, and through its NAT mapping."""
    inet = lab.netns_executor(INET)
    clients = [n for n, p in plans.items() if p.role == "client"]
    direct = [c for c in clients
              if inet.run(["ping", "-c", "1", "-W", "1", str(lab.plan.address[c])],
                          check=False, timeout=5).ok]
    out = [Assertion("a client cannot be reached from the Internet directly", not direct,
                     "answered: " + ", ".join(direct) if direct else
                     f"no answer from {plural(len(clients), 'client')} (their own addresses)")]
    # The hub knows each client's NAT mapping (carrier address:port). A stranger sending to
    # that same mapping must be dropped by the carrier: a real CG-NAT filters by endpoint.
    hub = next(n for n, p in plans.items() if p.role == "hub")
    dump = executors[hub].run(["wg", "show", "all", "endpoints"], check=False).stdout
    mappings = re.findall(r"\s(\d+\.\d+\.\d+\.\d+):(\d+)\s*$", dump, flags=re.M)
    carriers = sorted(set(lab.plan.carrier_of.values()))
    drops_before = {c: carrier_drops(lab, c) for c in carriers}
    for ip, port in mappings:
        inet.run(["bash", "-c", f"echo stranger > /dev/udp/{ip}/{port}"], check=False)
    dropped = sum(carrier_drops(lab, c) - drops_before[c] for c in carriers)
    out.append(Assertion(
        "a stranger cannot use a client's NAT mapping", bool(mappings) and dropped >= len(mappings),
        f"{plural(len(mappings), 'mapping')} probed from the Internet, "
        f"{plural(dropped, 'packet')} dropped by the carrier"))
    return out


def carrier_drops(lab: Lab, carrier: str) -> int:
    """Unsolicited inbound packets a carrier has dropped so far."""
    res = lab.netns_executor(carrier_node(carrier)).run(
        ["nft", "-j", "list", "table", "ip", "wgbgp_nat"], check=False)
    if not res.ok:
        return 0
    total = 0
    for item in json.loads(res.stdout).get("nftables", []):
        exprs = (item.get("rule") or {}).get("expr", [])
        if any("drop" in e for e in exprs):
            total += sum(e["counter"]["packets"] for e in exprs if "counter" in e)
    return total
