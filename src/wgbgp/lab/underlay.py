"""The emulated Internet: namespaces, veth links, addresses, routes and CG-NAT.

`plan_underlay` is pure: a LabSpec becomes an `UnderlayPlan` (every namespace, link,
address, route, sysctl and nftables ruleset). `build_underlay` performs it with
iproute2, sysctl and nft, recording every namespace in the lab state first.

Shape (all links are veth pairs with point-to-point /32 addresses):

    hub --eth0~h0-- inet --c0~wan-- carrier --s0~eth0-- client
                                            --s1~wan-- home --lan~eth0-- client
    mgmt: bridge br0 with one isolated port m<i> per machine (machine side: mgmt0)

Interfaces are created directly inside their namespaces, never in the host's, so their
names only need to be unique per namespace and two labs cannot collide.
"""

from __future__ import annotations

import hashlib
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from wgbgp.lab.spec import LabSpec, LabSpecError
from wgbgp.lab.state import NETNS_DIR, LabState, lab_dir

# The lab's own addresses are the spec's `ranges` (LabRanges), chosen around the
# topology's. Subscriber space is always CG-NAT space, as at a real carrier.
CGNAT_SPACE = IPv4Network("100.64.0.0/10")


def netns_name(lab: str, short: str) -> str:
    """Namespace name for a machine or infrastructure node: `wgbgp-<lab>-<short>`."""
    return f"wgbgp-{lab}-{short}"


def infra(short: str) -> str:
    """Node name of an infrastructure namespace ("inet" -> "_inet"): `_` first, which no
    machine name has, so that every valid machine name (`internet`, `carrier`,
    `home-server`, even `inet`) works."""
    return "_" + short


INET, MGMT = infra("inet"), infra("mgmt")


def carrier_node(carrier: str) -> str:
    return infra(f"carrier-{carrier}")


def home_node(client: str) -> str:
    return infra(f"home-{client}")


@dataclass(frozen=True)
class End:
    """One end of a veth link."""

    ns: str          # node name (a machine's name, or INET, carrier_node(c), ...)
    ifname: str      # <= 15 characters
    addr: IPv4Address | None = None
    alias: str = ""  # human hint shown by `ip link` (what is at the other end)


@dataclass(frozen=True)
class Link:
    a: End
    b: End


@dataclass(frozen=True)
class Node:
    """One network namespace and its configuration."""

    short: str
    role: str                      # internet | carrier | home | hub | client | mgmt
    routes: tuple[str, ...] = ()   # `ip route` arguments
    sysctls: tuple[tuple[str, str], ...] = ()
    nft: str = ""                  # ruleset loaded with `nft -f`
    extra_ip: tuple[str, ...] = ()  # further `ip -batch` lines (bridge, ...)


@dataclass(frozen=True)
class UnderlayPlan:
    """Everything the underlay consists of, derived from a LabSpec only."""

    lab: str
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    carrier_ip: dict[str, IPv4Address] = field(default_factory=dict)   # carrier -> public
    address: dict[str, IPv4Address] = field(default_factory=dict)      # machine -> own addr
    gateway: dict[str, IPv4Address] = field(default_factory=dict)      # machine -> next hop
    mgmt_ip: dict[str, IPv4Address] = field(default_factory=dict)      # machine -> mgmt addr
    carrier_of: dict[str, str] = field(default_factory=dict)            # client -> carrier
    mgmt_prefixlen: int = 16

    def resolve(self, short: str) -> str:
        """A node's name: a machine's, or an infrastructure node's as its own ("_inet") or
        as it was called before machines could take any name ("inet", "carrier-<c>")."""
        names = {n.short for n in self.nodes}
        if short in names:
            return short
        if infra(short) in names:
            return infra(short)
        raise KeyError(f"lab {self.lab!r} has no namespace {short!r}")

    def ns(self, short: str) -> str:
        """Full namespace name of a node."""
        return netns_name(self.lab, self.resolve(short))

    @property
    def namespaces(self) -> list[str]:
        return [netns_name(self.lab, n.short) for n in self.nodes]

    def node(self, short: str) -> Node:
        short = self.resolve(short)
        return next(n for n in self.nodes if n.short == short)

    def public_ip(self, machine: str) -> IPv4Address:
        """The address the Internet sees for a machine (a client's is its carrier's)."""
        if machine in self.carrier_of:
            return self.carrier_ip[self.carrier_of[machine]]
        return self.address[machine]


_ROUTER = (("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "0"),
           ("net.ipv4.conf.default.rp_filter", "0"),
           # Infrastructure is IPv4 only; no IPv6 link-local chatter in captures.
           ("net.ipv6.conf.all.disable_ipv6", "1"), ("net.ipv6.conf.default.disable_ipv6", "1"))
# What a freshly installed Debian host has; set explicitly because a new namespace
# inherits IPv4 settings from the host's, and tests (e.g. "hub not forwarding") need
# the same start everywhere.
MACHINE_SYSCTLS = (("net.ipv4.ip_forward", "0"), ("net.ipv6.conf.all.forwarding", "0"),
                   ("net.ipv4.conf.all.rp_filter", "0"),
                   ("net.ipv4.conf.default.rp_filter", "0"))


def nat_ruleset(wan: str = "wan") -> str:
    """NAT as a carrier or home router does it: masquerade out, nothing unsolicited in."""
    return f"""\
table ip wgbgp_nat {{
	chain forward {{
		type filter hook forward priority filter; policy accept;
		ct state established,related accept
		# No mapping for this flow: unsolicited inbound dies here, as at a real CG-NAT.
		iifname "{wan}" counter drop
	}}
	chain input {{
		type filter hook input priority filter; policy accept;
		ct state established,related accept
		# A stranger aiming at a subscriber's mapping (the public address:port) from an
		# address that mapping was not opened to reaches the router itself: dropped too.
		iifname "{wan}" counter drop
	}}
	chain postrouting {{
		type nat hook postrouting priority srcnat; policy accept;
		oifname "{wan}" masquerade
	}}
}}
"""


def plan_underlay(spec: LabSpec, mgmt: bool = True) -> UnderlayPlan:
    """The address plan and configuration of every namespace. Pure."""
    r = spec.ranges
    for hub in spec.hubs:
        ip = hub.public_ip
        inside = [kind for kind, net in r.named().items() if ip in net]
        if inside or ip in CGNAT_SPACE or ip.is_loopback or ip.is_multicast \
                or ip.is_unspecified or ip.is_link_local or ip.is_reserved:
            where = f"the lab's own {inside[0]} range" if inside else "CG-NAT space" \
                if ip in CGNAT_SPACE else "no unicast address"
            raise LabSpecError(
                f"hub {hub.name!r}: public IP {hub.public_ip} is inside the lab's own "
                f"address space or not a unicast address ({where}); pick another")
    inet_gw = r.inet_gw
    if len(spec.carriers) > 256:
        raise LabSpecError("at most 256 carriers")
    nodes: list[Node] = []
    links: list[Link] = []
    address: dict[str, IPv4Address] = {}
    gateway: dict[str, IPv4Address] = {}

    for i, hub in enumerate(spec.hubs):
        links.append(Link(End(hub.name, "eth0", hub.public_ip, "internet"),
                          End(INET, f"h{i}", inet_gw, f"hub {hub.name}")))
        address[hub.name] = hub.public_ip
        gateway[hub.name] = inet_gw
        nodes.append(Node(hub.name, "hub", (f"default via {inet_gw} dev eth0",),
                          MACHINE_SYSCTLS))

    hub_ips = {h.public_ip for h in spec.hubs}
    pool = (ip for ip in r.carrier_pool.hosts() if ip not in hub_ips and ip != inet_gw)
    subnets = list(r.subscribers.subnets(new_prefix=24))
    lans = list(r.homes.subnets(new_prefix=24))
    carrier_ip: dict[str, IPv4Address] = {}
    client_carrier: dict[str, str] = {}
    homes = 0
    for ci, carrier in enumerate(spec.carriers):
        cshort = carrier_node(carrier.name)
        carrier_ip[carrier.name] = public = next(pool)
        links.append(Link(End(cshort, "wan", public, "internet"),
                          End(INET, f"c{ci}", inet_gw, f"carrier {carrier.name}")))
        if ci >= len(subnets):
            raise LabSpecError(f"at most {len(subnets)} carriers ({r.subscribers} is the "
                               "lab's subscriber range)")
        subnet = subnets[ci]
        gw = subnet.network_address + 1
        subscribers = [c for c in spec.clients if c.carrier == carrier.name]
        if len(subscribers) > 253:
            raise LabSpecError(f"carrier {carrier.name!r}: at most 253 subscribers")
        for si, client in enumerate(subscribers):
            client_carrier[client.name] = carrier.name
            sub_ip = gw + 1 + si
            if client.home_nat:
                home = home_node(client.name)
                homes += 1
                if homes >= len(lans):
                    raise LabSpecError(f"at most {len(lans) - 1} clients behind home NAT")
                lan_gw = lans[homes].network_address + 1
                links.append(Link(End(home, "wan", sub_ip, f"carrier {carrier.name}"),
                                  End(cshort, f"s{si}", gw, f"home of {client.name}")))
                links.append(Link(End(client.name, "eth0", lan_gw + 1, "home router"),
                                  End(home, "lan", lan_gw, f"client {client.name}")))
                nodes.append(Node(home, "home", (f"default via {gw} dev wan",), _ROUTER,
                                  nat_ruleset("wan")))
                address[client.name], gateway[client.name] = lan_gw + 1, lan_gw
            else:
                links.append(Link(End(client.name, "eth0", sub_ip, f"carrier {carrier.name}"),
                                  End(cshort, f"s{si}", gw, f"client {client.name}")))
                address[client.name], gateway[client.name] = sub_ip, gw
        timeout = str(carrier.udp_timeout)
        nodes.append(Node(cshort, "carrier", (f"default via {inet_gw} dev wan",), (
            *_ROUTER,
            # Both: a flow with replies counts as a "stream" and would get 120 s otherwise.
            ("net.netfilter.nf_conntrack_udp_timeout", timeout),
            ("net.netfilter.nf_conntrack_udp_timeout_stream", timeout)),
            nat_ruleset("wan")))
    for client in spec.clients:
        nodes.append(Node(client.name, "client",
                          (f"default via {gateway[client.name]} dev eth0",), MACHINE_SYSCTLS))

    mgmt_ip: dict[str, IPv4Address] = {}
    if mgmt:
        mgmt_gw = r.mgmt.broadcast_address - 1  # the mgmt namespace's own address
        bridge = ["link add br0 type bridge", f"addr add {mgmt_gw}/{r.mgmt.prefixlen} dev br0",
                  "link set br0 up"]
        if len(spec.machines) >= r.mgmt.num_addresses - 3:
            raise LabSpecError(f"at most {r.mgmt.num_addresses - 4} machines "
                               f"({r.mgmt} is the lab's management range)")
        for mi, machine in enumerate(spec.machines):
            mgmt_ip[machine] = r.mgmt.network_address + 1 + mi
            links.append(Link(End(machine, "mgmt0", None, "lab management"),
                              End(MGMT, f"m{mi}", None, f"machine {machine}")))
            # Isolated ports talk to the bridge (the mgmt namespace), never to each other:
            # management must not become a path between clients that bypasses the CG-NAT.
            bridge += [f"link set m{mi} master br0",
                       f"link set m{mi} type bridge_slave isolated on"]
        nodes.append(Node(MGMT, "mgmt", (), (("net.ipv4.ip_forward", "0"), *_ROUTER[1:]),
                          extra_ip=tuple(bridge)))
    # The Internet needs no routes: each link's peer address is a host route already.
    nodes.insert(0, Node(INET, "internet", (), _ROUTER))
    return UnderlayPlan(spec.name, tuple(nodes), tuple(links), carrier_ip, address, gateway,
                        mgmt_ip, client_carrier, r.mgmt.prefixlen)


def host_batch(plan: UnderlayPlan) -> str:
    """`ip -batch` lines run in the host namespace: create namespaces and veth pairs.

    Each veth end is created directly inside its namespace (`netns` on both ends), so no
    interface ever exists in the host's namespace, even for a moment.
    """
    lines = [f"netns add {ns}" for ns in plan.namespaces]
    for i, link in enumerate(plan.links):
        lines.append(f"link add {link.a.ifname} netns {plan.ns(link.a.ns)} "
                     f"address {link_mac(plan.lab, i, 'a')} type veth "
                     f"peer name {link.b.ifname} netns {plan.ns(link.b.ns)} "
                     f"address {link_mac(plan.lab, i, 'b')}")
    return "".join(line + "\n" for line in lines)


def link_mac(lab: str, index: int, side: str) -> str:
    """The MAC address of one end of a link: fixed, so that each end's neighbour entry for
    the other can be written before any packet flows (see node_batch)."""
    digest = hashlib.sha256(f"{lab}/{index}/{side}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))  # locally administered


def node_batch(plan: UnderlayPlan, node: Node) -> str:
    """`ip -batch` lines run inside one namespace: addresses, links up, routes."""
    lines = ["link set lo up", *node.extra_ip]
    for i, link in enumerate(plan.links):
        for me, peer, side in ((link.a, link.b, "b"), (link.b, link.a, "a")):
            if me.ns != node.short:
                continue
            if me.alias:
                lines.append(f'link set {me.ifname} alias "{me.alias}"')
            if me.addr is not None:
                lines.append(f"addr add {me.addr}/32 peer {peer.addr}/32 dev {me.ifname}")
                # A permanent neighbour entry: ARP entries are one host-wide table (1,024
                # by default, shared by every namespace and lab), and once it overflows a
                # dynamic entry that expires is never re-made: traffic on the link stops.
                # Permanent entries are exempt from that limit.
                lines.append(f"neigh replace {peer.addr} lladdr {link_mac(plan.lab, i, side)} "
                             f"dev {me.ifname} nud permanent")
            elif me.ifname == "mgmt0":
                lines.append(f"addr add {plan.mgmt_ip[node.short]}/{plan.mgmt_prefixlen} "
                             "dev mgmt0")
            lines.append(f"link set {me.ifname} up")
    lines += [f"route add {r}" for r in node.routes]
    return "".join(line + "\n" for line in lines)


def node_script(plan: UnderlayPlan, node: Node, files: Path) -> str:
    """Shell run inside the namespace; the batch and ruleset files stay for inspection."""
    sysctls = " ".join(f"{k}={v}" for k, v in node.sysctls)
    if node.short in plan.mgmt_ip:
        sysctls += " net.ipv6.conf.mgmt0.disable_ipv6=1"
    script = "set -e\n"
    if sysctls:
        script += f"sysctl -q -w {sysctls}\n"
    script += f"ip -batch {files / (node.short + '.ip')}\n"
    if node.nft:
        script += f"nft -f {files / (node.short + '.nft')}\n"
    return script


class UnderlayError(RuntimeError):
    """Building the underlay failed; the lab state still lists what to tear down."""


def build_underlay(plan: UnderlayPlan, state: LabState, workers: int = 4) -> None:
    """Create every namespace and link of `plan`, recording them in `state` first."""
    taken = [ns for ns in plan.namespaces if (NETNS_DIR / ns).exists()]
    if taken:
        raise UnderlayError(
            f"network namespace{'s' if len(taken) > 1 else ''} already "
            f"{'exist' if len(taken) > 1 else 'exists'}: {', '.join(taken)}; another lab with an "
            "overlapping name is running. Pick another lab name.")
    files = lab_dir(plan.lab) / "underlay"
    files.mkdir(parents=True, exist_ok=True)
    state.record(namespaces=plan.namespaces)
    _run(["ip", "-batch", "-"], input=host_batch(plan))
    for node in plan.nodes:
        (files / f"{node.short}.ip").write_text(node_batch(plan, node))
        if node.nft:
            (files / f"{node.short}.nft").write_text(node.nft)

    def configure(node: Node) -> None:
        _run(["nsenter", f"--net={NETNS_DIR / plan.ns(node.short)}", "sh", "-c",
              node_script(plan, node, files)], what=node.short)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(configure, plan.nodes))


def _run(argv: list[str], input: str | None = None, what: str = "") -> None:
    res = subprocess.run(argv, input=input, capture_output=True, text=True)
    if res.returncode != 0:
        where = f" in {what}" if what else ""
        raise UnderlayError(f"`{' '.join(argv[:3])} ...`{where} failed: "
                            f"{(res.stderr or res.stdout).strip()}")
