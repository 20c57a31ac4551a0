"""`wgbgp keys rotate NODE`: a new WireGuard key pair for a node, with a few seconds' outage
of that node's tunnel and none for anyone else.

Order, and why:
1. Every secret and the current topology are read first: nothing changes if one is missing.
2. The new key is made on the node (`remote_keygen(rotate=True)`): only its public key comes
   back. The running interface still holds the old key, so nothing breaks yet.
3. The topology file gets the new public key (that one value is replaced where it stands;
   comments and layout are kept), written atomically.
4. Per hub (plane), one after the other: the hub is applied first (`wg syncconf` drops the
   node's old key and accepts the new one; only that node's tunnel to it goes down, the
   hub's other peers are untouched, and the other nodes' configs do not name this node's
   key, so they do not change at all); then the node switches its interface to that hub
   to the new key file (`wg set IFACE private-key FILE`: the argv holds a path, never the
   key) and sends one ping to the hub's tunnel address so the handshake happens at once
   instead of at the next keepalive.
5. Wait for that handshake; its time since the hub's apply is that plane's outage. BGP
   sessions survive it (hold time 30 s), and with several hubs the other planes carry
   the node's traffic meanwhile.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..compile import Plan, Tunnel, compile_topology
from ..model import TopologyError, parse
from ..model.edit import EditError, set_public_key
from ..render import SecretError, render_machine
from ..transport import Executor
from .changes import mask_output
from .keys import KeygenError, remote_keygen
from .results import ApplyResult
from .runner import apply_machine
from .secrets import read_secrets

Progress = Callable[[str], None]


class RotateError(Exception):
    """Rotation could not start (nothing was changed) or stopped midway (the message says
    what was done and how to finish)."""


@dataclass
class RotateResult:
    machine: str
    old_public_key: str | None
    new_public_key: str
    hubs: dict[str, ApplyResult] = field(default_factory=dict)
    outage: float | None = None   # s from the hub dropping the old key to the new handshake
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "old_public_key": self.old_public_key,
                "new_public_key": self.new_public_key,
                "hubs": {h: r.to_dict() for h, r in self.hubs.items()},
                "outage_seconds": None if self.outage is None else round(self.outage, 2),
                "notes": self.notes}


def _write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777
    tmp = path.with_name(f".{path.name}.wgbgp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _latest_handshake(x: Executor, iface: str, peer_key: str | None) -> int:
    """The peer's latest handshake (epoch seconds on the machine; 0: none)."""
    res = x.run(["wg", "show", iface, "latest-handshakes"], check=False)
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == peer_key and parts[1].isdigit():
            return int(parts[1])
    return 0


def rotate_key(topology_path: Path, machine: str, executors: Mapping[str, Executor], *,
               secrets_base: Path | None = None, progress: Progress = lambda _m: None,
               handshake_timeout: float = 20.0) -> RotateResult:
    """Rotate `machine`'s key as described above; RotateError on failure."""
    try:
        text = topology_path.read_text(encoding="utf-8")
        topology, _ = parse(text, str(topology_path))
    except (OSError, TopologyError) as exc:
        raise RotateError(f"cannot read {topology_path}: {exc}") from None
    if machine not in topology.nodes:
        if machine in topology.hubs:
            raise RotateError(f"{machine} is a hub: its new key would have to reach every "
                              "client at once; rotating a hub's key is not supported yet")
        raise RotateError(f"{machine} is not a node of {topology_path} "
                          f"(nodes: {', '.join(topology.nodes)})")
    hubs = list(topology.hubs)
    missing = [m for m in (*hubs, machine) if m not in executors]
    if missing:
        raise RotateError(f"no way to reach {', '.join(missing)}: give it an `ssh:` target")
    old = topology.nodes[machine].public_key
    try:
        secrets = read_secrets(compile_topology(topology).values(), secrets_base)
    except SecretError as exc:
        raise RotateError(f"cannot read a secret the topology names: {exc}") from None

    progress(f"making a new key on {machine}")
    node = executors[machine]
    try:
        key = remote_keygen(node, machine, rotate=True)
    except KeygenError as exc:
        raise RotateError(str(exc)) from None
    result = RotateResult(machine, old, key.public_key)

    progress(f"writing {machine}'s new public key into {topology_path}")
    try:
        new_text = set_public_key(text, "nodes", machine, key.public_key)
        new_topology, _ = parse(new_text, str(topology_path))
        _write_atomically(topology_path, new_text)
    except (EditError, TopologyError, OSError) as exc:
        raise RotateError(
            f"{machine} has a new key file but {topology_path} could not be updated ({exc}); "
            f"its tunnel still runs the old key until restarted: put {key.public_key} in the "
            "topology as its public_key and run this again") from None

    plans = compile_topology(new_topology)
    plan = plans[machine]
    outages: list[float] = []
    # One plane at a time: with several hubs, the node keeps its other planes meanwhile.
    for hub in hubs:
        tunnels = [t for t in plan.tunnels if t.hub == hub]
        t_cut = time.monotonic()
        progress(f"applying {hub} (it drops {machine}'s old key)")
        r = apply_machine(executors[hub], render_machine(
            plans[hub], secrets=secrets or None, plans=plans), enable_at_boot=False)
        result.hubs[hub] = r
        if not r.ok:
            raise RotateError(
                f"{r.summary()}. The topology and {machine}'s key file hold the new key; "
                f"{machine} still runs the old one. Finish with `wgbgp apply` on {hub}, then "
                f"`wg set <interface> private-key {key.key_file}` on {machine}")
        progress(f"switching {machine}'s {', '.join(t.interface for t in tunnels)} "
                 "to its new key")
        if not _switch(node, machine, tunnels, plans[hub], key.key_file, handshake_timeout,
                       result):
            continue
        outages.append(time.monotonic() - t_cut)
    if outages and len(outages) == len(hubs):
        result.outage = max(outages)
    return result


def _switch(node: Executor, machine: str, tunnels: list[Tunnel], hub_plan: Plan, key_file: str,
            timeout: float, result: RotateResult) -> bool:
    """Put the new key on `tunnels` and wait for their handshakes; False on timeout."""
    now = node.run(["date", "+%s"], check=False).stdout.strip()
    since = int(now) if now.isdigit() else 0
    hub_keys = {t.interface: next(p.public_key for p in t.peers) for t in tunnels}
    before = {i: _latest_handshake(node, i, k) for i, k in hub_keys.items()}
    for tunnel in tunnels:
        res = node.run(["wg", "set", tunnel.interface, "private-key", key_file], check=False)
        if not res.ok:
            raise RotateError(f"`wg set {tunnel.interface} private-key {key_file}` on "
                              f"{machine} failed: {mask_output(res.stderr.strip())}; the hub "
                              "already expects the new key: run that command there")
        hub_tunnel = next(t for t in hub_plan.tunnels if t.interface == tunnel.interface)
        hub_addr = hub_tunnel.addresses[0].ip  # IPv4 first; an IPv6-only overlay has one
        # One packet starts the handshake now rather than at the next keepalive.
        node.run(["ping", "-c", "1", "-W", "1", str(hub_addr)], check=False, timeout=5)
    deadline = time.monotonic() + timeout
    pending = dict(hub_keys)
    while pending and time.monotonic() < deadline:
        for iface, hub_key in list(pending.items()):
            seen = _latest_handshake(node, iface, hub_key)
            if seen >= since and seen != before[iface]:
                del pending[iface]
        if pending:
            time.sleep(0.2)
    if pending:
        result.notes.append(f"no handshake with the new key within {timeout:.0f} s on "
                            f"{', '.join(pending)}: check with `wgbgp doctor`")
    return not pending
