"""What the judges share: the plans, the observation, what the topology expects, the
checks recorded so far, and the faults a higher layer blames its symptoms on. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network

from ...compile.plan import BgpSession, Plan, Tunnel
from ...words import plural
from ..expect import Expected, covers
from ..frr import BgpNeighbor
from ..gather import Observation
from ..probe import ProbeResult
from ..status import MachineStatus
from ..wireguard import WgPeer
from .aliases import match_interfaces
from .daemon import Daemon
from .findings import Check, Code, Verdict

Network = IPv4Network | IPv6Network
Pair = frozenset[str]


class Context:
    """One diagnosis in progress: lookups over its inputs, and the checks it recorded.

    A check is recorded once per (code, machine, subject); recording it again returns the
    first. The `*_fault` maps hold, per place, the finding that breaks it, so a layer above
    is skipped `because` of it instead of being reported as a problem of its own.
    """

    def __init__(self, obs: Observation, plans: Mapping[str, Plan]) -> None:
        self.obs = obs
        self.plans = plans
        self.exp = Expected(plans)
        # Live interfaces under their tunnel's plan name (a hand-made `wg0` is `wg-vps`
        # to the judges); messages name them as they are on the machine (`add`).
        statuses, self.aliases = match_interfaces(plans, obs.statuses)
        self.st: Mapping[str, MachineStatus] = statuses
        self.checks: list[Check] = []
        self._seen: dict[tuple[str, str, str], Check] = {}
        # The finding that breaks a client's own tunnel; a pair's path; a pair's session;
        # a machine ("m", or "m/bgp" for its BGP daemon).
        self.tunnel_fault: dict[str, Check] = {}
        self.path_fault: dict[Pair, Check] = {}
        self.session_fault: dict[Pair, Check] = {}
        self.machine_fault: dict[str, Check] = {}
        # AllowedIPs findings by (machine, peer), and the networks each one misses.
        self.narrow: dict[tuple[str, str], Check] = {}
        self.narrow_missing: dict[tuple[str, str], list[Network]] = {}
        self.policy_fault: dict[tuple[str, str, str], Check] = {}  # (machine, peer, in|out)
        self.route_fault: dict[tuple[str, str], Check] = {}  # (machine, prefix)
        self.mtu_fault: dict[str, Check] = {}  # client -> its path to the hub
        self.data_fault: dict[Pair, Check] = {}

    # -- recording ---------------------------------------------------------------------
    def add(self, code: Code, machine: str, subject: str, verdict: Verdict, message: str,
            evidence: Iterable[str] = (), fix: str = "", because: Check | None = None,
            layer: int = -1) -> Check:
        """Record a check (or return the one already recorded for code/machine/subject)."""
        key = (str(code), machine, subject)
        if key in self._seen:
            return self._seen[key]
        def live(text: str) -> str:
            return self.aliases.rewrite(machine, text)
        check = Check(code, machine, subject, verdict, live(message),
                      tuple(live(e) for e in evidence), live(fix),
                      because.ref if because else None, layer)
        self._seen[key] = check
        self.checks.append(check)
        return check

    def ok(self, code: Code, machine: str, subject: str, message: str,
           evidence: Iterable[str] = ()) -> Check:
        """Record that a check passed."""
        return self.add(code, machine, subject, "ok", message, evidence)

    def skip(self, code: Code, machine: str, subject: str, cause: Check) -> Check:
        """Record a check not judged, because `cause` (a lower finding) explains it."""
        return self.add(code, machine, subject, "skip",
                        f"not judged: {cause.code} on {cause.machine} explains it", (), "",
                        cause)

    def found(self, code: Code, machine: str, subject: str) -> Check | None:
        """The check recorded for code/machine/subject, whatever its verdict."""
        return self._seen.get((str(code), machine, subject))

    def withdraw_warning(self, code: Code, machine: str) -> Check | None:
        """Take back the first warning with `code` on `machine` (to record a finding that
        replaces it); None when there is none."""
        key = next((k for k in self._seen if k[0] == code and k[1] == machine
                    and self._seen[k].verdict == "warn"), None)
        if key is None:
            return None
        warning = self._seen.pop(key)
        self.checks.remove(warning)
        return warning

    # -- lookups -----------------------------------------------------------------------
    def interface_fault(self, machine: str, interface: str) -> Check | None:
        """The finding that `machine`'s tunnel interface is missing or down, if any."""
        subject = f"interface {interface}"
        return (self.found(Code.WG_INTERFACE_MISSING, machine, subject)
                or self.found(Code.WG_INTERFACE_DOWN, machine, subject))

    def daemon(self, machine: str) -> Daemon:
        """The BGP daemon the topology gives `machine` (FRR unless it says BIRD)."""
        plan = self.plans.get(machine)
        return Daemon(plan.bgp.daemon if plan is not None and plan.bgp is not None else "frr")

    def observed(self, machine: str) -> bool:
        """Whether `machine` was inspected (a status, and not found unreachable)."""
        return machine in self.st and machine not in self.machine_fault

    def neighbor(self, machine: str, address: str) -> BgpNeighbor | None:
        """The machine's live BGP neighbour at `address` (None: no such neighbour, or no
        BGP view of the machine)."""
        bgp = self.st[machine].bgp
        return bgp.neighbor(address) if bgp else None

    def probe(self, machine: str, purpose: str, target_machine: str | None = None
              ) -> ProbeResult | None:
        """The first probe `machine` ran for `purpose` (towards `target_machine`)."""
        for p in self.obs.probes:
            if p.spec.machine == machine and p.spec.purpose == purpose and (
                    target_machine is None or p.spec.target_machine == target_machine):
                return p
        return None

    def probe_evidence(self, machine: str, purpose: str, target_machine: str) -> list[str]:
        """The evidence line of that probe, or none when it did not run."""
        p = self.probe(machine, purpose, target_machine)
        return [p.evidence()] if p else []

    def largest_ok(self, machine: str, target: str) -> int | None:
        """The largest DF packet of `machine`'s MTU search that reached `target`."""
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
        """The hub's tunnel (a hub has one)."""
        plan = self.plans.get(hub)
        return plan.tunnels[0] if plan and plan.tunnels else None

    def hub_for(self, s: BgpSession) -> str:
        """The hub whose tunnel carries session `s`."""
        plan = next((p for p in self.plans.values() if p.role == "hub"
                     and any(t.interface == s.interface for t in p.tunnels)), None)
        return plan.machine if plan else "hub"


# -- words the judges share -----------------------------------------------------------
def age(seconds: float | None) -> str:
    """A handshake age as people say it: `never`, `40 s ago`, `3 min ago`, `2 h ago`."""
    if seconds is None:
        return "never"
    s = int(seconds)
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


def nets(networks: Iterable[Network]) -> str:
    """Networks, comma-separated."""
    return ", ".join(str(n) for n in networks)


def prefixes(n: int | None) -> str:
    """`1 prefix`, `3 prefixes`, `? prefixes` (not counted)."""
    return "? prefixes" if n is None else plural(n, "prefix", "prefixes")
