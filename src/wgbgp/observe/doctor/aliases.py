"""Which live WireGuard interface is which tunnel of the topology. Pure.

wgbgp names a tunnel after its hub (`wg-vps`); a machine set up by hand calls it what its
recipe said (`wg0`). A tunnel is recognised by what it carries, not by its name: a peer
with a public key the plan names, then a peer's endpoint, then the machine's own public
key, then the tunnel address on the interface. The judges then see the live interface
under the plan's name, and every message names the interface as it is on the machine
(`Aliases.rewrite`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from ...compile.plan import Plan, Tunnel
from ..expect import Expected
from ..status import Address, MachineStatus
from ..wireguard import WgInterface


@dataclass
class Aliases:
    """Per machine: plan interface name -> (live name, how it was recognised)."""

    names: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)

    def rewrite(self, machine: str, text: str) -> str:
        """`text` with each plan interface name of `machine` replaced by its live name
        (whole words only: `wg-vps` in `/etc/wireguard/wg-vps.conf`, not in `wg-vps2`)."""
        for planned, (live, _) in self.names.get(machine, {}).items():
            text = re.sub(rf"(?<![\w-]){re.escape(planned)}(?![\w-])", live, text)
        return text


def _matchers(exp: Expected, m: str, t: Tunnel) -> list[tuple[str, Callable[[WgInterface,
                                                                             MachineStatus],
                                                                            bool]]]:
    keys = {p.public_key for p in t.peers if p.public_key}
    endpoints = {p.endpoint for p in t.peers if p.endpoint}
    own = exp.public_key(m)
    addrs = {str(a.ip) for a in t.addresses}
    return [
        ("a peer's public key", lambda i, s: any(p.public_key in keys for p in i.peers)),
        ("a peer's endpoint", lambda i, s: any(p.endpoint in endpoints for p in i.peers)),
        ("its own public key", lambda i, s: bool(own) and i.public_key == own),
        ("its tunnel address", lambda i, s: any(str(a.ip) in addrs
                                                for a in s.addresses_on(i.name))),
    ]


def match_interfaces(plans: Mapping[str, Plan], statuses: Mapping[str, MachineStatus]
                     ) -> tuple[dict[str, MachineStatus], Aliases]:
    """The statuses with each recognised live interface renamed to its tunnel's plan name,
    and the renames. A tunnel whose own name is live is left as it is."""
    exp = Expected(plans)
    aliases = Aliases()
    out = dict(statuses)
    for m, status in statuses.items():
        plan = plans.get(m)
        if plan is None:
            continue
        live_names = {i.name for i in status.interfaces}
        taken = {t.interface for t in plan.tunnels if t.interface in live_names}
        renames: dict[str, tuple[str, str]] = {}
        for t in plan.tunnels:
            if t.interface in live_names:
                continue
            free = [i for i in status.interfaces if i.name not in taken]
            for how, test in _matchers(exp, m, t):
                found = [i for i in free if test(i, status)]
                if len(found) == 1:
                    renames[t.interface] = (found[0].name, how)
                    taken.add(found[0].name)
                    break
        if renames:
            aliases.names[m] = renames
            out[m] = _renamed(status, {live: planned for planned, (live, _) in renames.items()})
    return out, aliases


def _renamed(status: MachineStatus, to_plan: dict[str, str]) -> MachineStatus:
    def name(n: str) -> str:
        return to_plan.get(n, n)
    return replace(
        status,
        interfaces=tuple(replace(i, name=name(i.name)) for i in status.interfaces),
        addresses=tuple(Address(name(a.interface), a.address) for a in status.addresses),
        mtus={name(k): v for k, v in status.mtus.items()},
        links_up={name(k): v for k, v in status.links_up.items()})
