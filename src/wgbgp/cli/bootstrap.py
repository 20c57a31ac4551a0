"""`wgbgp bootstrap TOPOLOGY (--node NAME | --all)`: install what each machine needs for
its role (over SSH, or --local), then check it."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import typer

from ..apply.bootstrap import BootstrapError, Outcome, bootstrap, shell_lines
from ..compile import compile_topology
from ..transport import CommandFailed, NoRoute, SshOptions, machine_executors
from .common import EXIT_BAD_INPUT, EXIT_UNHEALTHY, emit_json, err, fail, out, read_topology


def _machines(known: list[str], node: list[str], everyone: bool, reachable: list[str]
              ) -> list[str]:
    unknown = [n for n in node if n not in known]
    if unknown:
        fail(f"unknown machine {', '.join(unknown)}", f"machines: {', '.join(known)}")
    if everyone:
        if not reachable:
            fail("no machine in the topology has an `ssh:` target",
                 "add `ssh: root@HOST` to the machines --all should reach, or use --node")
        return reachable
    if not node:
        fail("say which machine", "--node NAME (this machine with --local, or one with an "
             "`ssh:` target), or --all")
    return node


def bootstrap_command(
    topology: Path = typer.Argument(..., help="Topology file (each machine's role)."),
    node: list[str] = typer.Option([], "--node", "-n", help="Machine to bootstrap "
                                   "(repeatable)."),
    everyone: bool = typer.Option(False, "--all", help="Every machine with an `ssh:` target."),
    local: bool = typer.Option(False, "--local", help="This host is the one machine named."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Probe, then print the commands "
                                 "instead of running them."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    known_hosts: Path | None = typer.Option(None, "--known-hosts", help="known_hosts file."),
    identity: Path | None = typer.Option(None, "--identity", "-i", help="SSH private key."),
    netns: Path | None = typer.Option(None, "--ssh-netns", help="Connect from this netns."),
) -> None:
    """Install what each machine needs for its role: wireguard-tools (wireguard-go only
    when the kernel lacks WireGuard), FRR with frr-pythontools or BIRD 2 as the topology
    says, nftables; then check it. Debian 12/13 and Ubuntu 22.04/24.04; any other OS gets
    the list to install by hand, and nothing is installed. A machine that has everything
    costs one probe."""
    topo, _ = read_topology(topology)
    known = [*topo.hubs, *topo.nodes]
    machines = _machines(known, node, everyone, [m for m in known if topo.machine(m).ssh])
    if local and len(machines) != 1:
        fail("--local bootstraps one machine: this one", "name it with --node")
    if local and not dry_run and os.geteuid() != 0:
        fail("bootstrap installs packages and needs root", "run it as root (sudo)")
    try:
        executors = machine_executors(topo, machines, local=local,
                                      ssh=SshOptions(known_hosts, identity, netns))
    except NoRoute as exc:
        fail(str(exc))
    plans = compile_topology(topo)

    def one(name: str) -> Outcome | str:
        try:
            return bootstrap(executors[name], plans[name], dry_run=dry_run,
                             progress=lambda msg: err.print(f"  {msg}", markup=False))
        except (BootstrapError, CommandFailed, OSError) as exc:
            return str(exc)
        finally:
            close = getattr(executors[name], "close", None)  # SSH connections only
            if close is not None:
                close()

    with ThreadPoolExecutor(max_workers=min(8, len(machines))) as pool:
        results = dict(zip(machines, pool.map(one, machines), strict=True))
    failed = {m: r for m, r in results.items() if isinstance(r, str)}
    if as_json:
        emit_json({"ok": not failed, "dry_run": dry_run, "machines": {
            m: {"ok": False, "error": r} if isinstance(r, str) else {
                "ok": True, "os": r.facts.pretty, "wanted": r.wanted, "missing": r.missing,
                "installed": r.missing if r.ran else [], "probes": r.probes,
                "commands": shell_lines(r)} for m, r in results.items()}})
    else:
        for r in results.values():
            if isinstance(r, str):
                err.print(f"error: {r}", markup=False)
                continue
            out.print(r.summary(), markup=False)
            if dry_run:
                for line in shell_lines(r):
                    out.print(f"  $ {line}", markup=False)
    if failed:
        # Nothing installed anywhere it failed before apt ran: a bad input (OS, user).
        untouched = all("nothing was installed" in r for r in failed.values())
        raise typer.Exit(EXIT_BAD_INPUT if untouched else EXIT_UNHEALTHY)
