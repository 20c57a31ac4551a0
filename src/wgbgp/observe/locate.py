"""Which machine of the topology is this? Pure: judged from a status snapshot."""

from __future__ import annotations

from collections.abc import Mapping

from ..compile import Plan
from .expect import Expected
from .status import MachineStatus


def locate(plans: Mapping[str, Plan], status: MachineStatus) -> tuple[str | None, str]:
    """(machine name, how it was recognised), or (None, why not).

    First by a live WireGuard public key (unique by construction), then by a tunnel
    address configured on the machine.
    """
    exp = Expected(plans)
    live_keys = {i.public_key for i in status.interfaces if i.public_key}
    by_key = [m for m in plans if exp.public_key(m) in live_keys]
    if len(by_key) == 1:
        return by_key[0], "its WireGuard public key"
    by_addr = [m for m, p in plans.items()
               if any(status.has_address(str(a.ip)) for t in p.tunnels for a in t.addresses)]
    if len(by_addr) == 1:
        return by_addr[0], "its tunnel address"
    if len(by_key) > 1 or len(by_addr) > 1:
        return None, f"it matches several machines ({', '.join(by_key or by_addr)})"
    return None, "no local WireGuard key or tunnel address matches the topology"
