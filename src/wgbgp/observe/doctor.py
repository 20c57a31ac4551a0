"""Doctor: from what was observed to what is wrong, why, and how to fix it. Pure.

Input: an `Observation` (snapshots of the machines we could reach, probe results) and
the plans of the whole topology. Output: a `Report` of checks, bottom-up in layers:

    1 tunnel   the WireGuard interface, keys, endpoint, handshake, keepalive/NAT, hub ping
    2 overlay  a peer's tunnel address answers through the hub (the hub forwards)
    3 bgp      daemon, neighbour config (address, ASN, TTL), TCP 179, session Established
    4 routes   policy (RFC 8212), each expected prefix received and installed
    5 data     announced address to announced address, full-size packets (MTU)

Each check has a stable code, a verdict (ok/warn/fail/skip), evidence and a fix. A
layer is only judged where the layers below it work: a session that is down because
there is no handshake is `skip`, `because` the handshake finding, so the first failing
finding is the root cause and symptoms are not reported as separate problems.
Configuration facts that break a layer (a key, AllowedIPs, ip_forward, a missing
daemon) are checked on every machine regardless and are what symptoms are blamed on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Literal

from ..compile.plan import BgpSession, Plan, Tunnel, TunnelPeer
from ..model.schema import split_endpoint
from ..words import plural
from .expect import Expected, covers
from .frr import BgpNeighbor
from .gather import Observation
from .probe import ProbeResult
from .status import MachineStatus
from .wireguard import REJECT_AFTER_TIME, WgInterface, WgPeer

SCHEMA = "wgbgp.doctor/1"
Verdict = Literal["ok", "warn", "fail", "skip"]
LAYERS = {0: "machine", 1: "tunnel", 2: "overlay", 3: "bgp", 4: "routes", 5: "data"}


@dataclass(frozen=True)
class Code:
    """A kind of finding: stable name, its layer, and what it means."""

    name: str
    layer: int
    meaning: str


_CODES = [
    Code("MACHINE_UNREACHABLE", 0, "the machine could not be inspected at all"),
    Code("WG_INTERFACE_MISSING", 1, "the WireGuard interface the topology needs is not up"),
    Code("WG_KEY_MISMATCH", 1, "a live public key differs from the topology"),
    Code("WG_ENDPOINT_MISMATCH", 1, "a client dials a different endpoint than the hub listens on"),
    Code("WG_ADDRESS_MISSING", 1, "the interface lacks its tunnel address"),
    Code("WG_NO_HANDSHAKE", 1, "no recent WireGuard handshake with the hub"),
    Code("UDP_BLOCKED", 1, "handshake packets do not reach the hub although keys and endpoint "
         "are right"),
    Code("NAT_MAPPING_EXPIRED", 1, "the hub cannot reach an idle client: its NAT mapping "
         "expired (no keepalive)"),
    Code("WG_NO_KEEPALIVE", 1, "PersistentKeepalive is off on a client behind NAT"),
    Code("ALLOWEDIPS_NARROW", 1, "a peer's AllowedIPs do not cover addresses it must carry"),
    Code("HUB_UNREACHABLE", 1, "the tunnel is up but the hub's tunnel address does not answer"),
    Code("CLIENT_UNREACHABLE", 1, "the hub cannot reach a client's tunnel address"),
    Code("HUB_NOT_FORWARDING", 2, "the hub does not forward between tunnel peers"),
    Code("PEER_UNREACHABLE", 2, "a peer's tunnel address does not answer through the hub"),
    Code("BGP_DAEMON_DOWN", 3, "the BGP daemon (FRR's bgpd, or BIRD) is not running"),
    Code("BGP_NOT_CONFIGURED", 3, "the BGP daemon runs without the BGP configuration the "
         "topology needs"),
    Code("BGP_NEIGHBOR_MISSING", 3, "the neighbour address the topology needs is not configured"),
    Code("ASN_MISMATCH", 3, "an AS number differs between the two ends and the topology"),
    Code("BGP_TTL", 3, "eBGP TTL 1 (no multihop) while the path crosses the hub"),
    Code("BGP_TCP_BLOCKED", 3, "TCP port 179 to the neighbour does not answer"),
    Code("BGP_SESSION_DOWN", 3, "the session is not Established (no more specific cause seen)"),
    Code("POLICY_MISSING", 4, "no import/export policy: the daemon (RFC 8212) exchanges no "
         "routes"),
    Code("PREFIX_NOT_ORIGINATED", 4, "a machine does not originate a prefix it announces"),
    Code("PREFIX_NOT_RECEIVED", 4, "an expected prefix was not received from its neighbour"),
    Code("PREFIX_NOT_INSTALLED", 4, "a received prefix is not installed in the kernel"),
    Code("ANNOUNCED_UNREACHABLE", 5, "announced addresses do not reach each other"),
    Code("MTU_BLACKHOLE", 5, "full-size packets with DF set are dropped silently"),
    Code("MTU_MISMATCH", 5, "the interface MTU differs from the topology"),
    Code("FORWARDING_OFF", 5, "a client routing a network behind it does not forward"),
]
CODES: dict[str, Code] = {c.name: c for c in _CODES}


@dataclass(frozen=True)
class Check:
    """One judged fact about one machine."""

    code: str
    machine: str
    subject: str
    verdict: Verdict
    message: str
    evidence: tuple[str, ...] = ()
    fix: str = ""
    because: str | None = None  # skip: "CODE@machine" of the finding that explains it
    layer: int = -1

    def __post_init__(self) -> None:
        if self.layer < 0:
            object.__setattr__(self, "layer", CODES[self.code].layer)

    @property
    def ref(self) -> str:
        return f"{self.code}@{self.machine}"

    @property
    def problem(self) -> bool:
        return self.verdict in ("fail", "warn")

    def to_json(self) -> dict:
        return {"code": self.code, "machine": self.machine, "subject": self.subject,
                "verdict": self.verdict, "layer": LAYERS[self.layer], "message": self.message,
                "evidence": list(self.evidence), "fix": self.fix, "because": self.because}


@dataclass
class Report:
    """All checks, in the order they were judged (bottom-up)."""

    checks: list[Check] = field(default_factory=list)
    machines: tuple[str, ...] = ()
    unobserved: tuple[str, ...] = ()

    @property
    def findings(self) -> list[Check]:
        """Problems, root causes first: failures before warnings, lower layers first."""
        order = {m: i for i, m in enumerate(self.machines + self.unobserved)}
        probs = [c for c in self.checks if c.problem]
        return sorted(probs, key=lambda c: (c.verdict != "fail", c.layer,
                                             order.get(c.machine, 99)))

    @property
    def healthy(self) -> bool:
        return not any(c.verdict == "fail" for c in self.checks)

    @property
    def codes(self) -> list[str]:
        return [c.code for c in self.findings]

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "healthy": self.healthy, "machines": list(self.machines),
                "unobserved": list(self.unobserved),
                "findings": [c.to_json() for c in self.findings],
                "checks": [c.to_json() for c in self.checks]}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = int(seconds)
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


def _nets(nets: Iterable[IPv4Network | IPv6Network]) -> str:
    return ", ".join(str(n) for n in nets)


def _inside(address: str | None, prefix: IPv4Network | IPv6Network) -> bool:
    """Whether `address` (text, as a probe names it) lies in `prefix`; False when it is not
    an address. A containment test: never walks the prefix's addresses."""
    if not address:
        return False
    try:
        return ip_address(address) in prefix
    except ValueError:
        return False


@dataclass(frozen=True)
class _Daemon:
    """How one machine's BGP daemon is named, configured and asked, for messages and fixes:
    a BIRD node gets BIRD's words and commands, an FRR node FRR's."""

    kind: str  # "frr" | "bird"

    @property
    def bird(self) -> bool:
        return self.kind == "bird"

    @property
    def name(self) -> str:
        return "BIRD" if self.bird else "FRR"

    @property
    def process(self) -> str:
        """The process that speaks BGP (the subject of BGP_DAEMON_DOWN)."""
        return "bird" if self.bird else "bgpd"

    @property
    def conf(self) -> str:
        return "bird.conf" if self.bird else "frr.conf"

    def cli(self) -> str:
        return "birdc" if self.bird else "vtysh"

    def show_session(self, peer: str, address: object) -> str:
        """The command that shows one session in detail, and where the daemon logs."""
        if self.bird:
            return (f'`birdc show protocols all "{_bird_proto(peer)}*"` and BIRD\'s log '
                    f"(syslog)")
        return f"`vtysh -c 'show bgp neighbors {address}'` and FRR's log"

    def start_fix(self, m: str) -> str:
        if self.bird:
            return (f"on {m}: `wgbgp apply` starts BIRD again (`bird -c /etc/bird/bird.conf`, "
                    f"or `systemctl start bird`); `bird -p -c /etc/bird/bird.conf` checks "
                    f"its config, and the system log says why it stopped")
        return (f"on {m}: enable bgpd=yes in /etc/frr/daemons and (re)start FRR "
                f"(`systemctl restart frr` or /usr/lib/frr/frrinit.sh restart); "
                f"its log says why it stopped")

    def neighbor_line(self, address: object, asn: int) -> str:
        return (f"`neighbor {address} as {asn};` in its BGP protocol" if self.bird
                else f"`neighbor {address} remote-as {asn}`")


def _bird_proto(peer: str) -> str:
    """The start of the BIRD protocol names wgbgp renders for sessions with `peer`."""
    return peer.replace("-", "_") + "_"


def _afi(prefix: object) -> str:
    return "ipv6" if getattr(prefix, "version", 4) == 6 else "ipv4"


def _ip(prefix: object) -> str:
    """FRR's keyword for a prefix's family in `show ... route`."""
    return "ipv6" if getattr(prefix, "version", 4) == 6 else "ip"


class _Doctor:
    def __init__(self, obs: Observation, plans: Mapping[str, Plan]) -> None:
        self.obs = obs
        self.plans = plans
        self.exp = Expected(plans)
        self.st: Mapping[str, MachineStatus] = obs.statuses
        self.checks: list[Check] = []
        self._seen: dict[tuple[str, str, str], Check] = {}
        # The finding that breaks a client's own tunnel; a pair's path; a pair's session.
        self.tunnel_fault: dict[str, Check] = {}
        self.path_fault: dict[frozenset[str], Check] = {}
        self.session_fault: dict[frozenset[str], Check] = {}
        self.machine_fault: dict[str, Check] = {}
        # AllowedIPs findings by (machine, peer): (missing tunnel-level, missing prefixes)
        self.narrow: dict[tuple[str, str], Check] = {}
        self.narrow_missing: dict[tuple[str, str], list[IPv4Network | IPv6Network]] = {}
        self.policy_fault: dict[tuple[str, str, str], Check] = {}  # (machine, peer, in|out)
        self.route_fault: dict[tuple[str, str], Check] = {}  # (machine, prefix)
        self.mtu_fault: dict[str, Check] = {}  # client -> its path to the hub
        self.data_fault: dict[frozenset[str], Check] = {}

    # -- recording ---------------------------------------------------------------------
    def add(self, code: str, machine: str, subject: str, verdict: Verdict, message: str,
            evidence: Iterable[str] = (), fix: str = "", because: Check | None = None,
            layer: int = -1) -> Check:
        key = (code, machine, subject)
        if key in self._seen:
            return self._seen[key]
        check = Check(code, machine, subject, verdict, message, tuple(evidence), fix,
                      because.ref if because else None, layer)
        self._seen[key] = check
        self.checks.append(check)
        return check

    def ok(self, code: str, machine: str, subject: str, message: str,
           evidence: Iterable[str] = ()) -> Check:
        return self.add(code, machine, subject, "ok", message, evidence)

    def skip(self, code: str, machine: str, subject: str, cause: Check) -> Check:
        return self.add(code, machine, subject, "skip",
                        f"not judged: {cause.code} on {cause.machine} explains it", (), "",
                        cause)

    # -- lookups -----------------------------------------------------------------------
    def daemon(self, machine: str) -> _Daemon:
        """The BGP daemon the topology gives `machine` (FRR unless it says BIRD)."""
        plan = self.plans.get(machine)
        return _Daemon(plan.bgp.daemon if plan is not None and plan.bgp is not None else "frr")

    def observed(self, machine: str) -> bool:
        return machine in self.st and machine not in self.machine_fault

    def neighbor(self, machine: str, address: str) -> BgpNeighbor | None:
        """The machine's live BGP neighbour at `address` (None: no such neighbour, or no
        BGP view of the machine)."""
        bgp = self.st[machine].bgp
        return bgp.neighbor(address) if bgp else None

    def probe(self, machine: str, purpose: str, target_machine: str | None = None
              ) -> ProbeResult | None:
        for p in self.obs.probes:
            if p.spec.machine == machine and p.spec.purpose == purpose and (
                    target_machine is None or p.spec.target_machine == target_machine):
                return p
        return None

    def largest_ok(self, machine: str, target: str) -> int | None:
        sizes = [p.spec.packet_size for p in self.obs.probes
                 if p.spec.machine == machine and p.spec.target_machine == target
                 and p.spec.purpose in ("mtu-search",) and p.ok and p.spec.packet_size]
        return max(sizes) if sizes else None

    def hub_peer(self, client: str, tunnel: Tunnel) -> tuple[WgPeer | None, str]:
        """The client's live peer for its hub, and how it was recognised."""
        iface = self.st[client].interface(tunnel.interface)
        if iface is None:
            return None, ""
        want = self.exp.public_key(tunnel.hub)
        if want and iface.peer(want):
            return iface.peer(want), "key"
        if len(iface.peers) == 1:
            return iface.peers[0], "only peer"
        return None, ""

    def client_peer(self, hub: str, tunnel: Tunnel, client: str) -> tuple[WgPeer | None, str]:
        """The hub's live peer for a client: by key, else by its tunnel address."""
        iface = self.st[hub].interface(tunnel.interface)
        if iface is None:
            return None, ""
        want = self.exp.public_key(client)
        if want and iface.peer(want):
            return iface.peer(want), "key"
        addr = self.exp.tunnel_address(client, tunnel.interface)
        for p in iface.peers:
            # The tunnel address alone: a /32, or a /128 in an IPv6 overlay.
            if addr and covers(p.allowed_ips, ip_network(addr)):
                return p, "allowed-ips"
        return None, ""

    def hub_tunnel(self, hub: str) -> Tunnel | None:
        plan = self.plans.get(hub)
        return plan.tunnels[0] if plan and plan.tunnels else None

    # -- the layers --------------------------------------------------------------------
    def run(self) -> None:
        for m in self.plans:
            if m in self.st:
                self.machine(m)
        for m in self.exp.hubs:
            if self.observed(m):
                self.hub_peers(m)
        for c in self.exp.clients:
            self.tunnel(c)
        for c in self.exp.clients:
            self.overlay(c)
        done: set[frozenset[str]] = set()
        for c in self.exp.clients:
            for s in self.exp.sessions(c):
                pair = frozenset((c, s.peer))
                if pair not in done:
                    done.add(pair)
                    self.bgp_pair(c, s.peer)
        for c in self.exp.clients:
            self.originate_and_policy(c)
        for c in self.exp.clients:
            self.routes(c)
        for c in self.exp.clients:
            self.mtu_to_hub(c)
        for c in self.exp.clients:
            self.data(c)

    # layer 0/1: facts about one machine's configuration
    def machine(self, m: str) -> None:
        status, plan = self.st[m], self.plans[m]
        errors = status.errors
        clock_failed = "wg" in errors and "addresses" in errors and "ip_forward" in errors
        if clock_failed:
            self.machine_fault[m] = self.add(
                "MACHINE_UNREACHABLE", m, m, "fail",
                f"{m} could not be inspected", [f"{k}: {v}" for k, v in errors.items()],
                f"check that {m} is up and reachable (SSH, or the lab node exists)")
            return
        for tunnel in plan.tunnels:
            iface = status.interface(tunnel.interface)
            subject = f"interface {tunnel.interface}"
            if iface is None:
                present = ", ".join(i.name for i in status.interfaces) or "none"
                ev = [f"WireGuard interfaces on {m}: {present}"]
                if "wg" in errors:
                    ev.append(f"`wg show all dump`: {errors['wg']}")
                self.add("WG_INTERFACE_MISSING", m, subject, "fail",
                         f"{tunnel.interface} is not up on {m}", ev,
                         f"on {m}: `wg-quick up {tunnel.interface}` (or `wgbgp apply`); "
                         f"`journalctl`/stderr of wg-quick tells why it fails")
                continue
            want = self.exp.public_key(m)
            if want and iface.public_key and iface.public_key != want:
                self.add("WG_KEY_MISMATCH", m, f"{tunnel.interface} own key", "fail",
                         f"{m}'s {tunnel.interface} runs with a different key than the "
                         f"topology says", [f"live public key {iface.public_key}",
                                            f"topology public key {want}"],
                         f"either put {iface.public_key} into the topology as {m}'s "
                         f"public_key (and re-apply the peers), or load the private key "
                         f"matching {want} on {m}")
            addrs = status.addresses_on(tunnel.interface)
            lacking = [a for a in tunnel.addresses if a not in addrs]
            if "addresses" not in errors and lacking:
                self.add("WG_ADDRESS_MISSING", m, subject, "fail",
                         f"{tunnel.interface} on {m} lacks its tunnel address "
                         f"{', '.join(map(str, lacking))}",
                         [f"addresses on {tunnel.interface}: "
                          f"{', '.join(map(str, addrs)) or 'none'}"],
                         f"on {m}: `ip addr add {lacking[0]} dev {tunnel.interface}` "
                         f"(wg-quick sets it from `Address =`)")
            mtu = status.mtus.get(tunnel.interface)
            if mtu is not None and mtu != tunnel.mtu:
                self.add("MTU_MISMATCH", m, subject, "warn",
                         f"{tunnel.interface} on {m} has MTU {mtu}, the topology says "
                         f"{tunnel.mtu}", [f"live MTU {mtu}"],
                         f"set `MTU = {tunnel.mtu}` (or change network.mtu) and re-apply")
            for tp in tunnel.peers:
                self.allowed_ips(m, tunnel, tp, iface)
        if plan.role == "hub":
            if status.ip_forward is False:
                self.add(
                    "HUB_NOT_FORWARDING", m, "ip_forward", "fail",
                    f"hub {m} does not forward IP (net.ipv4.ip_forward = 0): clients reach "
                    f"the hub but not each other",
                    ["sysctl net.ipv4.ip_forward = 0"],
                    f"on {m}: `sysctl -w net.ipv4.ip_forward=1`, and persist it in "
                    f"/etc/sysctl.d/90-wgbgp.conf (wgbgp apply does both)")
            elif status.ip_forward:
                self.ok("HUB_NOT_FORWARDING", m, "ip_forward", f"{m} forwards IP")
        elif plan.ip_forward and status.ip_forward is False:
            self.add("FORWARDING_OFF", m, "ip_forward", "fail",
                     f"{m} announces a network but does not forward into it",
                     ["sysctl net.ipv4.ip_forward = 0",
                      f"announces {_nets(self.exp.announced(m))}"],
                     f"on {m}: `sysctl -w net.ipv4.ip_forward=1` and persist it")
        if plan.bgp is not None:
            self.bgp_daemon(m)

    def allowed_ips(self, m: str, tunnel: Tunnel, tp: TunnelPeer, iface: WgInterface) -> None:
        if self.plans[m].role == "hub":
            live, _ = self.client_peer(m, tunnel, tp.name)
        else:
            live, _ = self.hub_peer(m, tunnel)
        if live is None:
            return
        required = self.exp.required_allowed_ips(m, tunnel, tp)
        missing = [(n, why) for n, why in required if not covers(live.allowed_ips, n)]
        subject = f"peer {tp.name} AllowedIPs"
        if not missing:
            self.ok("ALLOWEDIPS_NARROW", m, subject,
                    f"{m}'s AllowedIPs for {tp.name} cover what it must carry")
            return
        tunnel_level = [n for n, why in missing if "tunnel address" in why]
        self.narrow_missing[(m, tp.name)] = [n for n, _ in missing]
        self.narrow[(m, tp.name)] = self.add(
            "ALLOWEDIPS_NARROW", m, subject, "fail",
            f"on {m}, peer {tp.name}'s AllowedIPs miss "
            + "; ".join(f"{n} ({why})" for n, why in missing),
            [f"live AllowedIPs: {', '.join(live.allowed_ips) or '(none)'}",
             f"topology AllowedIPs: {', '.join(map(str, tp.allowed_ips))}"],
            f"on {m}: `wg set {tunnel.interface} peer {live.public_key} allowed-ips "
            f"{','.join(map(str, tp.allowed_ips))}` and the same in "
            f"/etc/wireguard/{tunnel.interface}.conf (wgbgp apply does both); WireGuard "
            f"drops packets to or from addresses outside a peer's AllowedIPs",
            layer=1 if tunnel_level else 5)

    def bgp_daemon(self, m: str) -> None:
        status = self.st[m]
        plan = self.plans[m]
        assert plan.bgp is not None
        d = self.daemon(m)
        err = status.errors.get("bgp", "")
        if status.bgp is None:
            if "command not found" in err:
                msg, fix = ((f"BIRD is not installed on {m}",
                             f"on {m}: `apt install bird2`, then `wgbgp apply` (it starts "
                             f"BIRD with the rendered /etc/bird/bird.conf)") if d.bird else
                            (f"FRR is not installed on {m}",
                             f"on {m}: `apt install frr`, enable bgpd in /etc/frr/daemons, "
                             f"then start FRR"))
            else:
                msg, fix = (f"{'BIRD' if d.bird else 'bgpd'} is not running on {m}",
                            d.start_fix(m))
            self.machine_fault[m + "/bgp"] = self.add(
                "BGP_DAEMON_DOWN", m, d.process, "fail", msg, [f"{d.cli()}: {err}"], fix)
            return
        if status.bgp.asn is None:
            self.machine_fault[m + "/bgp"] = self.add(
                "BGP_NOT_CONFIGURED", m, d.process, "fail",
                (f"BIRD runs on {m} but has no BGP protocol (AS {plan.bgp.asn})" if d.bird
                 else f"FRR runs on {m} but has no `router bgp {plan.bgp.asn}`"),
                [err or f"{d.cli()}: no BGP {'protocol' if d.bird else 'instance'}"],
                (f"install the rendered /etc/bird/bird.conf on {m} (`wgbgp apply`) and "
                 f"`birdc configure`" if d.bird else
                 f"install the rendered /etc/frr/frr.conf on {m} (`wgbgp apply`) and "
                 f"reload FRR"))
            return
        self.ok("BGP_DAEMON_DOWN", m, d.process,
                f"{d.process} runs on {m} (AS {status.bgp.asn})")
        if status.bgp.asn != plan.bgp.asn:
            self.machine_fault[m + "/bgp"] = self.add(
                "ASN_MISMATCH", m, "local AS", "fail",
                f"{m} runs BGP as AS {status.bgp.asn}, the topology says AS {plan.bgp.asn}",
                [f"local AS {status.bgp.asn}" if d.bird else f"router bgp {status.bgp.asn}"],
                f"on {m}: re-apply the rendered {d.conf} ("
                + (f"`local ... as {plan.bgp.asn};`" if d.bird else f"`router bgp {plan.bgp.asn}`")
                + f"), or change {m}'s asn in the topology and re-apply every neighbour")

    # layer 1: hub's view of its clients
    def hub_peers(self, hub: str) -> None:
        tunnel = self.hub_tunnel(hub)
        if tunnel is None:
            return
        iface = self.st[hub].interface(tunnel.interface)
        if iface is None:
            return
        for tp in tunnel.peers:
            live, how = self.client_peer(hub, tunnel, tp.name)
            if live is None or how != "key":
                ev = [f"peers on {hub}'s {tunnel.interface}: "
                      + (", ".join(f"{p.public_key} ({','.join(p.allowed_ips)})"
                                   for p in iface.peers) or "none")]
                if live is not None:
                    ev.insert(0, f"the peer carrying {tp.name}'s addresses has key "
                                 f"{live.public_key}")
                self.add("WG_KEY_MISMATCH", hub, f"peer {tp.name}", "fail",
                         f"{hub} does not have {tp.name}'s public key {tp.public_key}",
                         ev,
                         f"on {hub}: set peer {tp.name}'s key to {tp.public_key} in "
                         f"/etc/wireguard/{tunnel.interface}.conf and reload (wgbgp apply), "
                         f"or fix {tp.name}'s public_key in the topology if it changed")
        port = iface.listen_port
        hub_endpoint = next((p.endpoint for t in (self.plans[c].tunnels for c in self.exp.clients)
                             for tt in t for p in tt.peers if p.name == hub and p.endpoint),
                            None)
        if port and hub_endpoint:
            try:
                want_port = split_endpoint(hub_endpoint)[1]
            except ValueError:
                want_port = None
            if want_port and port != want_port:
                self.add("WG_ENDPOINT_MISMATCH", hub, f"{tunnel.interface} listen port",
                         "fail", f"{hub} listens on UDP {port}, clients dial {hub_endpoint}",
                         [f"listen port {port}", f"topology endpoint {hub_endpoint}"],
                         f"on {hub}: `ListenPort = {want_port}` (wgbgp apply), or change the "
                         f"hub endpoint's port in the topology")

    def _hub_side_causes(self, hub: str, client: str, tunnel: Tunnel) -> Check | None:
        """A finding on the hub (or its absence) that keeps `client`'s tunnel down."""
        for key in (("WG_INTERFACE_MISSING", hub, f"interface {tunnel.interface}"),
                    ("MACHINE_UNREACHABLE", hub, hub),
                    ("WG_KEY_MISMATCH", hub, f"{tunnel.interface} own key"),
                    ("WG_KEY_MISMATCH", hub, f"peer {client}"),
                    ("WG_ENDPOINT_MISMATCH", hub, f"{tunnel.interface} listen port")):
            if key in self._seen:
                return self._seen[key]
        return None

    def tunnel(self, c: str) -> None:
        plan = self.plans[c]
        for tunnel in plan.tunnels:
            hub = tunnel.hub
            hub_seen = self.observed(hub)
            subject = f"tunnel to {hub}"
            if not self.observed(c):
                if c in self.machine_fault:
                    self.tunnel_fault[c] = self.machine_fault[c]
                elif hub_seen:
                    self.tunnel_from_hub(c, hub, tunnel)
                continue
            own = self._seen.get(("WG_INTERFACE_MISSING", c, f"interface {tunnel.interface}"))
            if own:
                self.tunnel_fault[c] = own
                self.skip("WG_NO_HANDSHAKE", c, subject, own)
                continue
            status = self.st[c]
            peer, how = self.hub_peer(c, tunnel)
            hub_key = self.exp.public_key(hub)
            iface = status.interface(tunnel.interface)
            assert iface is not None
            if peer is None or how != "key":
                ev = [f"peers on {tunnel.interface}: "
                      + (", ".join(p.public_key for p in iface.peers) or "none")]
                self.tunnel_fault[c] = self.add(
                    "WG_KEY_MISMATCH", c, f"peer {hub}", "fail",
                    f"{c} does not have hub {hub}'s public key {hub_key}", ev,
                    f"on {c}: set the [Peer] PublicKey for {hub} to {hub_key} "
                    f"(wgbgp apply), or fix the hub's public_key in the topology")
                continue
            age = peer.handshake_age(status.time)
            hub_ping = self.probe(c, "hub", hub)
            recent = age is not None and age <= REJECT_AFTER_TIME
            # A probe's answer is the proof (it may even have made a fresh handshake);
            # without a probe, a recent handshake is the best evidence there is.
            works = hub_ping.ok if hub_ping else recent
            ev = [f"{c}: latest handshake with {hub} {_age(age)}",
                  f"{c}: {peer.tx_bytes} bytes sent to {hub}, {peer.rx_bytes} received",
                  f"{c}: endpoint {peer.endpoint or '(none)'}"]
            if hub_ping:
                ev.append(hub_ping.evidence())
            delta = self.hub_rx_delta(hub, tunnel, c)
            if delta is not None:
                ev.append(f"{hub}: received {delta} bytes from {c} while {c} probed it")
            if works:
                self.ok("WG_NO_HANDSHAKE", c, subject,
                        f"{c} has a working tunnel to {hub} (handshake {_age(age)})", ev)
                self.keepalive(c, hub, tunnel, peer, age)
                continue
            cause = (self._no_handshake_cause(c, hub, tunnel, peer)
                     or self._hub_ping_cause(c, hub, tunnel))
            if cause:
                self.tunnel_fault[c] = cause
                self.skip("WG_NO_HANDSHAKE", c, subject, cause)
                continue
            if peer.keepalive is None and age is not None and not recent and hub_ping is None:
                self.tunnel_fault[c] = self.nat_expired(c, hub, peer, age, ev)
                continue
            if hub_seen and (not recent or delta == 0):
                self.tunnel_fault[c] = self.udp_blocked(c, hub, tunnel, peer, recent, ev)
            elif recent:
                arriving = bool(delta)
                self.tunnel_fault[c] = self.add(
                    "HUB_UNREACHABLE", c, subject, "fail",
                    (f"{hub} receives {c}'s packets but its tunnel address does not answer"
                     if arriving else
                     f"{c}'s session with {hub} is {_age(age)} old, but {hub} does not "
                     f"answer through it"),
                    ev,
                    (f"on {hub}: check the tunnel address is on {tunnel.interface} and no "
                     f"firewall drops ICMP from the tunnel (`nft list ruleset`)"
                     if arriving else
                     f"UDP to {peer.endpoint} may be blocked since the last handshake, or "
                     f"{hub} restarted or drops ICMP from the tunnel. Run doctor with {hub} "
                     f"reachable to tell these apart"))
            else:
                self.tunnel_fault[c] = self.add(
                    "WG_NO_HANDSHAKE", c, subject, "fail",
                    f"{c} has no working WireGuard session with {hub}", ev,
                    f"check, in order: {hub} is up and wg-quick runs there; {c}'s "
                    f"[Peer] Endpoint is {hub}'s public address:port; {hub} has {c}'s "
                    f"public key and {c} has {hub}'s; UDP to that port is not blocked. "
                    f"Run doctor with {hub} reachable to tell these apart")

    def hub_rx_delta(self, hub: str, tunnel: Tunnel, c: str) -> int | None:
        """Bytes the hub received from `c` while the probes ran (None: not measured)."""
        if not self.observed(hub):
            return None
        after = self.obs.wg_after(hub)
        key = self.exp.public_key(c)
        before_if = self.st[hub].interface(tunnel.interface)
        after_if = next((i for i in after or () if i.name == tunnel.interface), None)
        if not key or before_if is None or after_if is None:
            return None
        b, a = before_if.peer(key), after_if.peer(key)
        return a.rx_bytes - b.rx_bytes if a and b else None

    def udp_blocked(self, c: str, hub: str, tunnel: Tunnel, peer: WgPeer, recent: bool,
                    ev: list[str]) -> Check:
        hub_view, _ = self.client_peer(hub, tunnel, c)
        hub_age = hub_view.handshake_age(self.st[hub].time) if hub_view else None
        iface_h = self.st[hub].interface(tunnel.interface)
        port = peer.endpoint.rsplit(":", 1)[-1] if peer.endpoint else "51820"
        return self.add(
            "UDP_BLOCKED", c, f"tunnel to {hub}", "fail",
            f"{c}'s WireGuard packets do not reach {hub}: keys, endpoint and listen port "
            f"are right, yet " + ("nothing from it arrives" if recent
                                  else "there is no handshake"),
            [*ev, f"{hub}: listens on UDP {iface_h.listen_port if iface_h else '?'}, has "
                  f"{c}'s key, its latest handshake with {c} {_age(hub_age)}"],
            f"let UDP to {peer.endpoint} through: a firewall on {c}'s network, its "
            f"carrier, or {hub}'s provider/firewall (`nft list ruleset`, cloud security "
            f"group) drops it; open UDP port {port} inbound on {hub}")

    def _hub_ping_cause(self, c: str, hub: str, tunnel: Tunnel) -> Check | None:
        """A configuration fact that keeps the hub's tunnel address from answering `c`."""
        for seen in (("WG_ADDRESS_MISSING", c, f"interface {tunnel.interface}"),
                     ("WG_ADDRESS_MISSING", hub, f"interface {tunnel.interface}")):
            if seen in self._seen:
                return self._seen[seen]
        hub_addr = str(self.exp.tunnel_address(hub, tunnel.interface))
        own_addr = str(self.exp.tunnel_address(c, tunnel.interface))
        for key in ((c, hub), (hub, c)):
            nar = self.narrow.get(key)
            if nar and any(n.prefixlen == n.max_prefixlen
                           and str(n.network_address) in (hub_addr, own_addr)
                           for n in self.narrow_missing[key]):
                return nar
        return None

    def tunnel_from_hub(self, c: str, hub: str, tunnel: Tunnel) -> None:
        """A client we cannot inspect, judged from the hub's side."""
        cause = self._hub_side_causes(hub, c, tunnel)
        subject = f"tunnel to {hub}"
        if cause:
            self.tunnel_fault[c] = cause
            return
        peer, _ = self.client_peer(hub, tunnel, c)
        if peer is None:
            return
        age = peer.handshake_age(self.st[hub].time)
        ping = self.probe(hub, "client", c)
        ev = [f"{hub}: latest handshake with {c} {_age(age)}",
              f"{hub}: endpoint of {c} as seen: {peer.endpoint or '(none)'}"]
        if ping:
            ev.append(ping.evidence())
        if age is None or age > REJECT_AFTER_TIME:
            if ping and ping.ok:
                return
            self.tunnel_fault[c] = self.add(
                "WG_NO_HANDSHAKE", c, subject, "fail",
                f"{hub} has no recent handshake with {c} (seen from {hub})", ev,
                f"on {c}: check wg-quick runs, its Endpoint and keys; run doctor there")
        elif ping and not ping.ok:
            self.tunnel_fault[c] = self.add(
                "CLIENT_UNREACHABLE", c, subject, "fail",
                f"{hub} cannot reach {c}'s tunnel address (seen from {hub})", ev,
                f"on {c}: make sure PersistentKeepalive is set (NAT mapping) and the "
                f"tunnel address is configured; run doctor there")

    def _no_handshake_cause(self, c: str, hub: str, tunnel: Tunnel, peer: WgPeer
                            ) -> Check | None:
        own_key = self._seen.get(("WG_KEY_MISMATCH", c, f"{tunnel.interface} own key"))
        if own_key:
            return own_key
        if self.observed(hub):
            cause = self._hub_side_causes(hub, c, tunnel)
            if cause:
                return cause
        want = next((p.endpoint for p in tunnel.peers if p.name == hub), None)
        if want and not peer.endpoint or want and peer.endpoint and not _same_endpoint(
                want, peer.endpoint):
            return self.add(
                "WG_ENDPOINT_MISMATCH", c, f"peer {hub} endpoint", "fail",
                f"{c} dials {peer.endpoint or 'no endpoint'} for {hub}, the topology says "
                f"{want}", [f"{c}: endpoint {peer.endpoint or '(none)'}",
                            f"topology endpoint {want}"],
                f"on {c}: set `Endpoint = {want}` for {hub} (wgbgp apply)")
        return None

    def nat_expired(self, c: str, hub: str, peer: WgPeer, age: float | None,
                    ev: list[str], extra: Iterable[str] = ()) -> Check:
        keepalive = next((tp.keepalive for t in self.plans[c].tunnels for tp in t.peers
                          if tp.name == hub), None) or 25
        return self.add(
            "NAT_MAPPING_EXPIRED", c, f"tunnel to {hub}", "fail",
            f"{hub} cannot reach {c} while {c} is idle: {c} sends no keepalive, so its "
            f"NAT mapping expires",
            [*ev, f"{c}: PersistentKeepalive off", *extra],
            f"on {c}: `PersistentKeepalive = {keepalive}` for {hub} (below the carrier's UDP "
            f"timeout, often 30 s); `wg set {self.plans[c].tunnels[0].interface} peer "
            f"{peer.public_key} persistent-keepalive {keepalive}` applies it now")

    def keepalive(self, c: str, hub: str, tunnel: Tunnel, peer: WgPeer, age: float | None
                  ) -> None:
        want = next((tp.keepalive for tp in tunnel.peers if tp.name == hub), None)
        subject = f"tunnel to {hub}"
        if not want:
            return
        if peer.keepalive is not None:
            self.ok("WG_NO_KEEPALIVE", c, subject, f"{c} sends keepalives every "
                                                   f"{peer.keepalive} s")
            return
        from_hub = self.probe(hub, "client", c)
        ev = [f"{c}: PersistentKeepalive off (topology: {want} s)",
              f"{c}: latest handshake with {hub} {_age(age)}"]
        if from_hub and from_hub.received < from_hub.sent:
            self.tunnel_fault[c] = self.nat_expired(
                c, hub, peer, age, [ev[1]],
                [from_hub.evidence() + f" (before {c} sent anything)"])
            return
        if age is not None and age > REJECT_AFTER_TIME:
            self.tunnel_fault[c] = self.nat_expired(c, hub, peer, age, [ev[1]])
            return
        self.add("WG_NO_KEEPALIVE", c, subject, "warn",
                 f"{c} sends no keepalive to {hub}: once idle longer than its NAT's UDP "
                 f"timeout, {hub} can no longer reach it",
                 [*ev, *([from_hub.evidence()] if from_hub else [])],
                 f"on {c}: `PersistentKeepalive = {want}` for {hub} (wgbgp apply)")

    def keepalive_suspect(self, machines: Iterable[str], symptom: str) -> Check | None:
        """A client without keepalive explains an otherwise unexplained failure between
        it and others: its NAT mapping comes and goes. Upgrade its warning to the cause."""
        for m in machines:
            key = next((k for k in self._seen if k[0] == "WG_NO_KEEPALIVE" and k[1] == m
                        and self._seen[k].verdict == "warn"), None)
            if key is None:
                continue
            warning = self._seen.pop(key)
            self.checks.remove(warning)
            hub = key[2].removeprefix("tunnel to ")
            tunnel = next(t for t in self.plans[m].tunnels if t.hub == hub)
            peer, _ = self.hub_peer(m, tunnel)
            assert peer is not None
            check = self.nat_expired(m, hub, peer, peer.handshake_age(self.st[m].time),
                                     list(warning.evidence), [symptom])
            self.tunnel_fault[m] = check
            return check
        return None

    # layer 2: through the hub
    def overlay(self, c: str) -> None:
        if not self.observed(c):
            return
        for s in self.exp.sessions(c):
            pair = frozenset((c, s.peer))
            subject = f"path to {s.peer}"
            hub = self.hub_for(s)
            if c in self.tunnel_fault:
                self.path_fault.setdefault(pair, self.tunnel_fault[c])
                self.skip("PEER_UNREACHABLE", c, subject, self.tunnel_fault[c])
                continue
            ping = self.probe(c, "peer", s.peer)
            if ping is None or ping.ok:
                if ping:
                    self.ok("PEER_UNREACHABLE", c, subject,
                            f"{s.peer}'s tunnel address answers {c} through {hub}",
                            [ping.evidence()])
                continue
            cause = self.path_cause(c, s, hub) or self.keepalive_suspect(
                (c, s.peer), f"{c}: {s.peer}'s tunnel address does not answer: "
                             f"{ping.detail}")
            if cause:
                self.path_fault.setdefault(pair, cause)
                self.skip("PEER_UNREACHABLE", c, subject, cause)
                continue
            self.path_fault[pair] = self.add(
                "PEER_UNREACHABLE", c, subject, "fail",
                f"{c} reaches hub {hub} but not {s.peer}'s tunnel address {s.peer_address}",
                [ping.evidence(), *self._hub_ping_ev(c, hub)],
                f"on {hub}: `sysctl net.ipv4.ip_forward` must be 1 and the firewall must "
                f"accept forwarding from {s.interface} to {s.interface}; and {s.peer}'s "
                f"tunnel must be up. Run doctor with {hub} and {s.peer} reachable to tell")

    def _hub_ping_ev(self, c: str, hub: str) -> list[str]:
        p = self.probe(c, "hub", hub)
        return [p.evidence()] if p else []

    def hub_for(self, s: BgpSession) -> str:
        plan = next((p for p in self.plans.values() if p.role == "hub"
                     and any(t.interface == s.interface for t in p.tunnels)), None)
        return plan.machine if plan else "hub"

    def path_cause(self, c: str, s: BgpSession, hub: str) -> Check | None:
        """Why `c` cannot reach `s.peer` through the hub although its own tunnel works."""
        if s.peer in self.tunnel_fault:
            return self.tunnel_fault[s.peer]
        fwd = self._seen.get(("HUB_NOT_FORWARDING", hub, "ip_forward"))
        if fwd and fwd.verdict == "fail":
            return fwd
        for key in ((c, hub), (hub, s.peer), (hub, c), (s.peer, hub)):
            nar = self.narrow.get(key)
            if nar and any(n.prefixlen == 32 and str(n.network_address) in
                           (str(s.peer_address), str(self.exp.tunnel_address(c)))
                           for n in self.narrow_missing[key]):
                return nar
        peer_ok = self.observed(s.peer) and s.peer not in self.tunnel_fault
        hub_ok = self.observed(hub) and self.st[hub].ip_forward
        if peer_ok and hub_ok:
            ev = [f"{hub}: net.ipv4.ip_forward = 1"]
            ev += self._hub_ping_ev(c, hub) + self._hub_ping_ev(s.peer, hub)
            peer_probe = self.probe(c, "peer", s.peer)
            if peer_probe:
                ev.append(peer_probe.evidence())
            return self.add(
                "HUB_NOT_FORWARDING", hub, f"forwarding {s.interface}", "fail",
                f"hub {hub} has forwarding on, both clients reach it, yet it does not "
                f"forward between them: a firewall drops {s.interface} -> {s.interface}",
                ev,
                f"on {hub}: the forward chain must accept `iifname \"{s.interface}\" oifname "
                f"\"{s.interface}\"` (see `nft list ruleset`, `iptables -S FORWARD`); "
                f"wgbgp's rendered nftables table does")
        if not self.observed(hub) and peer_ok:
            back = self.probe(s.peer, "peer", c)
            peer_hub = self.probe(s.peer, "hub", hub)
            if back and not back.ok and peer_hub and peer_hub.ok:
                return self.add(
                    "HUB_NOT_FORWARDING", hub, f"forwarding {s.interface}", "fail",
                    f"{c} and {s.peer} both reach hub {hub} but not each other: {hub} does "
                    f"not forward between them (inferred; {hub} itself was not inspected)",
                    [*self._hub_ping_ev(c, hub), peer_hub.evidence(), back.evidence()],
                    f"on {hub}: `sysctl -w net.ipv4.ip_forward=1` (persist it), and let "
                    f"the firewall forward `iifname \"{s.interface}\" oifname "
                    f"\"{s.interface}\"`; its AllowedIPs must hold each client's tunnel "
                    f"address")
        return None

    # layer 3: BGP sessions, judged per pair
    def bgp_pair(self, a: str, b: str) -> None:
        pair = frozenset((a, b))
        sides = [(x, y, s) for x, y in ((a, b), (b, a)) if self.observed(x)
                 for s in self.exp.sessions(x) if s.peer == y]
        if not sides:
            return
        cause = self.path_fault.get(pair) or next(
            (self.tunnel_fault[x] for x in (a, b) if x in self.tunnel_fault), None)
        if cause:
            self.session_fault[pair] = cause
            for x, y, _ in sides:
                self.skip("BGP_SESSION_DOWN", x, f"session with {y}", cause)
            return
        for x, _, _ in sides:
            daemon = self.machine_fault.get(x + "/bgp")
            if daemon:
                self.session_fault[pair] = daemon
        neighbors = {x: self.neighbor(x, str(s.peer_address)) for x, _, s in sides}
        # Configuration facts first: they are the root cause when the session is down.
        for x, y, s in sides:
            if x + "/bgp" in self.machine_fault:
                continue
            n = neighbors[x]
            if n is None:
                self.session_fault.setdefault(pair, self.neighbor_missing(x, s))
                continue
            if n.remote_as is not None and n.remote_as != s.peer_asn:
                self.session_fault.setdefault(pair, self.add(
                    "ASN_MISMATCH", x, f"session with {y}", "fail",
                    f"{x} expects {y} ({s.peer_address}) to be AS {n.remote_as}, the "
                    f"topology says AS {s.peer_asn}",
                    [f"{x}: neighbor {s.peer_address} "
                     f"{'as' if self.daemon(x).bird else 'remote-as'} {n.remote_as}",
                     *([f"{x}: last notification: {n.last_notification}"]
                       if n.last_notification else [])],
                    f"on {x}: {self.daemon(x).neighbor_line(s.peer_address, s.peer_asn)} "
                    f"(re-apply the rendered {self.daemon(x).conf})"))
            elif n.multihop is not None and s.multihop and n.multihop < s.multihop:
                verdict: Verdict = "warn" if n.established else "fail"
                check = self.add(
                    "BGP_TTL", x, f"session with {y}", verdict,
                    f"{x} sends BGP to {y} with TTL {n.multihop}, but the path crosses hub "
                    f"{self.hub_for(s)}, which needs TTL {s.multihop}: the hub drops the "
                    f"packets", [f"{x}: neighbor {s.peer_address} "
                                 f"{'multihop' if self.daemon(x).bird else 'ebgp-multihop'} "
                                 f"{'not set' if n.multihop == 1 else n.multihop}",
                                 f"{x}: state {n.state}"],
                    f"on {x}: `multihop {s.multihop};` in its BGP protocol for {y} (the "
                    f"rendered bird.conf sets it in template mesh)" if self.daemon(x).bird else
                    f"on {x}: `neighbor {s.peer_address} ebgp-multihop {s.multihop}` "
                    f"(the rendered frr.conf sets it on peer-group MESH)")
                if verdict == "fail":
                    self.session_fault.setdefault(pair, check)
        root = self.session_fault.get(pair)
        for x, y, s in sides:
            subject = f"session with {y}"
            n = neighbors[x]
            if n is not None and n.established:
                self.ok("BGP_SESSION_DOWN", x, subject,
                        f"{x}'s session with {y} is Established "
                        f"({int(n.established_for or 0)} s)")
                continue
            if root is not None:
                if root.machine != x or root.subject != subject:
                    self.skip("BGP_SESSION_DOWN", x, subject, root)
                continue
            root = self.session_down(x, y, s, n)
            self.session_fault[pair] = root

    def neighbor_missing(self, x: str, s: BgpSession) -> Check:
        bgp = self.st[x].bgp
        configured = [f"{n.address} ({n.name}, AS {n.remote_as})"
                      for n in (bgp.neighbors if bgp else ())]
        alike = [n for n in (bgp.neighbors if bgp else ())
                 if n.description == s.peer or n.remote_as == s.peer_asn]
        msg = f"{x} has no BGP neighbour {s.peer_address} ({s.peer})"
        if alike:
            msg += f"; it has {alike[0].address} instead"
        return self.add(
            "BGP_NEIGHBOR_MISSING", x, f"session with {s.peer}", "fail", msg,
            [f"{x}: configured neighbours: {', '.join(configured) or 'none'}"],
            f"on {x}: {self.daemon(x).neighbor_line(s.peer_address, s.peer_asn)} (the "
            f"rendered {self.daemon(x).conf} has it); {s.peer}'s tunnel address is "
            f"{s.peer_address}")

    def session_down(self, x: str, y: str, s: BgpSession, n: BgpNeighbor | None) -> Check:
        subject = f"session with {y}"
        ev = []
        if n is not None:
            ev.append(f"{x}: {s.peer_address} state {n.state}")
            if n.last_reset:
                ev.append(f"{x}: last reset: {n.last_reset}")
            if n.last_notification:
                ev.append(f"{x}: last notification: {n.last_notification}")
        note = (n.last_notification or "") if n else ""
        if "bad peer as" in note.lower():
            own = self.plans[x].bgp
            return self.add(
                "ASN_MISMATCH", x, subject, "fail",
                f"{x} and {y} disagree about AS numbers: the OPEN was rejected with Bad "
                f"Peer AS", ev,
                f"{x} is AS {own.asn if own else '?'} and "
                f"expects {y} as AS {s.peer_asn}; on {y}, check "
                + ("`local ... as` and `neighbor ... as`" if self.daemon(y).bird
                   else "`router bgp` and `neighbor ... remote-as`")
                + f" match the topology (re-apply its {self.daemon(y).conf})")
        if n is not None and n.admin_down:
            return self.add("BGP_SESSION_DOWN", x, subject, "fail",
                            f"{x}'s session with {y} is administratively shut down", ev,
                            f'on {x}: `birdc enable "{_bird_proto(y)}*"`'
                            if self.daemon(x).bird else
                            f"on {x}: `no neighbor {s.peer_address} shutdown`")
        tcp = self.probe(x, "bgp", y)
        if tcp is not None:
            ev.append(tcp.evidence())
            if tcp.refused:
                dy = self.daemon(y)
                return self.add(
                    "BGP_DAEMON_DOWN", y, dy.process, "fail",
                    f"nothing listens on TCP 179 at {y} ({s.peer_address}): "
                    f"{'BIRD' if dy.bird else 'bgpd'} is not running there (seen from {x})",
                    ev, dy.start_fix(y))
            if not tcp.ok:
                return self.add(
                    "BGP_TCP_BLOCKED", x, subject, "fail",
                    f"{y}'s tunnel address answers ping but not TCP 179", ev,
                    f"on {y} (and {self.hub_for(s)}): allow TCP port 179 between the tunnel "
                    f"addresses in the firewall")
        if y in self.plans and self.observed(y):
            m = self.neighbor(y, str(self.exp.tunnel_address(x)))
            if m is not None:
                ev.append(f"{y}: {m.address} state {m.state}")
        suspect = self.keepalive_suspect((x, y), f"{x}: session with {y} is "
                                                 f"{n.state if n else 'missing'}")
        if suspect:
            return suspect
        dx, dy = self.daemon(x), self.daemon(y)
        hops = (f"multihop {s.multihop} and the neighbour's AS on both ends" if s.multihop
                else "the neighbour's AS on both ends")
        return self.add(
            "BGP_SESSION_DOWN", x, subject, "fail",
            f"{x}'s session with {y} is {n.state if n else 'missing'}", ev,
            f"on {x}: {dx.show_session(y, s.peer_address)}; on {y}: "
            f"{dy.show_session(x, s.local_address or self.exp.tunnel_address(x))}: they say "
            f"why; check {hops}")

    # layer 4: routes
    def originate_and_policy(self, c: str) -> None:
        bgp = self.st[c].bgp if self.observed(c) else None
        plan_bgp = self.plans[c].bgp
        if bgp is None or plan_bgp is None:
            return
        for prefix in plan_bgp.originate:
            local = [p for p in bgp.paths_for(str(prefix)) if p.peer is None and p.valid]
            if not local and (c + "/bgp") not in self.machine_fault:
                self.route_fault[(c, str(prefix))] = self.add(
                    "PREFIX_NOT_ORIGINATED", c, f"prefix {prefix}", "fail",
                    f"{c} does not originate {prefix} into BGP",
                    [f"{c}: {prefix} is not in its BGP table as a local route"],
                    f"on {c}: `route {prefix} blackhole;` in a static protocol, accepted by "
                    f"the export filter (the rendered bird.conf has both)"
                    if self.daemon(c).bird else
                    f"on {c}: `network {prefix}` under address-family {_afi(prefix)} unicast "
                    f"and a route for it (the rendered frr.conf adds a blackhole route)")
        for s in self.exp.sessions(c):
            pair = frozenset((c, s.peer))
            n = bgp.neighbor(str(s.peer_address))
            if pair in self.session_fault or n is None or not n.established:
                continue
            self.policy(c, s, n)

    def routes(self, c: str) -> None:
        bgp = self.st[c].bgp if self.observed(c) else None
        if bgp is None:
            return
        for s in self.exp.sessions(c):
            pair = frozenset((c, s.peer))
            n = bgp.neighbor(str(s.peer_address))
            for prefix in s.accept:
                subject = f"prefix {prefix} from {s.peer}"
                if pair in self.session_fault:
                    self.route_fault[(c, str(prefix))] = self.session_fault[pair]
                    self.skip("PREFIX_NOT_RECEIVED", c, subject, self.session_fault[pair])
                    continue
                if n is None or not n.established:
                    continue
                paths = [p for p in bgp.paths_for(str(prefix))
                         if p.peer == str(s.peer_address) and p.valid]
                route = bgp.route(str(prefix))
                if not paths:
                    cause = (self.policy_fault.get((c, s.peer, "in"))
                             or self.policy_fault.get((s.peer, c, "out"))
                             or self.route_fault.get((s.peer, str(prefix))))
                    if cause:
                        self.route_fault[(c, str(prefix))] = cause
                        self.skip("PREFIX_NOT_RECEIVED", c, subject, cause)
                        continue
                    self.route_fault[(c, str(prefix))] = self.add(
                        "PREFIX_NOT_RECEIVED", c, subject, "fail",
                        f"{c} has not received {prefix} from {s.peer}",
                        [f"{c}: {_prefixes(n.prefixes_received)} received from "
                         f"{s.peer_address}"],
                        self._not_received_fix(c, s, prefix))
                elif route is None or not route.installed:
                    self.route_fault[(c, str(prefix))] = self.add(
                        "PREFIX_NOT_INSTALLED", c, subject, "fail",
                        f"{c} received {prefix} from {s.peer} but did not install it",
                        [f"{c}: "
                         + ("kernel route (proto bird): " if self.daemon(c).bird
                            else "zebra route: ")
                         + (f"selected={route.selected} installed={route.installed}"
                            if route else "absent")],
                        f"on {c}: another route for {prefix} may win (`ip route get "
                        f"{prefix.network_address}`, `birdc show route {prefix} all`); remove "
                        f"it, or check that BIRD's kernel protocol exports BGP routes"
                        if self.daemon(c).bird else
                        f"on {c}: another route for {prefix} may win (`ip route get "
                        f"{prefix.network_address}`, `show {_ip(prefix)} route {prefix}`); "
                        f"remove it, or check zebra runs")
                else:
                    self.ok("PREFIX_NOT_RECEIVED", c, subject,
                            f"{c} learned {prefix} from {s.peer} and installed it",
                            [f"{c}: {prefix} via {', '.join(route.nexthops)}"])

    def policy(self, c: str, s: BgpSession, n: BgpNeighbor) -> None:
        subject = f"session with {s.peer}"
        missing = []
        if n.policy_in is False:
            missing.append(("in", n.prefixes_received, "import"))
        if n.policy_out is False:
            missing.append(("out", n.prefixes_sent, "export"))
        if not missing:
            if n.policy_in is not None:
                self.ok("POLICY_MISSING", c, subject,
                        f"{c} filters {s.peer} both ways ({', '.join(n.filters_in)} in; "
                        f"{', '.join(n.filters_out)} out)")
            return
        blocked = any(not count for _, count, _ in missing)
        words = " and ".join(w for _, _, w in missing)
        check = self.add(
            "POLICY_MISSING", c, subject, "fail" if blocked else "warn",
            f"{c} has no {words} policy for {s.peer}: "
            + (f"{self.daemon(c).name} (RFC 8212) then exchanges no routes in that "
               f"direction" if blocked else "routes pass unfiltered"),
            [f"{c}: {s.peer_address} Established, {_prefixes(n.prefixes_received)} received, "
             f"{n.prefixes_sent} sent",
             f"{c}: inbound policy: {', '.join(n.filters_in) or 'none'}; outbound: "
             f"{', '.join(n.filters_out) or 'none'}"],
            self._policy_fix(c, s, [d for d, _, _ in missing]))
        for d, _, _ in missing:
            self.policy_fault[(c, s.peer, d)] = check

    def _not_received_fix(self, c: str, s: BgpSession,
                          prefix: IPv4Network | IPv6Network) -> str:
        v6 = prefix.version == 6
        if self.daemon(s.peer).bird:
            there = (f"it must originate {prefix} (a static `route {prefix} blackhole;`) and "
                     f"export it (filter export_own{prefix.version})")
        else:
            there = (f"it must originate {prefix} (`network {prefix}`) and export it "
                     f"(`neighbor ... prefix-list {'OWN6' if v6 else 'OWN'} out`)")
        here = (f"the import filter of its BGP protocol for {s.peer} must accept it"
                if self.daemon(c).bird else
                f"the import prefix-list {'FROM6-' if v6 else 'FROM-'}{s.peer} must permit it")
        return f"on {s.peer}: {there}; on {c}, {here}"

    def _policy_fix(self, c: str, s: BgpSession, directions: list[str]) -> str:
        v6 = s.peer_address.version == 6
        if self.daemon(c).bird:
            return (f"on {c}: in the {s.afi} channel of its BGP protocol for {s.peer}: "
                    + "; ".join("`import filter ...;`" if d == "in" else "`export filter "
                                f"export_own{s.peer_address.version};`" for d in directions)
                    + " (the rendered bird.conf has both)")
        lists = {"in": ("FROM6-" if v6 else "FROM-") + s.peer, "out": "OWN6" if v6 else "OWN"}
        return (f"on {c}: under `address-family {s.afi} unicast`: "
                + "; ".join(f"`neighbor {s.peer_address} prefix-list {lists[d]} {d}`"
                            for d in directions)
                + " (the rendered frr.conf has both)")

    # layer 5: data plane
    def mtu_to_hub(self, c: str) -> None:
        if not self.observed(c) or c in self.tunnel_fault:
            return
        for tunnel in self.plans[c].tunnels:
            self.mtu(c, tunnel.hub, f"path to {tunnel.hub}", "hub")

    def data(self, c: str) -> None:
        if not self.observed(c):
            return
        for s in self.exp.sessions(c):
            pair = frozenset((c, s.peer))
            if pair not in self.path_fault and c not in self.tunnel_fault:
                self.mtu(c, s.peer, f"path to {s.peer}", "peer")
            self.announced(c, s)

    def mtu(self, c: str, target: str, subject: str, small_purpose: str) -> None:
        big = self.probe(c, "mtu", target)
        small = self.probe(c, small_purpose, target)
        if big is None or small is None or not small.ok:
            return
        if big.ok:
            self.ok("MTU_BLACKHOLE", c, subject,
                    f"{big.spec.packet_size}-byte packets with DF reach {target}",
                    [big.evidence()])
            return
        if small_purpose == "peer":
            hub = next((t.hub for t in self.plans[c].tunnels), "")
            for m in (c, target):
                cause = self._seen.get(("MTU_BLACKHOLE", m, f"path to {hub}"))
                if cause and cause.verdict == "fail":
                    self.skip("MTU_BLACKHOLE", c, subject, cause)
                    return
        largest = self.largest_ok(c, target)
        ev = [small.evidence(), big.evidence()]
        if largest:
            ev.append(f"{c}: largest packet with DF that reaches {target}: {largest} bytes")
            suggestion = largest // 8 * 8
            fix = (f"lower the tunnel MTU to {suggestion} or less: `mtu: {suggestion}` under "
                   f"network in the topology, then re-apply every machine; or find and fix "
                   f"the hop that drops large packets without sending ICMP \"fragmentation "
                   f"needed\"")
        else:
            fix = ("lower the tunnel MTU (network.mtu in the topology, e.g. 1280) and "
                   "re-apply; or find the hop that drops large packets silently")
        check = self.add(
            "MTU_BLACKHOLE", c, subject, "fail",
            f"small packets reach {target} but full-size ones ({big.spec.packet_size} bytes, "
            f"DF) vanish without an ICMP error: large transfers will stall", ev, fix)
        if small_purpose == "hub":
            self.mtu_fault[c] = check

    def announced(self, c: str, s: BgpSession) -> None:
        ping = self.probe(c, "announced", s.peer)
        if ping is None:
            return
        subject = f"{ping.spec.source} to {ping.spec.target}"
        if ping.ok:
            self.ok("ANNOUNCED_UNREACHABLE", c, subject,
                    f"{c}'s announced address reaches {s.peer}'s", [ping.evidence()])
            return
        pair = frozenset((c, s.peer))
        cause = (self.path_fault.get(pair) or self.session_fault.get(pair)
                 or self.data_fault.get(pair))
        target_prefix = next((p for p in s.accept if _inside(ping.spec.target, p)), None)
        source_prefix = next((p for p in self.exp.announced(c)
                              if _inside(ping.spec.source, p)), None)
        if cause is None and target_prefix is not None:
            cause = self.route_fault.get((c, str(target_prefix)))
        if cause is None and source_prefix is not None:
            cause = self.route_fault.get((s.peer, str(source_prefix)))
        if cause is None:
            for key in self.narrow:
                if key[0] in (c, s.peer) or key[1] in (c, s.peer):
                    missing = self.narrow_missing[key]
                    if any(p in missing for p in (target_prefix, source_prefix) if p):
                        cause = self.narrow[key]
                        break
        if cause is None:
            cause = self.keepalive_suspect((c, s.peer), ping.evidence())
        if cause is not None:
            self.skip("ANNOUNCED_UNREACHABLE", c, subject, cause)
            return
        self.data_fault[pair] = self.add(
            "ANNOUNCED_UNREACHABLE", c, subject, "fail",
            f"{c}'s announced address {ping.spec.source} does not reach {s.peer}'s "
            f"{ping.spec.target}, although the tunnel addresses reach each other",
            [ping.evidence()],
            f"check the hub's AllowedIPs for {c} and {s.peer} include their announced "
            f"prefixes (WireGuard drops packets from other sources), that {s.peer} has a "
            f"route back to {source_prefix or ping.spec.source}, and reverse-path filters")


def _same_endpoint(want: str, live: str) -> bool:
    try:
        want_host, want_port = split_endpoint(want)
        live_host, live_port = split_endpoint(live)
    except ValueError:
        return want == live
    if want_port != live_port:
        return False
    # A name resolves to an address we cannot check here; the port is what we can.
    return want_host == live_host or not want_host.replace(".", "").isdigit()


def diagnose(observation: Observation, plans: Mapping[str, Plan] | None = None) -> Report:
    """Judge an observation against the plans (the topology). Pure."""
    plans = dict(plans or {})
    if not plans:
        from .livecheck import diagnose_live
        return diagnose_live(observation)
    d = _Doctor(observation, plans)
    d.run()
    machines = tuple(m for m in plans if m in observation.statuses)
    unobserved = tuple(m for m in plans if m not in observation.statuses)
    return Report(d.checks, machines, unobserved)


def _prefixes(n: int | None) -> str:
    """`1 prefix`, `3 prefixes`, `? prefixes` (not counted)."""
    return "? prefixes" if n is None else plural(n, "prefix", "prefixes")
