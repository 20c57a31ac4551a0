"""Transport: how wgbgp reaches a machine and runs commands there.

Beneath both apply and observe: an `Executor` runs a command (or reads and writes a file)
on one machine and returns a `CommandResult`. The executors: this host, optionally inside
a network namespace (`LocalExecutor` with an `nsenter` prefix, as the lab uses), and a
remote host over SSH (`SSHExecutor`). `machine_executors` picks one per machine from the
topology's `ssh:` targets.
"""

from .executor import (
    CommandFailed,
    CommandResult,
    Executor,
    LocalExecutor,
    capture,
    short_command,
)
from .ssh import SSHExecutor, SSHTarget, netns_connector, parse_target
from .targets import (
    NoRoute,
    SshOptions,
    machine_executors,
    ssh_executor,
    ssh_target,
    with_topology_defaults,
)

__all__ = [
    "CommandFailed", "CommandResult", "Executor", "LocalExecutor", "NoRoute", "SSHExecutor",
    "SSHTarget", "SshOptions", "capture", "machine_executors", "netns_connector", "parse_target",
    "short_command", "ssh_executor", "ssh_target", "with_topology_defaults",
]
