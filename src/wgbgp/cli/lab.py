"""`wgbgp lab ...`: the whole network on this machine, with real WireGuard and FRR."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import typer

from ..compile import Plan
from ..lab.build import Lab
from ..lab.runner import (
    LabError,
    lab_topology_path,
    require_lab,
    resolve_name,
    up,
    wait_for_convergence,
)
from ..lab.selftest import lab_plans, run_selftest
from ..lab.spec import LabSpecError
from ..lab.state import LabExists, teardown
from ..model import parse
from ..model.examples import classic_text
from .common import (
    EXIT_BAD_INPUT,
    HELP_MARKUP,
    emit_json,
    err,
    fail,
    out,
    plural,
    read_topology,
)
from .labfault import app as fault_app

app = typer.Typer(help="Build the network on this machine: namespaces, CG-NAT, real daemons.",
                  rich_markup_mode=HELP_MARKUP,
                  no_args_is_help=True)

app.add_typer(fault_app, name="fault")

NAME_HELP = "Lab name (default: the network's name; for other commands, the only running lab)."


def _need_root() -> None:
    if os.geteuid() != 0:
        fail("the lab needs root (network and mount namespaces)", "run it as root")


@app.command("up")
def lab_up(
    topology: Path | None = typer.Argument(None, help="Topology file (default: built-in classic)."),
    name: str | None = typer.Option(None, "--name", help=NAME_HELP),
    timeout: float = typer.Option(60, help="Seconds to wait for convergence."),
    bare: bool = typer.Option(False, "--bare", help="Only the machines, each with its key "
                              "and sshd; then configure them with `wgbgp apply --all`."),
    no_agent: bool = typer.Option(False, "--no-agent", help="Do not run `wgbgp agent` in the "
                                  "machines: a fault stays until repaired by hand."),
) -> None:
    """Build the lab and bring every BGP session up; print how long it took."""
    _need_root()
    if topology is None:
        topo, _ = parse(classic_text(), "<built-in classic example>")
    else:
        topo, _ = read_topology(topology)
    lab_name = name or topo.network.name
    try:
        report = up(topo, name=lab_name, timeout=timeout, bare=bare,
                    progress=lambda msg: err.print(f"  {msg}", markup=False),
                    secrets_base=topology.parent if topology is not None else None,
                    agent=not no_agent)
    except (LabError, LabExists) as exc:
        fail(str(exc), code=1 if isinstance(exc, LabError) else EXIT_BAD_INPUT)
    except LabSpecError as exc:
        fail(f"this topology cannot be a lab: {exc}")
    t = report.timings
    if report.ssh is not None:
        out.print(f"lab {lab_name!r} is up bare: {plural(len(report.ssh.targets), 'machine')} "
              "with sshd "
                  f"on the lab's management network ({t['total']:.2f} s)")
        out.print(f"  topology with ssh targets, ssh options and the machines' public keys: "
                  f"{report.topology_path}")
        out.print("  configure them over SSH, as real machines:\n    wgbgp apply "
                  f"{report.topology_path} --all")
        return
    # Each session is counted at both of its ends while converging: report sessions.
    out.print(f"lab {lab_name!r} is up: {plural(report.sessions // 2, 'BGP session')} "
              f"Established, {plural(report.prefixes, 'route')} learned and installed")
    out.print(f"  hosts {t['hosts']:.2f} s, keys {t['keys']:.2f} s, apply {t['apply']:.2f} s, "
              f"convergence {t['converge']:.2f} s after apply; total {t['total']:.2f} s")
    out.print(f"  topology with the lab's keys: {report.topology_path}")
    if report.agents:
        out.print(f"  agent running in every machine ({plural(len(report.agents), 'agent')}; "
                  "--no-agent to study faults without it)")


@app.command("down")
def lab_down(name: str | None = typer.Option(None, "--name", help=NAME_HELP)) -> None:
    """Remove everything the lab made; safe to run twice or after a crash."""
    _need_root()
    try:
        lab_name = resolve_name(name)
    except LabError as exc:
        if name is None and "no lab" in str(exc):
            out.print("no lab is running")
            return
        fail(str(exc))
    report = teardown(lab_name)
    out.print(f"lab {lab_name!r} is down: {plural(len(report.killed), 'process', 'processes')} "
              f"stopped, {plural(len(report.namespaces), 'namespace')} removed")


@app.command("exec", context_settings={"allow_interspersed_args": False})
def lab_exec(
    node: str = typer.Argument(..., help="Machine to run in."),
    command: list[str] = typer.Argument(..., help="Command and its arguments (after --)."),
    name: str | None = typer.Option(None, "--name", help=NAME_HELP),
) -> None:
    """Run a command inside a lab machine (its own vtysh, wg, routes)."""
    _need_root()
    try:
        lab = require_lab(name)
        machine = lab.machine(node)
    except (LabError, KeyError) as exc:
        fail(str(exc).strip('"'))
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        fail("no command given", f"e.g. wgbgp lab exec {node} -- vtysh -c 'show bgp summary'")
    raise typer.Exit(machine.exec(command))


@app.command("test")
def lab_test(
    name: str | None = typer.Option(None, "--name", help=NAME_HELP),
    timeout: float = typer.Option(30, "--timeout", min=0, help="Seconds to wait for every "
                                  "session and route first (right after `apply`)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Assert the lab works: sessions, reachability, real CG-NAT, traffic via the hub.

    Waits up to --timeout for convergence, says how long it waited, then judges.
    Exit 0 when every assertion holds, 1 when one fails, 2 bad input.
    """
    _need_root()
    try:
        lab = require_lab(name)
        plans = lab_plans(lab)
    except (LabError, OSError) as exc:
        fail(str(exc))
    waited = wait_for_convergence({n: m.executor() for n, m in lab.machines.items()}, plans,
                                  timeout=timeout)
    if not as_json:
        out.print(waited.describe(), markup=False)
    results = run_selftest(lab)
    ok = all(r.ok for r in results)
    if as_json:
        emit_json({"lab": lab.name, "ok": ok, "waited": waited.to_json(),
                   "assertions": [r.to_json() for r in results]})
    else:
        for r in results:
            mark = "[green]PASS[/]" if r.ok else "[red]FAIL[/]"
            out.print(f"{mark} {r.name}: {r.detail}", markup=True)
        out.print(f"lab {lab.name!r}: " + ("all assertions hold" if ok else "FAILED"))
    raise typer.Exit(0 if ok else 1)


def _running_lab(name: str | None) -> tuple[Lab, dict[str, Plan]]:
    """The running lab a command means, and the plans it was brought up with."""
    _need_root()
    try:
        lab = require_lab(name)
        return lab, lab_plans(lab)
    except (LabError, OSError) as exc:
        fail(str(exc))


@app.command("status")
def lab_status(
    name: str | None = typer.Option(None, "--name", help=NAME_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Every machine: tunnels (endpoint as the hub sees it), BGP sessions, routes learned."""
    from ..observe.exporter import peer_names
    from ..observe.status import collect
    from .observe import status_tables

    lab, plans = _running_lab(name)
    executors = {n: m.executor() for n, m in lab.machines.items()}
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {n: pool.submit(collect, x, plans.get(n)) for n, x in executors.items()}
        statuses = {n: f.result() for n, f in futures.items()}
    names = peer_names(plans)
    if as_json:
        emit_json({"lab": lab.name, "topology": str(lab_topology_path(lab.name)),
                   "machines": {n: s.to_json(names) for n, s in statuses.items()}})
        return
    out.print(f"lab {lab.name!r}: {plural(len(statuses), 'machine')}; "
              f"topology {lab_topology_path(lab.name)}")
    for s in statuses.values():
        out.print(status_tables(s, names))


@app.command("doctor")
def lab_doctor(
    name: str | None = typer.Option(None, "--name", help=NAME_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    show_all: bool = typer.Option(False, "--all", help="List every check, not only problems."),
) -> None:
    """`wgbgp doctor` over every lab machine at once: what is wrong, and how to fix it."""
    from ..observe.doctor import diagnose
    from ..observe.gather import gather
    from .observe import print_report

    lab, plans = _running_lab(name)
    report = diagnose(gather({n: m.executor() for n, m in lab.machines.items()}, plans), plans)
    if as_json:
        emit_json(report.to_json())
    else:
        print_report(report, show_all)
    raise typer.Exit(0 if report.healthy else 1)
