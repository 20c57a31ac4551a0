"""`wgbgp lab up`: build the hosts, then bring the network up with the real apply code.

The lab only provides machines. Keys are made on them, configs come from `render`, and
`apply` puts them in place exactly as on real machines; no second code path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import TypeVar

from ..apply import ApplyResult, remote_keygen
from ..apply.agentinstall import AgentInstall, install_agent
from ..apply.lockfile import lock_path, write_lock
from ..apply.parallel import apply_many
from ..apply.secrets import read_secrets
from ..compile import Plan, compile_topology
from ..model import Topology
from ..observe import bgp_state
from ..observe.status import parse_kernel_routes
from ..render import SecretError, render_machine
from ..transport import Executor
from ..words import plural
from .build import Lab, build_lab, open_lab
from .fromtopology import spec_for, to_yaml, with_lab_keys, with_ssh_targets
from .sshd import SshAccess, start_sshd
from .state import is_running, lab_dir, list_labs, teardown

Progress = Callable[[str], None]
TOPOLOGY_FILE = "topology.yaml"
# Machines applied at once by `lab up`. Each apply mostly waits (FRR starting, bgpd loading
# its config), so more than the cores helps: 60 clients in hub mode on 2 cores came up in
# 49.8 s with 8, 41.3-42.2 s with 16, 46.0 s with 32.
APPLY_PARALLEL = 16


class LabError(Exception):
    """The lab could not be brought up, or the named lab does not exist."""


@dataclass
class UpReport:
    name: str
    topology_path: Path
    timings: dict[str, float] = field(default_factory=dict)
    sessions: int = 0
    prefixes: int = 0
    results: dict[str, ApplyResult] = field(default_factory=dict)
    ssh: SshAccess | None = None  # --bare: how `wgbgp apply` reaches the machines
    agents: dict[str, AgentInstall] = field(default_factory=dict)  # machine -> how started


def lab_topology_path(name: str) -> Path:
    """Where a lab keeps its own copy of the topology (with the lab machines' keys)."""
    return lab_dir(name) / TOPOLOGY_FILE


def resolve_name(name: str | None) -> str:
    """The lab a command means: the one named, or the only one running."""
    if name:
        return name
    labs = list_labs()
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise LabError("no lab is running; start one with `wgbgp lab up`")
    raise LabError(f"several labs are running ({', '.join(labs)}); say which with --name")


def require_lab(name: str | None) -> Lab:
    """The running lab a command means, or LabError."""
    resolved = resolve_name(name)
    lab = open_lab(resolved)
    if lab is None:
        raise LabError(f"no lab named {resolved!r} is running")
    return lab


def announced_addresses(prefixes: Iterable[IPv4Network | IPv6Network]) -> list[str]:
    """The address a lab client holds for each prefix it announces (first host, /32 or
    /128)."""
    out = []
    for p in prefixes:
        host = (p.network_address if p.prefixlen >= p.max_prefixlen - 1
                else p.network_address + 1)
        out.append(f"{host}/{p.max_prefixlen}")
    return out


def give_announced_addresses(executor: Executor, plan: Plan) -> None:
    """What the node's owner would have: its announced addresses on a local interface."""
    if plan.bgp is None:
        return
    for addr in announced_addresses(plan.bgp.originate):
        executor.run(["ip", "address", "replace", addr, "dev", "lo"])


def up(topology: Topology, *, name: str, timeout: float = 60, bare: bool = False,
       progress: Progress = lambda _msg: None, secrets_base: Path | None = None,
       agent: bool = False) -> UpReport:
    """Build the lab for `topology` and bring it to convergence; tear down on failure.

    `bare`: stop once the machines exist, each with its key and an sshd on the lab's
    management network; the written topology's `ssh:` targets point at them, for
    `wgbgp apply --all` to do the rest over real SSH.

    Secrets the topology names (passwords, preshared keys) are read first, as `apply`
    reads them: relative files from `secrets_base` (the topology file's directory).

    `agent`: right after apply, start `wgbgp agent` in every machine, as `wgbgp apply`
    does (`wgbgp lab up` does; its `--no-agent`, and this function's default, leave the
    machines without one, so that a fault injected stays until repaired by hand)."""
    if is_running(name):
        raise LabError(f"lab {name!r} is already running; `wgbgp lab down --name {name}` "
                       "first, or start another beside it with --name")
    spec = spec_for(topology, name)
    topology = _absolute_secrets(topology, secrets_base)
    try:
        secrets = read_secrets(compile_topology(topology).values(), secrets_base)
    except SecretError as exc:
        raise LabError(f"cannot read a secret the topology names: {exc}") from None
    t0 = time.monotonic()
    progress(f"building hosts: internet, {plural(len(spec.carriers), 'carrier')}, "
             f"{plural(len(spec.hubs), 'hub')}, {plural(len(spec.clients), 'client')}")
    lab = build_lab(spec)
    report = UpReport(name, lab_topology_path(name))
    try:
        report.timings["hosts"] = time.monotonic() - t0
        executors = {n: m.executor() for n, m in lab.machines.items()}
        progress("making WireGuard keys on every machine")
        keys = _parallel(executors, lambda n, x: remote_keygen(x, n).public_key)
        topo = with_lab_keys(topology, spec, keys)
        plans = compile_topology(topo)
        _parallel(executors, lambda n, x: give_announced_addresses(x, plans[n]))
        t1 = time.monotonic()
        report.timings["keys"] = t1 - t0 - report.timings["hosts"]
        if bare:
            progress("starting sshd in every machine (management network)")
            report.ssh = start_sshd(lab)
            topo = with_ssh_targets(topo, report.ssh.targets, report.ssh.defaults())
        report.topology_path.write_text(to_yaml(
            topo, f"# Lab {name}: the topology with this lab's machine keys.\n"))
        # Its addresses are the user's (their lock's): the copy keeps them beside it.
        write_lock(report.topology_path, topo, None)
        if bare:
            report.timings["total"] = time.monotonic() - t0
            return report
        progress("applying configs (wg-quick, FRR) with `wgbgp apply`'s code")
        jobs = [(executors[n], render_machine(plans[n], secrets=secrets or None, plans=plans))
                for n in plans]
        report.results = apply_many(jobs, enable_at_boot=False, max_parallel=APPLY_PARALLEL,
                                    after=agent_starter(report.topology_path, report.agents)
                                    if agent else None)
        failed = [r for r in report.results.values() if not r.ok]
        if failed:
            raise LabError("apply failed:\n" + "\n".join(r.summary() for r in failed))
        if agent:
            bad = [f"{n}: {a.detail}" for n, a in report.agents.items()
                   if a.how not in ("started", "running", "enabled")]
            if bad:
                raise LabError("the agent did not start:\n" + "\n".join(bad))
        t2 = time.monotonic()
        report.timings["apply"] = t2 - t1
        report.sessions, report.prefixes = wait_converged(
            executors, plans, timeout=timeout, progress=progress)
        report.timings["converge"] = time.monotonic() - t2
        report.timings["total"] = time.monotonic() - t0
    except BaseException:
        teardown(name)
        raise
    return report


def agent_starter(topology_path: Path, into: dict[str, AgentInstall]
                  ) -> Callable[[Executor, ApplyResult], None]:
    """For apply_many's `after`: `wgbgp agent` on each machine applied, under its apply
    lock, exactly as `wgbgp apply` installs it; how each started goes into `into`."""
    text = topology_path.read_text(encoding="utf-8")
    lock = lock_path(topology_path)
    lock_text = lock.read_text(encoding="utf-8") if lock.exists() else None

    def start(x: Executor, result: ApplyResult) -> None:
        if result.ok:
            into[x.name] = install_agent(x, x.name, text, lock_text)
    return start


def _absolute_secrets(topology: Topology, base: Path | None) -> Topology:
    """The lab's copy of the topology lives elsewhere: name secret files absolutely, so
    that `apply` or `keys rotate` on that copy finds the same files."""
    net = topology.network
    update = {}
    for name in ("bgp_password", "preshared_key"):
        secret = getattr(net, name)
        if secret is not None and secret.file is not None:
            path = Path(secret.file).expanduser()
            if not path.is_absolute():
                path = (base or Path.cwd()).resolve() / path
            update[name] = secret.model_copy(update={"file": str(path)})
    if not update:
        return topology
    return topology.model_copy(update={"network": net.model_copy(update=update)})


@dataclass
class Convergence:
    """How far a network is from converged: what is still missing."""

    sessions_up: int = 0
    sessions: int = 0
    prefixes_in: int = 0
    prefixes: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return not self.missing


def convergence(executors: Mapping[str, Executor], plans: Mapping[str, Plan]) -> Convergence:
    """Every configured session Established, every expected prefix installed by BGP?"""
    speakers = {n: p for n, p in plans.items() if p.bgp is not None}
    seen = _parallel({n: executors[n] for n in speakers},
                     lambda n, x: _bgp_view(x, speakers[n]))
    c = Convergence()
    for name, plan in speakers.items():
        neighbours, routes = seen[name]
        for s in plan.bgp.sessions if plan.bgp else ():
            c.sessions += 1
            state = neighbours.get(str(s.peer_address), "absent")
            if state == "Established":
                c.sessions_up += 1
            else:
                c.missing.append(f"{name}: session to {s.peer} is {state}")
            for prefix in s.accept:
                c.prefixes += 1
                if str(prefix) in routes:
                    c.prefixes_in += 1
                else:
                    c.missing.append(f"{name}: no route to {prefix} (from {s.peer})")
    return c


def _bgp_view(x: Executor, plan: Plan) -> tuple[dict[str, str], set[str]]:
    """(neighbour address -> session state, prefixes BGP installed), as observe reads them."""
    bgp = bgp_state(x, plan)
    if bgp is None:
        return {}, set()
    return ({n.address: n.state for n in bgp.neighbors},
            {r.prefix for r in bgp.routes if r.installed})


def kernel_routes(x: Executor, proto: str) -> set[str]:
    """Prefixes of the kernel routes that routing daemon `proto` installed (both families)."""
    out: set[str] = set()
    for family, host in (("-4", 32), ("-6", 128)):
        res = x.run(["ip", "-j", family, "route", "show", "proto", proto], check=False)
        try:
            out |= {r.prefix for r in parse_kernel_routes(res.stdout, host)}
        except ValueError:
            continue
    return out


@dataclass(frozen=True)
class Waited:
    """How a wait for convergence ended: whether it converged, and after how long."""

    converged: bool
    seconds: float
    last: Convergence  # the last look: what was still missing, if anything

    def describe(self) -> str:
        """`converged after 3.1 s` / `not converged after 30 s`."""
        if self.converged:
            return f"converged after {self.seconds:.1f} s"
        return f"not converged after {self.seconds:.0f} s"

    def to_json(self) -> dict[str, object]:
        """The wait as `lab test --json` reports it."""
        return {"converged": self.converged, "seconds": round(self.seconds, 2),
                "missing": list(self.last.missing)}


def poll_convergence(look: Callable[[], Convergence], *, timeout: float,
                     interval: float = 0.5, progress: Progress = lambda _msg: None,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> Waited:
    """Look until converged or `timeout` seconds have passed (at least one look; never
    sleeps past the deadline); never raises for not converging."""
    start = clock()
    deadline = start + timeout
    last = ""
    while True:
        c = look()
        line = (f"sessions Established {c.sessions_up}/{c.sessions}, "
                f"prefixes installed {c.prefixes_in}/{c.prefixes}")
        if line != last:
            progress(line)
            last = line
        now = clock()
        if c.done or now >= deadline:
            return Waited(c.done, now - start, c)
        sleep(max(0.0, min(interval, deadline - now)))


def wait_for_convergence(executors: Mapping[str, Executor], plans: Mapping[str, Plan], *,
                         timeout: float, interval: float = 0.5,
                         progress: Progress = lambda _msg: None) -> Waited:
    """Poll the machines until every session is Established and every expected prefix
    installed, for at most `timeout` seconds; says how long it waited."""
    return poll_convergence(lambda: convergence(executors, plans), timeout=timeout,
                            interval=interval, progress=progress)


def wait_converged(executors: Mapping[str, Executor], plans: Mapping[str, Plan], *,
                   timeout: float,
                   progress: Progress = lambda _msg: None) -> tuple[int, int]:
    """Poll until converged; LabError naming what is missing when `timeout` runs out."""
    waited = wait_for_convergence(executors, plans, timeout=timeout, interval=0.2,
                                  progress=progress)
    c = waited.last
    if not waited.converged:
        shown = "\n  ".join(c.missing[:20])
        raise LabError(f"not converged after {timeout:.0f} s:\n  {shown}")
    return c.sessions, c.prefixes


_T = TypeVar("_T")


def _parallel(executors: Mapping[str, Executor],
              fn: Callable[[str, Executor], _T]) -> dict[str, _T]:
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(executors)))) as pool:
        futures = {n: pool.submit(fn, n, x) for n, x in executors.items()}
        return {n: f.result() for n, f in futures.items()}
