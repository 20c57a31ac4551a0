"""What the topology says each machine should look like, in the terms observe compares.

Derived from the compiled plans only (pure). The plans of *all* machines are needed:
a machine's own public key, for instance, appears only in its peers' plans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from ..compile import BgpSession, Plan, Tunnel, TunnelPeer


@dataclass(frozen=True)
class Expected:
    """Questions about the intended network, answered from its plans."""

    plans: Mapping[str, Plan]

    @property
    def hubs(self) -> list[str]:
        return [n for n, p in self.plans.items() if p.role == "hub"]

    @property
    def clients(self) -> list[str]:
        return [n for n, p in self.plans.items() if p.role == "client"]

    def order(self, machine: str) -> int:
        names = list(self.plans)
        return names.index(machine) if machine in names else len(names)

    def public_key(self, machine: str) -> str | None:
        """A machine's public key: it is written in its peers' plans."""
        for plan in self.plans.values():
            for tunnel in plan.tunnels:
                for peer in tunnel.peers:
                    if peer.name == machine and peer.public_key:
                        return peer.public_key
        return None

    def tunnel(self, machine: str, interface: str) -> Tunnel | None:
        plan = self.plans.get(machine)
        return next((t for t in plan.tunnels if t.interface == interface), None) if plan else None

    def tunnel_address(self, machine: str, interface: str | None = None
                       ) -> IPv4Address | IPv6Address | None:
        plan = self.plans.get(machine)
        if plan is None or not plan.tunnels:
            return None
        tunnel = (self.tunnel(machine, interface) if interface else plan.tunnels[0])
        if tunnel is None or not tunnel.addresses:
            return None
        return tunnel.addresses[0].ip  # IPv4 when the overlay has it

    def announced(self, machine: str) -> tuple[IPv4Network | IPv6Network, ...]:
        plan = self.plans.get(machine)
        return plan.bgp.originate if plan and plan.bgp else ()

    def sessions(self, machine: str) -> tuple[BgpSession, ...]:
        plan = self.plans.get(machine)
        return plan.bgp.sessions if plan and plan.bgp else ()

    def required_allowed_ips(self, machine: str, tunnel: Tunnel,
                             peer: TunnelPeer
                             ) -> tuple[tuple[IPv4Network | IPv6Network, str], ...]:
        """What a peer's live AllowedIPs must cover, each with why, for the design to work.

        On a hub: the client's tunnel address and every prefix it announces.
        On a client (its hub peer): the hub's tunnel address, and for every BGP neighbour
        its tunnel address and the prefixes it may announce. The plan allows 0.0.0.0/0
        there; anything that still covers these works.
        """
        plan = self.plans[machine]
        out: list[tuple[IPv4Network | IPv6Network, str]] = []
        if plan.role == "hub":
            for net in peer.allowed_ips:
                n = ip_network(str(net))
                why = (f"{peer.name}'s tunnel address" if n.prefixlen == n.max_prefixlen
                       and any(str(a.ip) == str(n.network_address)
                               for t in self.plans[peer.name].tunnels for a in t.addresses)
                       else f"{peer.name}'s announced prefix")
                out.append((n, why))
            return tuple(out)
        hub_tunnel = self.tunnel(peer.name, tunnel.interface)
        for a in hub_tunnel.addresses if hub_tunnel else ():
            out.append((ip_network(a.ip), f"{peer.name}'s tunnel address"))
        for s in self.sessions(machine):
            if s.interface != tunnel.interface:
                continue
            out.append((ip_network(s.peer_address), f"{s.peer}'s tunnel address"))
            out.extend((p, f"{s.peer}'s announced prefix") for p in s.accept)
        return tuple(out)


def covers(allowed: tuple[str, ...], net: IPv4Network | IPv6Network) -> bool:
    """Whether a peer's AllowedIPs send/accept every address of `net`."""
    for a in allowed:
        try:
            n = ip_network(a, strict=False)
        except ValueError:
            continue
        # The stubs want both of one class; the version test makes them so.
        if n.version == net.version and net.subnet_of(n):  # type: ignore[arg-type]
            return True
    return False
