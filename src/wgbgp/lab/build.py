"""A lab's hosts: the emulated Internet plus one machine per hub and client.

`build_lab` makes them (recording everything in the lab state first), `open_lab` finds
a running lab again from another process (for `lab exec`, `status`, `down`), and
`Lab.down` removes it. Daemons and configuration are the orchestration layer's job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from wgbgp.lab.machine import Machine, create_machines
from wgbgp.lab.spec import LabSpec
from wgbgp.lab.state import NETNS_DIR, LabState, TeardownReport, teardown
from wgbgp.lab.underlay import UnderlayPlan, build_underlay, carrier_node, plan_underlay
from wgbgp.transport import LocalExecutor


@dataclass
class Lab:
    """A built (or being built) lab: its spec, address plan and machines."""

    spec: LabSpec
    plan: UnderlayPlan
    mgmt: bool = True
    timings: dict[str, float] = field(default_factory=dict)  # seconds per build step
    # Clients that roamed: {client: {"carrier", "address", "gateway", "far_if"}}.
    roams: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def machines(self) -> dict[str, Machine]:
        """Hubs and clients by name, hubs first."""
        return {n: Machine(self.name, n) for n in self.spec.machines}

    def machine(self, name: str) -> Machine:
        if name not in self.spec.machines:
            raise KeyError(f"lab {self.name!r} has no machine {name!r} "
                           f"(machines: {', '.join(self.spec.machines)})")
        return Machine(self.name, name)

    def netns_executor(self, short: str) -> LocalExecutor:
        """Executor in a node's network namespace only (the host's file system): an
        infrastructure node ("inet", "carrier-<c>", "home-<client>", "mgmt", or as
        underlay.infra names them) or a machine."""
        path = NETNS_DIR / self.plan.ns(short)  # KeyError when there is no such node
        return LocalExecutor(short, prefix=["nsenter", f"--net={path}", "--"])

    def uplink(self, machine: str) -> tuple[str, str]:
        """(namespace, interface) of the far end of the machine's network port (eth0):
        the carrier, home router or Internet side of its link."""
        if machine in self.roams:
            return carrier_node(self.roams[machine]["carrier"]), self.roams[machine]["far_if"]
        for link in self.plan.links:
            for me, far in ((link.a, link.b), (link.b, link.a)):
                if me.ns == machine and me.ifname == "eth0":
                    return far.ns, far.ifname
        raise KeyError(f"machine {machine!r} has no uplink")

    def down(self) -> TeardownReport:
        """Tear the lab down (same as `teardown(lab.name)`)."""
        return teardown(self.name)


def build_lab(spec: LabSpec, *, mgmt: bool = True, keep_on_error: bool = False) -> Lab:
    """Build the underlay and the machines of `spec`; raises LabExists if already there.

    On failure everything made so far is torn down again, unless `keep_on_error` (then
    `teardown(spec.name)` cleans up later from the state file).
    """
    plan = plan_underlay(spec, mgmt)
    lab = Lab(spec, plan, mgmt)
    state = LabState.create(spec.name, spec=spec.to_dict(), options={"mgmt": mgmt})
    try:
        t0 = time.monotonic()
        build_underlay(plan, state)
        t1 = time.monotonic()
        create_machines(spec.name, list(spec.machines), state)
        t2 = time.monotonic()
        state.set_status("up")
    except BaseException:
        if not keep_on_error:
            teardown(spec.name)
        raise
    lab.timings = {"underlay": t1 - t0, "machines": t2 - t1, "total": t2 - t0}
    return lab


def open_lab(name: str) -> Lab | None:
    """The lab called `name` as recorded in its state file, or None if there is none.

    Its address plan is the one it was built with, moved by any roam since (a client that
    roamed has its new carrier, address and gateway: `lab/life.py`)."""
    state = LabState.load(name)
    if state is None or not state.spec:
        return None
    spec = LabSpec.from_dict(state.spec)
    mgmt = bool(state.options.get("mgmt", True))
    plan = plan_underlay(spec, mgmt)
    for client, up in state.life.get("roams", {}).items():
        plan.carrier_of[client] = up["carrier"]
        plan.address[client] = IPv4Address(up["address"])
        plan.gateway[client] = IPv4Address(up["gateway"])
    return Lab(spec, plan, mgmt, roams=dict(state.life.get("roams", {})))
