"""`wgbgp keys rotate TOPOLOGY NODE`: a new key pair for a node, hub applied first."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..apply.rotate import RotateError, rotate_key
from ..transport import Executor, LocalExecutor, NoRoute, SshOptions, machine_executors
from .common import EXIT_UNHEALTHY, HELP_MARKUP, emit_json, err, fail, out, read_topology

app = typer.Typer(help="Manage machines' WireGuard keys.", no_args_is_help=True,
                  rich_markup_mode=HELP_MARKUP)


def _executors(topology: Path, node: str, lab: str | None, local: bool,
               ssh: SshOptions) -> dict[str, Executor]:
    topo, _ = read_topology(topology)
    if node not in topo.nodes:
        fail(f"{node} is not a node of {topology}", f"nodes: {', '.join(topo.nodes)}")
    hubs = list(topo.hubs)
    if lab is not None:
        from ..lab.runner import LabError, require_lab
        try:
            machines = require_lab(lab).machines
        except LabError as exc:
            fail(str(exc))
        return {m: machines[m].executor() for m in (*hubs, node) if m in machines}
    # Never this host by default: a hub's config applied here by mistake would be a disaster.
    executors: dict[str, Executor] = {}
    for m in (*hubs, node):
        if local and m == node:
            executors[m] = LocalExecutor(name=m)
            continue
        if not topo.machine(m).ssh:
            fail(f"{m} has no `ssh:` target, so wgbgp cannot reach it",
                 f"add `ssh: root@HOST` to {m}" + (", or run this on the node with --local"
                                                   if m == node else ""))
        try:
            executors.update(machine_executors(topo, [m], ssh=ssh))
        except NoRoute as exc:
            fail(str(exc))
    return executors


def topology_first(first: str, second: str) -> tuple[Path, str]:
    """(topology, node) from `TOPOLOGY NODE`, the order of every other command, or the
    older `NODE TOPOLOGY` (still accepted, with a note): the topology is the argument that
    names an existing file, else the one that looks like a file name."""
    def is_file(arg: str) -> bool:
        return Path(arg).is_file()

    def looks(arg: str) -> bool:
        return arg.endswith((".yaml", ".yml")) or "/" in arg
    if (is_file(second) and not is_file(first)) or (
            not is_file(first) and looks(second) and not looks(first)):
        err.print(f"note: `keys rotate NODE TOPOLOGY` is the old order; write "
                  f"`wgbgp keys rotate {second} {first}` (topology first, as every other "
                  "command)", markup=False)
        return Path(second), first
    return Path(first), second


@app.command("rotate")
def rotate(
    first: str = typer.Argument(..., metavar="TOPOLOGY",
                                help="Topology file; its public_key line is updated."),
    second: str = typer.Argument(..., metavar="NODE", help="Node whose key pair is replaced."),
    local: bool = typer.Option(False, "--local", help="This host is NODE (no SSH to it)."),
    lab: str | None = typer.Option(None, "--lab", help="Reach the machines of this running lab."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    known_hosts: Path | None = typer.Option(None, "--known-hosts", help="known_hosts file."),
    identity: Path | None = typer.Option(None, "--identity", "-i", help="SSH private key."),
    netns: Path | None = typer.Option(None, "--ssh-netns", help="Connect from this netns."),
) -> None:
    """New key pair made on NODE (the private key never leaves it), its public key written to
    TOPOLOGY, the hub applied first, then NODE switched: a few seconds without NODE's tunnel,
    no outage for anyone else. (The older order NODE TOPOLOGY still works.)"""
    topology, node = topology_first(first, second)
    if (local or lab) and os.geteuid() != 0:
        fail("this needs root", "run it as root (sudo)")
    executors = _executors(topology, node, lab, local,
                           SshOptions(known_hosts=known_hosts, identity=identity, netns=netns))
    try:
        result = rotate_key(topology, node, executors, secrets_base=topology.parent,
                            progress=lambda msg: err.print(f"  {msg}", markup=False))
    except RotateError as exc:
        fail(str(exc), code=EXIT_UNHEALTHY)
    if as_json:
        emit_json({"ok": True, **result.to_dict()})
        return
    out.print(f"{node}: new key pair made on {node}; public key {result.new_public_key} "
              f"written to {topology}", markup=False)
    for r in result.hubs.values():
        out.print(f"  {r.summary()}", markup=False)
    if result.outage is not None:
        down = (f"{node}'s tunnel was down {result.outage:.1f} s" if len(result.hubs) == 1
                else f"each of {node}'s tunnels was down at most {result.outage:.1f} s, one "
                "plane at a time")
        out.print(f"  {down}; other machines: no change", markup=False)
    for note in result.notes:
        out.print(f"  note: {note}", markup=False)
