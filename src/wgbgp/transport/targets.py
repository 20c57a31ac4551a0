"""Which executor reaches each machine: this host, or its `ssh:` target."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..model import Topology
from .executor import Executor, LocalExecutor
from .ssh import SSHExecutor, netns_connector, parse_target


class NoRoute(ValueError):
    """A machine wgbgp has no way to reach."""


@dataclass(frozen=True)
class SshOptions:
    """How to reach `ssh:` targets; defaults are OpenSSH's (~/.ssh/known_hosts, keys)."""

    known_hosts: Path | None = None
    identity: Path | None = None
    netns: Path | None = None  # connect from inside this network namespace


def with_topology_defaults(ssh: SshOptions, topology: Topology) -> SshOptions:
    """`ssh` with every option the command line left out taken from the topology's own
    `ssh:` section (e.g. the one `wgbgp lab up --bare` writes)."""
    d = topology.ssh
    if d is None:
        return ssh
    return SshOptions(
        known_hosts=ssh.known_hosts or (Path(d.known_hosts) if d.known_hosts else None),
        identity=ssh.identity or (Path(d.identity) if d.identity else None),
        netns=ssh.netns or (Path(d.netns) if d.netns else None))


def ssh_target(topology: Topology, machine: str) -> str | None:
    section = topology.hubs if machine in topology.hubs else topology.nodes
    return section[machine].ssh


def machine_executors(topology: Topology, machines: list[str], *, local: bool = False,
                      ssh: SshOptions = SshOptions()) -> dict[str, Executor]:
    """An executor per machine: local when asked (or no `ssh:` target), else SSH; the
    topology's `ssh:` section fills in the options `ssh` leaves out.

    Only one machine can be local: this one.
    """
    out: dict[str, Executor] = {}
    ssh = with_topology_defaults(ssh, topology)
    for name in machines:
        target = None if local else ssh_target(topology, name)
        if target is None:
            if len(machines) > 1:
                raise NoRoute(f"{name} has no `ssh:` target, and only one machine can be "
                              "this one; add `ssh: root@HOST` to it or apply it on that "
                              "machine with --node")
            out[name] = LocalExecutor(name=name)
            continue
        out[name] = ssh_executor(name, target, ssh)
    return out


def ssh_executor(name: str, target: str, ssh: SshOptions = SshOptions()) -> SSHExecutor:
    """An SSH executor for one machine; ValueError when the target is malformed."""
    parsed = parse_target(target)
    factory = netns_connector(ssh.netns, parsed.host, parsed.port or 22) if ssh.netns else None
    return SSHExecutor(target, name=name,
                       known_hosts=str(ssh.known_hosts) if ssh.known_hosts else (),
                       client_keys=[str(ssh.identity)] if ssh.identity else (),
                       sock_factory=factory)
