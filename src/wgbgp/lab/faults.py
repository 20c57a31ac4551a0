"""Failures on purpose: a hub that dies and comes back, and a ping that measures the outage.

`crash` is a silent death (power cut, kernel panic, provider outage): the tunnel stops
first, then every process of the machine is killed, so no BGP NOTIFICATION or TCP FIN
reaches a peer; peers notice only by BFD or the hold timer. `restart` is the machine
booting again (`lab/power.py`) and `wgbgp apply` running on it: the same apply code as
`lab up`. The laptop's other life events are in `lab/life.py`.
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
from dataclasses import dataclass

from ..apply import ApplyResult
from ..apply.parallel import apply_many
from ..apply.secrets import read_secrets
from ..compile import compile_topology
from ..model import parse
from ..observe.probe import ping_counts
from ..render import render_machine
from .build import Lab
from .power import boot, power_off
from .runner import lab_topology_path


def crash(lab: Lab, name: str) -> list[int]:
    """Kill machine `name` silently: tunnels down first, then every process at once.

    Returns the host pids killed. Its network namespace and addresses stay (the VPS still
    exists, nothing runs on it), so `restart` can bring it back.
    """
    pids = power_off(lab, name)
    # A kernel WireGuard interface outlives its processes: remove it as a reboot would.
    x = lab.netns_executor(name)
    for iface in re.findall(r"^\d+:\s+([^:@\s]+)", x.run(
            ["ip", "-o", "link", "show", "type", "wireguard"], check=False).stdout, flags=re.M):
        x.run(["ip", "link", "del", "dev", iface], check=False)
    return pids


def restart(lab: Lab, name: str) -> ApplyResult:
    """Bring machine `name` back: boot it if it is off, then apply its configuration
    again, as after a reboot (with no agent or boot hook to do it)."""
    if lab.machine(name).init_pid() is None:
        boot(lab, name)
    path = lab_topology_path(lab.name)
    topology, _ = parse(path.read_text(), str(path))
    plans = compile_topology(topology)
    secrets = read_secrets([plans[name]], path.parent)
    files = render_machine(plans[name], secrets=secrets or None, plans=plans)
    (result,) = apply_many([(lab.machine(name).executor(), files)],
                           enable_at_boot=False).values()
    return result


@dataclass(frozen=True)
class PingResult:
    """What a ping run saw: packets sent and answered, and how long traffic was lost."""

    interval: float
    sent: int
    received: int
    longest_gap: float  # seconds between two consecutive answers, minus one interval

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def outage(self) -> float:
        """Lost packets x interval: the outage as the issue measures it."""
        return self.lost * self.interval


class PingRun:
    """A ping running inside a lab machine (`ping -D -i INTERVAL -I SOURCE DEST`)."""

    def __init__(self, lab: Lab, machine: str, source: str, dest: str, *,
                 interval: float = 0.1, limit: float = 300) -> None:
        self.interval = interval
        argv = ["ping", "-n", "-D", "-i", f"{interval:g}", "-w", f"{limit:g}",
                "-I", source, dest]
        self.proc: subprocess.Popen[str] = lab.machine(machine).spawn(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> PingResult:
        """Stop the ping (SIGINT, so it prints its summary) and read what it saw."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # to ping itself (MachineProcess)
        out, _ = self.proc.communicate(timeout=10)
        return parse_ping(out, self.interval)


def parse_ping(text: str, interval: float) -> PingResult:
    """A PingResult from `ping -D` output (timestamps in brackets, then the summary)."""
    stamps = [float(m.group(1)) for m in
              re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=\d+", text, flags=re.M)]
    counts = ping_counts(text)
    if counts is None:
        raise ValueError(f"not ping output: {text[-300:]!r}")
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    longest = max(gaps, default=0.0) - interval if gaps else 0.0
    return PingResult(interval, *counts, max(0.0, longest))


def route_dev(lab: Lab, machine: str, dest: str, source: str | None = None) -> str:
    """The interface machine `machine` sends traffic for `dest` on (`ip route get`)."""
    argv = ["ip", "-o", "route", "get", dest] + (["from", source] if source else [])
    out = lab.machine(machine).executor().run(argv, check=False).stdout
    m = re.search(r"\bdev (\S+)", out)
    return m.group(1) if m else ""


AGENT_PATTERN = "wgbgp agent"  # how `wgbgp agent` shows in a machine's process list


def agent_running(lab: Lab, name: str) -> bool:
    """An agent runs in the machine (it repairs on its own)."""
    res = lab.machine(name).executor().run(["pgrep", "-f", AGENT_PATTERN], check=False)
    return res.ok


def recover(lab: Lab, names: list[str]) -> dict[str, str]:
    """What repairs each machine after a fault: its agent when one runs there, else
    `wgbgp apply` now (`restart`). Machine -> "agent" or apply's summary."""
    done = {}
    for name in names:
        if agent_running(lab, name):
            done[name] = "agent"
        else:
            done[name] = restart(lab, name).summary()
    return done
