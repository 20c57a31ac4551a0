"""A laptop's life: the events `wgbgp lab fault` injects into a running lab, for real.

- `roam`: a client leaves its carrier for another one. Its uplink is unplugged and a new
  one plugged into the other carrier, with a new subscriber address; the Internet now sees
  it at that carrier's public address. The lab state records the move.
- `nat_reset`: a carrier forgets every NAT mapping (`conntrack -F` in its namespace). Its
  NAT is port-preserving, so a flush alone would hand out the same ports again; each
  reset also switches the carrier between preserving the source port and a port range
  that none of the current mappings uses, so the next packets get new public ports.
- `freeze` / `thaw` (`sleep`): every process of the machine SIGSTOPped and its link gone
  silent (the far end of its uplink down: the machine sees no carrier, as with a shut
  lid), then the link back and every process continued.
- `reboot`: power cut, runtime state lost, boot (`lab/power.py`, which documents what boot
  runs: the boot hook /etc/wgbgp/boot.sh).
- `flap`: an interface down and up. The kernel drops the routes through it; an underlay
  port gets its routes back from the machine's network configuration, as `ifup` would.
- `kill_daemon`: SIGKILL every process of that name inside the machine, and only there
  (each machine has its own PID namespace).

Each returns what it did, for the caller to assert that the fault is real. Recovery is
not theirs: the agent (when it runs in the machine), watchfrr (for FRR's daemons) or
`wgbgp apply` (`faults.restart`) repairs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from .build import Lab
from .power import Boot, tunnel_links, underlay_ifaces
from .power import reboot as power_reboot
from .state import LabState
from .underlay import carrier_node, link_mac, node_batch

ROAM_TOP = 250  # roamed clients get subscriber addresses from .250 down
ROAM_LINKS = 10000  # link numbers of roamed uplinks (for their MACs), past the plan's


class FaultError(ValueError):
    """The fault cannot be injected as asked (a user error, reported as a message)."""


def _state(lab: Lab) -> LabState:
    state = LabState.load(lab.name)
    if state is None:
        raise FaultError(f"lab {lab.name!r} has no state file")
    return state


def _client(lab: Lab, node: str) -> None:
    if node not in lab.plan.carrier_of:
        clients = ", ".join(lab.plan.carrier_of) or "none"
        raise FaultError(f"{node!r} is not a client of this lab (clients: {clients}); "
                         "only a client changes carrier")


def _carrier(lab: Lab, carrier: str) -> int:
    names = [c.name for c in lab.spec.carriers]
    if carrier not in names:
        raise FaultError(f"lab {lab.name!r} has no carrier {carrier!r} "
                         f"(carriers: {', '.join(names)})")
    return names.index(carrier)


@dataclass(frozen=True)
class Roamed:
    node: str
    carrier: str
    before: IPv4Address  # public address the Internet saw
    after: IPv4Address
    address: IPv4Address  # the client's own new address (a subscriber of the carrier)


def roam(lab: Lab, node: str, carrier: str) -> Roamed:
    """Move client `node` to `carrier`: a new uplink, a new address, a new public address."""
    _client(lab, node)
    ci = _carrier(lab, carrier)
    if lab.plan.carrier_of[node] == carrier and node not in {
            c.name for c in lab.spec.clients if c.home_nat}:
        raise FaultError(f"{node} is on carrier {carrier} already; roam to another one")
    state = _state(lab)
    count = int(state.life.get("roam_count", 0))
    subnet = list(lab.spec.ranges.subscribers.subnets(new_prefix=24))[ci]
    gw = subnet.network_address + 1
    used = {a for n, a in lab.plan.address.items() if lab.plan.carrier_of.get(n) == carrier}
    address = next(subnet.network_address + ROAM_TOP - k for k in range(ROAM_TOP - 2)
                   if subnet.network_address + ROAM_TOP - k not in used)
    far_if = f"r{count}"
    before = lab.plan.public_ip(node)
    ns_client, ns_carrier = lab.plan.ns(node), lab.plan.ns(carrier_node(carrier))
    client_x = lab.netns_executor(node)
    client_x.run(["ip", "link", "del", "dev", "eth0"])  # the old uplink, both of its ends
    up = {"carrier": carrier, "address": str(address), "gateway": str(gw), "far_if": far_if,
          "mac": link_mac(lab.name, ROAM_LINKS + count, "a"),
          "far_mac": link_mac(lab.name, ROAM_LINKS + count, "b")}
    _ip(["link", "add", "eth0", "netns", ns_client, "address", up["mac"], "type", "veth",
         "peer", "name", far_if, "netns", ns_carrier, "address", up["far_mac"]])
    lab.netns_executor(carrier_node(carrier)).run(["ip", "-batch", "-"], input=(
        f'link set {far_if} alias "client {node} (roamed)"\n' + _port_lines(up, far=True)))
    client_x.run(["ip", "-batch", "-"], input=_port_lines(up, far=False) +
                 f"route add default via {gw} dev eth0\n")
    state.set_life("roam_count", count + 1)
    roams = dict(_state(lab).life.get("roams", {}))
    roams[node] = up
    state.set_life("roams", roams)
    lab.roams[node] = up
    lab.plan.carrier_of[node] = carrier
    lab.plan.address[node], lab.plan.gateway[node] = address, gw
    return Roamed(node, carrier, before, lab.plan.public_ip(node), address)


def _port_lines(up: dict[str, str], far: bool) -> str:
    """`ip -batch` lines for one end of a roamed client's uplink (as node_batch writes)."""
    me, peer, ifname, peer_mac = ((up["gateway"], up["address"], up["far_if"], up["mac"])
                                  if far else
                                  (up["address"], up["gateway"], "eth0", up["far_mac"]))
    return (f"addr add {me}/32 peer {peer}/32 dev {ifname}\nlink set {ifname} up\n"
            f"neigh replace {peer} lladdr {peer_mac} dev {ifname} nud permanent\n")


def reattach(lab: Lab, short: str, ifname: str) -> None:
    """What the network configuration redoes when a port comes up again: its address,
    neighbour entry and routes (an admin down flushes the routes and neighbours)."""
    machine = short in lab.spec.machines
    roamed = lab.roams.get(short) if ifname == "eth0" else next(
        (r for r in lab.roams.values() if r["far_if"] == ifname
         and lab.plan.resolve(short) == carrier_node(r["carrier"])), None)
    if roamed is not None:
        lines = _port_lines(roamed, far=ifname != "eth0")
        if ifname == "eth0":
            lines += f"route add default via {roamed['gateway']} dev eth0\n"
    else:
        node = lab.plan.node(short)
        lines = "".join(line + "\n" for line in node_batch(lab.plan, node).splitlines()
                        if line.endswith(f"dev {ifname}") or f" dev {ifname} " in line)
    x = lab.machine(short).executor() if machine else lab.netns_executor(short)
    x.run(["ip", "-force", "-batch", "-"], input=lines, check=False)


def _ip(args: list[str]) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise FaultError(f"`ip {' '.join(args[:3])} ...` failed: {res.stderr.strip()}")


@dataclass(frozen=True)
class NatReset:
    carrier: str
    flushed: int  # UDP mappings forgotten
    ports: str    # how the carrier now picks public ports


PORT_RANGES = ((20000, 20999), (30000, 30999), (40000, 40999), (50000, 50999))


def mapped_ports(lab: Lab, carrier: str) -> dict[str, int]:
    """Public UDP ports of the carrier's current mappings: subscriber ip:port -> port."""
    out = lab.netns_executor(carrier_node(carrier)).run(
        ["conntrack", "-L", "-p", "udp"], check=False).stdout
    ports = {}
    for line in out.splitlines():
        # `udp 17 29 src=SUB dst=HUB sport=P dport=51820 src=HUB dst=PUBLIC sport=51820
        # dport=MAPPED ...`: the reply tuple's destination port is the public port.
        tuples = re.findall(r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)", line)
        if len(tuples) == 2:
            (src, _, sport, _), (_, _, _, mapped) = tuples
            ports[f"{src}:{sport}"] = int(mapped)
    return ports


def nat_reset(lab: Lab, carrier: str) -> NatReset:
    """The carrier forgets every mapping; the next packets get new public ports."""
    _carrier(lab, carrier)
    state = _state(lab)
    epochs = dict(state.life.get("nat", {}))
    epoch = int(epochs.get(carrier, 0)) + 1
    x = lab.netns_executor(carrier_node(carrier))
    mappings = mapped_ports(lab, carrier)
    taken = set(mappings.values())
    if epoch % 2:
        lo, hi = next(r for r in PORT_RANGES if not any(r[0] <= p <= r[1] for p in taken))
        rules = [f"meta l4proto {{ tcp, udp }} masquerade to :{lo}-{hi}", "masquerade"]
        ports = f"ports {lo}-{hi}"
    else:
        rules, ports = ["masquerade"], "source port kept where free"
    # The rules first: a packet between the flush and the new rule would map as before.
    x.run(["nft", "-f", "-"], input="flush chain ip wgbgp_nat postrouting\n" + "".join(
        f'add rule ip wgbgp_nat postrouting oifname "wan" {rule}\n' for rule in rules))
    x.run(["conntrack", "-F"])
    epochs[carrier] = epoch
    state.set_life("nat", epochs)
    return NatReset(carrier, len(mappings), ports)


@dataclass
class Frozen:
    """A machine in its sleep: what was stopped and which link went silent."""

    machine: str
    pids: list[int]
    link: tuple[str, str]  # (namespace, interface) brought down
    since: float = field(default_factory=time.monotonic)


def freeze(lab: Lab, machine: str) -> Frozen:
    """The lid closes: the link goes silent, then every process of the machine stops."""
    m = lab.machine(machine)
    ns, ifname = lab.uplink(machine)
    lab.netns_executor(ns).run(["ip", "link", "set", "dev", ifname, "down"])
    pids = m.pids()
    for pid in pids:
        _signal(pid, signal.SIGSTOP)
    return Frozen(machine, pids, (ns, ifname))


def thaw(lab: Lab, frozen: Frozen) -> float:
    """The lid opens: the link back, every process continued; seconds it slept."""
    ns, ifname = frozen.link
    lab.netns_executor(ns).run(["ip", "link", "set", "dev", ifname, "up"])
    reattach(lab, ns, ifname)
    for pid in frozen.pids:
        _signal(pid, signal.SIGCONT)
    return time.monotonic() - frozen.since


def sleep(lab: Lab, machine: str, seconds: float) -> Frozen:
    """Freeze the machine for `seconds` (the time passing is the fault), then thaw it."""
    frozen = freeze(lab, machine)
    try:
        time.sleep(seconds)
    finally:
        thaw(lab, frozen)
    return frozen


def stopped(pid: int) -> bool:
    """The process is stopped by a signal (state T)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


@dataclass(frozen=True)
class Flapped:
    machine: str
    iface: str
    routes_lost: list[str]  # routes through the interface that the flap removed


def _routes(lab: Lab, machine: str, iface: str) -> list[str]:
    x = lab.machine(machine).executor()
    routes = []
    for family in ("-4", "-6"):
        res = x.run(["ip", "-j", family, "route", "show", "dev", iface], check=False)
        routes += [r.get("dst", "") for r in json.loads(res.stdout or "[]")]
    return sorted(routes)


def flap(lab: Lab, machine: str, iface: str) -> Flapped:
    """`ip link set IFACE down`, then `up`; an underlay port gets its routes back."""
    x = lab.machine(machine).executor()
    if not x.run(["ip", "link", "show", "dev", iface], check=False).ok:
        links = x.run(["ip", "-o", "link", "show"], check=False).stdout
        names = re.findall(r"^\d+:\s+([^:@\s]+)", links, flags=re.M)
        raise FaultError(f"machine {machine} has no interface {iface!r} "
                         f"(interfaces: {', '.join(names)})")
    before = _routes(lab, machine, iface)
    x.run(["ip", "link", "set", "dev", iface, "down"])
    x.run(["ip", "link", "set", "dev", iface, "up"])
    after = _routes(lab, machine, iface)
    if iface in underlay_ifaces(lab, machine):  # the network configuration redoes it
        reattach(lab, machine, iface)
    return Flapped(machine, iface, [r for r in before if r not in after])


@dataclass(frozen=True)
class Killed:
    machine: str
    daemon: str
    pids: list[int]  # as the machine sees them (its own PID namespace)


def kill_daemon(lab: Lab, machine: str, daemon: str, timeout: float = 10) -> Killed:
    """SIGKILL every process named `daemon` in the machine (and nowhere else)."""
    x = lab.machine(machine).executor()
    pids = [int(p) for p in x.run(["pgrep", "-x", daemon], check=False).stdout.split()]
    if not pids:
        raise FaultError(f"no process named {daemon!r} runs in machine {machine}")
    x.run(["kill", "-KILL", *map(str, pids)], check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = set(x.run(["pgrep", "-x", daemon], check=False).stdout.split())
        if not alive & {str(p) for p in pids}:
            break
        time.sleep(0.05)
    return Killed(machine, daemon, pids)


@dataclass(frozen=True)
class Rebooted:
    machine: str
    lost: list[str]
    boot: Boot


def reboot(lab: Lab, machine: str) -> Rebooted:
    """Every process killed, the runtime state gone, then boot (see lab/power.py)."""
    tunnels = [f"interface {t}" for t in tunnel_links(lab, machine)]
    lost, booted = power_reboot(lab, machine)
    return Rebooted(machine, tunnels + [w for w in lost if w not in tunnels], booted)

