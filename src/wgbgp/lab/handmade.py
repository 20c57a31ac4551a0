"""A lab machine set up by hand from the classic recipe, mistakes included.

What people write from the usual blog post, instead of `wgbgp apply`: `wg0.conf` whose hub
peer carries the hub's /32 only, no PersistentKeepalive, and FRR with an inbound
route-map only, no ebgp-multihop, and a `network` statement for a prefix that has no
route. The machine keeps its key (the topology still names its public key), so doctor
can judge the same machine with and without the topology.

`hand_configure` replaces wgbgp's configuration of one lab client by this; `hand_undo`
removes it again (then `wgbgp apply` puts wgbgp's back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..apply import down_machine
from ..compile.plan import KEY_DIR, Plan
from ..transport import Executor

WG_CONF = "/etc/wireguard/wg0.conf"
FRR_CONF = "/etc/frr/frr.conf"
FRR_INIT = "/usr/lib/frr/frrinit.sh"
# A prefix the recipe announces with `network` but never gives a route.
UNROUTED = "100.100.102.0/24"


@dataclass(frozen=True)
class Recipe:
    """The hand-written files (the WireGuard one without its private key)."""

    wg_conf: str
    frr_conf: str


def recipe(plans: Mapping[str, Plan], node: str, unrouted: str = UNROUTED) -> Recipe:
    """The classic hand recipe for client `node` of `plans`' topology."""
    plan = plans[node]
    tunnel = plan.tunnels[0]
    hub = next(p for p in tunnel.peers if p.name == tunnel.hub)
    hub_plan = plans[tunnel.hub]
    assert tunnel.address is not None and hub_plan.tunnels[0].address is not None
    assert plan.bgp is not None and hub.endpoint
    wg = (f"[Interface]\nAddress = {tunnel.address}\nPrivateKey = {{private_key}}\n\n"
          f"[Peer]\nPublicKey = {hub.public_key}\nEndpoint = {hub.endpoint}\n"
          f"AllowedIPs = {hub_plan.tunnels[0].address.ip}/32\n")
    lines = ["frr defaults traditional", f"hostname {node}", f"router bgp {plan.bgp.asn}",
             f" bgp router-id {plan.bgp.router_id}"]
    lines += [f" neighbor {s.peer_address} remote-as {s.peer_asn}" for s in plan.bgp.sessions
              if s.peer_address.version == 4]
    lines += [" address-family ipv4 unicast"]
    lines += [f"  network {p}" for p in (*plan.bgp.originate_of(4), unrouted)]
    lines += [f"  neighbor {s.peer_address} route-map IN in" for s in plan.bgp.sessions
              if s.peer_address.version == 4]
    lines += [" exit-address-family", "!", "route-map IN permit 10", "!"]
    return Recipe(wg, "\n".join(lines) + "\n")


def hand_configure(executor: Executor, plans: Mapping[str, Plan], node: str) -> Recipe:
    """Take wgbgp's configuration off `node` (`wgbgp down`) and set it up by hand."""
    result = down_machine(executor)
    if not result.ok:
        raise RuntimeError(f"wgbgp down on {node}: {result.error}")
    r = recipe(plans, node)
    key = (executor.read_file(f"{KEY_DIR}/{node}.key") or "").strip()
    if not key:
        raise RuntimeError(f"{node} has no private key in {KEY_DIR}")
    executor.write_file(WG_CONF, r.wg_conf.format(private_key=key), 0o600)
    executor.run(["wg-quick", "up", "wg0"], timeout=60)
    executor.write_file(FRR_CONF, r.frr_conf, 0o640)
    executor.run(["chown", "frr:frr", FRR_CONF], check=False)
    executor.run([FRR_INIT, "restart"], timeout=120)
    return r


def hand_undo(executor: Executor) -> None:
    """Remove the hand-made setup: wg0 down and gone, FRR stopped (best effort)."""
    executor.run(["wg-quick", "down", "wg0"], check=False, timeout=60)
    executor.run(["rm", "-f", WG_CONF], check=False)
    executor.run([FRR_INIT, "stop"], check=False, timeout=120)
