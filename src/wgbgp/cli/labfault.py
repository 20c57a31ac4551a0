"""`wgbgp lab fault ...`: a laptop's life, injected into a running lab for real."""

from __future__ import annotations

import os

import typer

from ..lab import faults, life
from ..lab.build import Lab
from ..lab.power import BOOT_HOOK
from ..lab.runner import LabError, require_lab
from .common import HELP_MARKUP, fail, out, plural

app = typer.Typer(help="Inject a life event into a running lab: roam, nat-reset, sleep, "
                  "reboot, flap, kill. Recovery is the agent's (or `--apply`'s).",
                  rich_markup_mode=HELP_MARKUP, no_args_is_help=True)

NAME = typer.Option(None, "--name", help="Lab name (default: the only running lab).")
APPLY = typer.Option(False, "--apply", help="Then run `wgbgp apply` on the faulted machine, "
                     "unless an agent runs there (as an operator would without one).")


def _lab(name: str | None) -> Lab:
    if os.geteuid() != 0:
        fail("the lab needs root (network and mount namespaces)", "run it as root")
    try:
        return require_lab(name)
    except LabError as exc:
        fail(str(exc))


def _known(lab: Lab, machine: str) -> None:
    if machine not in lab.spec.machines:
        fail(f"lab {lab.name!r} has no machine {machine!r}",
             f"machines: {', '.join(lab.spec.machines)}")


def _after(lab: Lab, machines: list[str], apply: bool) -> None:
    agents = [m for m in machines if faults.agent_running(lab, m)]
    if agents:
        out.print(f"  the agent repairs {', '.join(agents)}", markup=False)
    if apply:
        for machine, what in faults.recover(lab, [m for m in machines if m not in agents]
                                            ).items():
            out.print(f"  apply on {machine}: {what}", markup=False)


@app.command("roam")
def fault_roam(node: str = typer.Argument(..., help="Client that moves."),
               carrier: str = typer.Argument(..., help="Carrier it moves to."),
               name: str | None = NAME, apply: bool = APPLY) -> None:
    """The client moves to another carrier: new uplink, new public address."""
    lab = _lab(name)
    try:
        r = life.roam(lab, node, carrier)
    except life.FaultError as exc:
        fail(str(exc))
    out.print(f"{node} roamed to carrier {carrier}: public address {r.before} -> {r.after} "
              f"(own address {r.address})", markup=False)
    _after(lab, [node], apply)


@app.command("nat-reset")
def fault_nat_reset(carrier: str = typer.Argument(..., help="Carrier whose NAT forgets."),
                    name: str | None = NAME) -> None:
    """The carrier forgets every NAT mapping; the next packets get new public ports."""
    lab = _lab(name)
    try:
        r = life.nat_reset(lab, carrier)
    except life.FaultError as exc:
        fail(str(exc))
    out.print(f"carrier {carrier} forgot {plural(r.flushed, 'mapping')}; new mappings: "
              f"{r.ports}", markup=False)


@app.command("sleep")
def fault_sleep(node: str = typer.Argument(..., help="Machine that sleeps."),
                seconds: float = typer.Argument(..., min=0, help="How long."),
                name: str | None = NAME, apply: bool = APPLY) -> None:
    """Freeze the machine (processes stopped, link silent) for SECONDS, then resume."""
    lab = _lab(name)
    _known(lab, node)
    frozen = life.sleep(lab, node, seconds)
    out.print(f"{node} slept {seconds:g} s: {len(frozen.pids)} processes stopped, "
              f"{frozen.link[1]} in {frozen.link[0]} down; resumed", markup=False)
    _after(lab, [node], apply)


@app.command("reboot")
def fault_reboot(machine: str = typer.Argument(..., help="Machine that reboots."),
                 name: str | None = NAME, apply: bool = APPLY) -> None:
    """Kill every process, lose the runtime state (interfaces, /run), boot.

    Boot runs /etc/wgbgp/boot.sh when it is there (the boot hook for machines without
    systemd); without it nothing of wgbgp's starts until `wgbgp apply` (--apply)."""
    lab = _lab(name)
    _known(lab, machine)
    r = life.reboot(lab, machine)
    out.print(f"{machine} rebooted: lost {', '.join(r.lost) or 'nothing'}; "
              f"{r.boot.hook_status or 'booted'}", markup=False)
    if not r.boot.hook_ran and not apply:
        out.print(f"  nothing of wgbgp's started ({BOOT_HOOK} absent): rerun with --apply, "
                  "or apply the lab's topology", markup=False)
    _after(lab, [machine], apply)


@app.command("flap")
def fault_flap(machine: str = typer.Argument(..., help="Machine."),
               iface: str = typer.Argument(..., help="Interface to take down and up."),
               name: str | None = NAME, apply: bool = APPLY) -> None:
    """`ip link set IFACE down`, then `up`: the routes through it are gone."""
    lab = _lab(name)
    _known(lab, machine)
    try:
        r = life.flap(lab, machine, iface)
    except life.FaultError as exc:
        fail(str(exc))
    lost = ", ".join(r.routes_lost) or "none"
    out.print(f"{machine}: {iface} went down and up; routes lost: {lost}", markup=False)
    _after(lab, [machine], apply)


@app.command("kill")
def fault_kill(machine: str = typer.Argument(..., help="Machine."),
               daemon: str = typer.Argument(..., help="Process name, e.g. bgpd, bird."),
               name: str | None = NAME, apply: bool = APPLY) -> None:
    """SIGKILL every process of that name in the machine (only there)."""
    lab = _lab(name)
    _known(lab, machine)
    try:
        r = life.kill_daemon(lab, machine, daemon)
    except life.FaultError as exc:
        fail(str(exc))
    out.print(f"{machine}: killed {daemon} (pid {', '.join(map(str, r.pids))} in the "
              "machine)", markup=False)
    _after(lab, [machine], apply)
