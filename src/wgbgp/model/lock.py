"""The address lock: the tunnel host number each machine was given, kept beside the
topology so that no edit of the file moves another machine. Pure (text in, text out);
apply/lockfile.py reads and writes the file.

Decision: a lock file (`TOPOLOGY.lock`, e.g. `friends.yaml.lock`), written by every
command that reads the topology (check, render, plan, apply...), rather than
- addresses written back into the topology: `check` would edit the user's file, and
  every machine would end up pinned, so a pin would no longer say "I chose this";
- a hash of the name: stable without state, but two names can hash alike, and which
  one then moves depends on who came first; small overlays collide constantly; and
  today's addresses (hub .1, then .2, .3 in file order) would all change.
Without a lock, allocation is what it always was (pins, then the lowest free numbers,
hubs first, in file order), so existing files keep their addresses; from the first
`check` on, each machine keeps its number: removing, inserting, reordering or pinning
a machine moves no other. A pin on a number another machine holds is an error.

The lock also records the addresses each machine had when its configs were last
rendered or applied (`deployed`); when an edit would change one of those, check and plan
warn loudly: every peer's BGP neighbour address for it changes at the next apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from .addressing import OverlayFull, allocate, allocate6, host_numbers
from .issues import Issue
from .schema import Topology
from .yamlread import safe_dump, safe_load

FAMILIES = {4: "ipv4", 6: "ipv6"}


class LockError(ValueError):
    """The lock file cannot be read; it is then rewritten from the topology."""


@dataclass
class Lock:
    """Host numbers by family (4, 6) and machine; deployed addresses by machine."""

    numbers: dict[int, dict[str, int]] = field(default_factory=dict)
    deployed: dict[str, list[str]] = field(default_factory=dict)


HEADER = """\
# wgbgp address lock for {file}: written by wgbgp (check, render, plan, apply).
# The tunnel host number each machine was given, so that removing, inserting,
# reordering or pinning machines in the topology never moves another one; and the
# addresses each machine had when its configs were last rendered or applied. Keep it
# beside the topology (commit it with it). Delete a machine's lines to let it be
# numbered afresh.
"""


def parse_lock(text: str) -> Lock:
    """A lock from its text, or LockError saying what is wrong with it."""
    try:
        data: Any = safe_load(text)
    except yaml.YAMLError as exc:
        raise LockError(f"not YAML: {exc}") from None
    if data is None:
        return Lock()
    if not isinstance(data, dict):
        raise LockError("not a mapping")
    lock = Lock()
    for version, key in FAMILIES.items():
        numbers = data.get(key) or {}
        if not isinstance(numbers, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                for k, v in numbers.items()):
            raise LockError(f"'{key}' must map machine names to host numbers")
        lock.numbers[version] = dict(numbers)
    deployed = data.get("deployed") or {}
    if not isinstance(deployed, dict) or not all(
            isinstance(k, str) and isinstance(v, list) for k, v in deployed.items()):
        raise LockError("'deployed' must map machine names to lists of addresses")
    lock.deployed = {k: [str(a) for a in v] for k, v in deployed.items()}
    return lock


def lock_text(lock: Lock, file: str) -> str:
    data: dict[str, Any] = {key: lock.numbers[v] for v, key in FAMILIES.items()
                            if lock.numbers.get(v)}
    if lock.deployed:
        data["deployed"] = lock.deployed
    body = safe_dump(data, sort_keys=False, default_flow_style=False) if data else ""
    return HEADER.format(file=file) + body


def addresses(topology: Topology) -> dict[str, list[str]]:
    """Every machine's tunnel addresses (IPv4, then IPv6), as text."""
    v4, v6 = allocate(topology), allocate6(topology)
    return {name: [str(a) for a in (v4.get(name), v6.get(name)) if a is not None]
            for name in topology.machines}


def current(topology: Topology, previous: Lock | None,
            deployed: list[str] | tuple[str, ...] = ()) -> Lock:
    """The lock for this topology: its machines' host numbers now, the previous
    deployed addresses of machines still there, and `deployed` machines' current ones."""
    numbers: dict[int, dict[str, int]] = {}
    try:
        for version in FAMILIES:
            numbers[version] = host_numbers(topology, version)
    except OverlayFull:
        return previous or Lock()  # validation reports it; keep what was recorded
    machines = set(topology.machines)
    kept = {k: v for k, v in (previous.deployed if previous else {}).items() if k in machines}
    if deployed:
        now = addresses(topology)
        kept.update({name: now[name] for name in deployed if name in now})
    return Lock(numbers={v: n for v, n in numbers.items() if n}, deployed=kept)


def renumbered(topology: Topology, lock: Lock | None) -> Iterator[Issue]:
    """A loud warning for each deployed machine whose tunnel address would change."""
    if lock is None or not lock.deployed:
        return
    try:
        now = addresses(topology)
    except OverlayFull:
        return
    for name, was in lock.deployed.items():
        if name not in now or now[name] == was:
            continue
        section = "hubs" if name in topology.hubs else "nodes"
        moves = ", ".join(f"{a} -> {b}" for a, b in zip(was, now[name], strict=False)
                          if a != b) or f"{was} -> {now[name]}"
        field_ = "address" if ":" not in moves.split(" -> ")[0] else "address6"
        yield Issue("warning", (section, name),
                    f"RENUMBERING {name}: its tunnel address changes ({moves}), and its "
                    "configs were already rendered or applied: at the next apply every "
                    f"machine's BGP neighbour address and AllowedIPs for {name} change, and "
                    "its sessions reset",
                    f"to keep it, pin '{field_}: {was[0] if field_ == 'address' else was[-1]}' "
                    f"on {name}; otherwise apply every machine after this change")
