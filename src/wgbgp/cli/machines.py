"""Which machines of a topology this machine can read: itself, and those with `ssh:`."""

from __future__ import annotations

from pathlib import Path

from ..compile import Plan, compile_topology
from ..model import Topology
from ..observe import snapshot, status_from_snapshot
from ..observe.locate import locate
from ..transport import (
    Executor,
    LocalExecutor,
    SSHExecutor,
    SshOptions,
    ssh_executor,
    with_topology_defaults,
)
from .common import fail, read_topology

__all__ = ["reachable_machines", "ssh_executors"]


def ssh_executors(plans: dict[str, Plan], topology: Path,
                  skip: str | None) -> dict[str, SSHExecutor]:
    """An SSH executor for every machine with an `ssh:` target, but `skip`."""
    topo, _ = read_topology(topology)
    targets = {n: m.ssh for n, m in topo.machines.items()}
    # The topology's `ssh:` section (identity, known_hosts, netns) applies here too.
    options = with_topology_defaults(SshOptions(), topo)
    return {n: ssh_executor(n, t, options) for n, t in targets.items() if t and n != skip}


def reachable_machines(topology: Path, fix: str
                       ) -> tuple[Topology, dict[str, Plan], dict[str, Executor]]:
    """The topology, its plans, and an executor for every machine readable from here: this
    one (when it is one of the topology's) and those with an `ssh:` target. Exit 2 with
    `fix` when there is none (`wgbgp graph --live`, `wgbgp web`)."""
    topo, _ = read_topology(topology)
    plans = compile_topology(topo)
    executors: dict[str, Executor] = {}
    here, _how = locate(plans, status_from_snapshot(snapshot(LocalExecutor())))
    if here:
        executors[here] = LocalExecutor(here)
    executors.update(ssh_executors(plans, topology, here))
    if not executors:
        fail("no machine of the topology can be read from here", fix)
    return topo, plans, executors
