"""`wgbgp apply`, `plan` and `down`: put the rendered configs on machines, locally or by SSH."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn

from ..apply import ApplyResult, StepResult
from ..apply.agentinstall import AgentInstall, install_agent, stop_agent
from ..apply.changes import mask_output
from ..apply.lockfile import lock_path
from ..apply.parallel import apply_many, down_many, for_each, plan_many
from ..model import Issue, Topology, TopologyError
from ..render import RenderedFile
from ..transport import Executor, LocalExecutor, NoRoute, SshOptions, machine_executors
from .common import (
    EXIT_UNHEALTHY,
    emit_json,
    err,
    error_json,
    fail,
    out,
    plural,
    print_issues,
    read_topology,
    record_deployed,
)
from .topology import render_all

NODE_HELP = "Machine to act on (repeatable)."
ALL_HELP = "Every machine that has an `ssh:` target, in parallel."
LOCAL_HELP = "This host is the machine: no SSH, even if it has an `ssh:` target."


def _machines(topo: Topology, node: list[str], everyone: bool) -> list[str]:
    known = list(topo.machines)
    unknown = [n for n in node if n not in known]
    if unknown:
        fail(f"unknown machine {', '.join(unknown)}", f"machines: {', '.join(known)}")
    if everyone:
        reachable = [m for m in known if topo.machine(m).ssh]
        if not reachable:
            fail("no machine in the topology has an `ssh:` target",
                 "add `ssh: root@HOST` to the machines --all should reach, or use --node")
        return reachable
    if not node:
        fail("say which machine", "--node NAME (this machine, or one with an `ssh:` "
             "target), or --all")
    return node


def _targets(topology: Path, node: list[str], everyone: bool, local: bool,
             ssh: SshOptions, keys: bool = True) -> list[tuple[Executor, list[RenderedFile]]]:
    topo, warnings = read_topology(topology)
    print_issues(warnings)
    machines = _machines(topo, node, everyone)
    if local and len(machines) != 1:
        fail("--local applies to one machine", "name exactly one with --node")
    rendered = render_all(topo, machines, None, topology.parent) if keys else \
        {m: [] for m in machines}
    try:
        executors = machine_executors(topo, machines, local=local, ssh=ssh)
    except NoRoute as exc:
        fail(str(exc))
    if any(isinstance(x, LocalExecutor) for x in executors.values()) and os.geteuid() != 0:
        fail("applying to this machine needs root", "run it as root (sudo)")
    return [(executors[m], rendered[m]) for m in machines]


def _read_quietly(topology: Path) -> tuple[Topology, list[Issue]]:
    """The topology again, without printing its warnings a second time."""
    from ..apply.lockfile import read_lock
    from ..model import parse
    lock, _ = read_lock(topology)
    return parse(topology.read_text(encoding="utf-8"), str(topology),
                 recorded=lock.numbers if lock else None)


def _ssh_options(known_hosts: Path | None, identity: Path | None,
                 netns: Path | None) -> SshOptions:
    return SshOptions(known_hosts=known_hosts, identity=identity, netns=netns)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err,
                    transient=True)


KNOWN_HOSTS = typer.Option(None, "--known-hosts", help="known_hosts file (default: OpenSSH's).")
IDENTITY = typer.Option(None, "--identity", "-i", help="SSH private key (default: OpenSSH's).")
NETNS = typer.Option(None, "--ssh-netns", help="Connect from inside this network namespace.")
NO_AGENT = typer.Option(False, "--no-agent", help="No `wgbgp agent` (the reconciler that "
                        "keeps the machine as applied) on these machines: none is started, "
                        "and one that runs is stopped (it would put back the old topology).")


def _agent_installer(topology: Path, agents: dict[str, AgentInstall | Exception],
                     no_agent: bool = False) -> Callable[[Executor, ApplyResult], None]:
    """Run under each machine's apply lock once its apply succeeded: the agent there, with
    the topology just applied (apply/agentinstall.py: a systemd unit, or started detached
    without systemd)."""
    text = topology.read_text(encoding="utf-8")
    lock = lock_path(topology)
    lock_text = lock.read_text(encoding="utf-8") if lock.exists() else None

    def install(x: Executor, result: ApplyResult) -> None:
        if result.ok and no_agent:
            stopped = stop_agent(x)
            if stopped:
                result.notes.append(stopped + " (--no-agent)")
        elif result.ok:
            try:
                agents[x.name] = install_agent(x, x.name, text, lock_text)
            except Exception as exc:  # noqa: BLE001 - the apply itself succeeded
                agents[x.name] = exc
    return install


def apply(
    topology: Path = typer.Argument(..., help="Topology file."),
    node: list[str] = typer.Option([], "--node", "-n", help=NODE_HELP),
    everyone: bool = typer.Option(False, "--all", help=ALL_HELP),
    local: bool = typer.Option(False, "--local", help=LOCAL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    known_hosts: Path | None = KNOWN_HOSTS, identity: Path | None = IDENTITY,
    netns: Path | None = NETNS, no_agent: bool = NO_AGENT,
) -> None:
    """Make machines run their configs: only what changed, without resetting other sessions.

    Then the agent keeps them so (`wgbgp agent`, installed and started here; --no-agent
    leaves it out)."""
    jobs = _targets(topology, node, everyone, local, _ssh_options(known_hosts, identity, netns))
    with _progress() as bar:
        tasks = {x.name: bar.add_task(f"{x.name}: connecting") for x, _ in jobs}

        def report(machine: str, step: str, status: str, detail: str) -> None:
            bar.update(tasks[machine], description=f"{machine}: {step} {status}")

        agents: dict[str, AgentInstall | Exception] = {}
        results = apply_many(jobs, progress=report,
                             after=_agent_installer(topology, agents, no_agent))
    for n, a in agents.items():
        r = results[n]
        if isinstance(a, Exception):
            r.notes.append(f"agent not started: {mask_output(str(a))}")
        elif a.changed:
            r.steps.append(StepResult("agent", "agent", "ok", a.detail))
            r.notes.append(a.detail)
        elif a.how != "running":
            r.notes.append(a.detail)
    applied = [n for n, r in results.items() if r.ok]
    if applied:
        # Edited meanwhile: the next command records it.
        with contextlib.suppress(OSError, TopologyError):
            record_deployed(topology, _read_quietly(topology)[0], applied)
    if as_json:
        _emit_results(results)
    else:
        for r in results.values():
            style = "green" if r.ok else "red"
            out.print(f"[{style}]{'ok' if r.ok else 'FAILED'}[/] {escape(r.summary())}",
                      markup=True)
            for note in r.notes:
                out.print(f"    note: {note}", markup=False)
    if not all(r.ok for r in results.values()):
        raise typer.Exit(EXIT_UNHEALTHY)


def _emit_results(results: dict[str, ApplyResult]) -> None:
    """--json for apply and down: every machine's result, and the failures as errors (also
    told on stderr)."""
    errors = [error_json(r.error or "failed", machine=n, step=r.failed_step)
              for n, r in results.items() if not r.ok]
    for r in results.values():
        if not r.ok:
            err.print(f"error: {r.summary()}", markup=False)
    emit_json({"ok": not errors, "machines": {n: r.to_dict() for n, r in results.items()},
               "errors": errors})


def plan(
    topology: Path = typer.Argument(..., help="Topology file."),
    node: list[str] = typer.Option([], "--node", "-n", help=NODE_HELP),
    everyone: bool = typer.Option(False, "--all", help=ALL_HELP),
    local: bool = typer.Option(False, "--local", help=LOCAL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    known_hosts: Path | None = KNOWN_HOSTS, identity: Path | None = IDENTITY,
    netns: Path | None = NETNS,
) -> None:
    """What apply would change on each machine, as a diff (secrets masked).

    Exit 0 when apply could run on every machine (with changes or none), 1 when it cannot
    on some machine (unreachable, probe failed, preflight: missing tools...), 2 bad input.
    """
    jobs = _targets(topology, node, everyone, local, _ssh_options(known_hosts, identity, netns))
    plans = plan_many(jobs)
    errors = [error_json(mask_output(str(p)), machine=n, step="probe")
              if isinstance(p, Exception) else
              error_json(f"cannot apply: {problem}", machine=n, step="preflight")
              for n, p in plans.items()
              for problem in ([None] if isinstance(p, Exception) else p.problems)]
    if as_json:
        for e in errors:
            err.print(f"error: {e['machine']}: {e['message']}", markup=False)
        emit_json({"ok": not errors, "errors": errors, "machines": {
            n: ({"machine": n, "error": mask_output(str(p))} if isinstance(p, Exception)
                else p.to_dict()) for n, p in plans.items()}})
    else:
        for n, p in plans.items():
            out.print(f"== {n}: cannot plan: {mask_output(str(p))}\n"
                      if isinstance(p, Exception) else p.describe(), markup=False, end="")
        if errors:
            err.print(f"cannot apply on {plural(len({e['machine'] for e in errors}), 'machine')}"
                      f": {', '.join(dict.fromkeys(e['machine'] for e in errors))}",
                      markup=False)
    if errors:
        raise typer.Exit(EXIT_UNHEALTHY)


def down(
    topology: Path = typer.Argument(..., help="Topology file."),
    node: list[str] = typer.Option([], "--node", "-n", help=NODE_HELP),
    everyone: bool = typer.Option(False, "--all", help=ALL_HELP),
    local: bool = typer.Option(False, "--local", help=LOCAL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    known_hosts: Path | None = KNOWN_HOSTS, identity: Path | None = IDENTITY,
    netns: Path | None = NETNS,
) -> None:
    """Stop the agent, remove what apply installed and bring the tunnels down (private keys
    are kept)."""
    jobs = _targets(topology, node, everyone, local, _ssh_options(known_hosts, identity, netns),
                    keys=False)
    # The agent first: it would put back what down removes.
    stopped = for_each(jobs, lambda x, _f: stop_agent(x))
    results = down_many(jobs)
    for n, detail in stopped.items():
        if isinstance(detail, str) and detail and n in results:
            results[n].steps.insert(0, StepResult("agent", "agent-stop", "ok", detail))
    if as_json:
        _emit_results(results)
    else:
        for r in results.values():
            out.print(r.summary(), markup=False)
    if not all(r.ok for r in results.values()):
        raise typer.Exit(EXIT_UNHEALTHY)
