"""`wgbgp status`, `doctor` and `exporter`: look at a live machine and judge it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..compile import Plan, compile_topology
from ..observe import (
    CODES,
    LAYERS,
    MachineStatus,
    Observation,
    Report,
    collect,
    diagnose,
    gather,
    snapshot,
    status_from_snapshot,
)
from ..observe.exporter import DEFAULT_LISTEN, parse_listen, peer_names, registry_for
from ..observe.intent import INTENT_PATH, IntentError, read_intent
from ..observe.locate import locate
from ..transport import (
    CommandFailed,
    Executor,
    LocalExecutor,
    NoRoute,
    SSHExecutor,
    SshOptions,
    machine_executors,
    ssh_executor,
    with_topology_defaults,
)
from .apply import IDENTITY, KNOWN_HOSTS, NETNS
from .common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_UNHEALTHY,
    emit_json,
    err,
    fail,
    out,
    plural,
    read_topology,
)

TOPOLOGY_HELP = "Topology file: tells which machine this is and what should be there."
NODE_HELP = "This machine's name in the topology (default: recognised by key or address)."


INTENT_HELP = (f"Without a topology, judge this machine against the plan `wgbgp apply` "
               f"left in {INTENT_PATH} (--no-intent: by its live state alone).")


def _plans(topology: Path | None, as_json: bool = False) -> dict[str, Plan] | None:
    if topology is None:
        return None
    topo, _warnings = read_topology(topology, as_json=as_json)
    return compile_topology(topo)


def _from_intent(node: str | None, executor: Executor
                 ) -> tuple[dict[str, Plan] | None, str | None]:
    """(plans, this machine) from the intent apply left on this machine, or (None, node)
    when there is none. Says on stderr which plan it judges against."""
    try:
        intent = read_intent(executor)
    except IntentError as exc:
        fail(f"cannot read the plan wgbgp apply left: {exc}",
             f"run `wgbgp apply` again (it rewrites {INTENT_PATH}), remove the file, or "
             f"pass --no-intent", EXIT_BAD_INPUT)
    if intent is None:
        return None, node
    if node and node != intent.machine:
        fail(f"--node {node}: this machine was applied as {intent.machine} ({intent.path})",
             "pass the topology file to judge it as another machine, or drop --node")
    err.print(f"this is {intent.machine} (judged against the plan wgbgp apply left in "
              f"{intent.path}; --no-intent: live facts only)", markup=False)
    return intent.plans, intent.machine


def _identify(plans: dict[str, Plan] | None, node: str | None,
              executor: Executor) -> str | None:
    """This machine's name in the topology: --node, or recognised from its live state."""
    if plans is None:
        if node:
            fail("--node needs a topology", "pass the topology file before --node")
        return None
    if node:
        if node not in plans:
            fail(f"unknown machine {node!r}", f"machines in the topology: {', '.join(plans)}")
        return node
    found, how = locate(plans, status_from_snapshot(snapshot(executor)))
    if found is None:
        fail(f"cannot tell which machine of the topology this is: {how}",
             f"pass --node NAME (one of {', '.join(plans)})")
    err.print(f"this is {found} (recognised by {how})", markup=False)
    return found


def _reach(executor: Executor, node: str) -> None:
    """Connect now, so that an unreachable machine is an error (exit 1), not a status
    with nothing in it."""
    connect = getattr(executor, "connect", None)
    if connect is None:
        return
    try:
        connect()
    except CommandFailed as exc:
        cause = exc.result.stderr.strip().splitlines()
        fail(f"cannot reach {node}: {cause[-1] if cause else exc}",
             "check its `ssh:` target, that it is up, and --known-hosts/--identity",
             EXIT_UNHEALTHY, machine=node, step="connect")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = int(seconds)
    return f"{s} s" if s < 120 else f"{s // 60} min" if s < 7200 else f"{s // 3600} h"


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def status_tables(status: MachineStatus, names: dict[str, str]) -> Group:
    """Rich tables for people: tunnels, BGP sessions, routes learned."""
    parts: list[RenderableType] = []
    wg = Table(title=f"{status.machine}: WireGuard", title_justify="left", expand=False)
    for col in ("interface", "peer", "endpoint (as seen)", "handshake", "received", "sent",
                "keepalive", "allowed IPs"):
        wg.add_column(col)
    for iface in status.interfaces:
        for p in iface.peers:
            age = p.handshake_age(status.time)
            colour = "green" if age is not None and age <= 180 else "red"
            shown = (Text(f"{iface.name} (down)", style="red")
                     if status.links_up.get(iface.name) is False else iface.name)
            wg.add_row(shown, names.get(p.public_key, p.public_key[:10] + "…"),
                       p.endpoint or "-", Text(_age(age), style=colour), _bytes(p.rx_bytes),
                       _bytes(p.tx_bytes), f"{p.keepalive} s" if p.keepalive else
                       Text("off", style="yellow"), ", ".join(p.allowed_ips))
    parts.append(wg if status.interfaces else
                 Text(f"{status.machine}: no WireGuard interface is up"))
    if status.bgp is not None:
        bgp = Table(title=f"{status.machine}: BGP (AS {status.bgp.asn}, router-id "
                          f"{status.bgp.router_id})", title_justify="left")
        for col in ("neighbour", "name", "AS", "state", "up", "pfx rcvd", "pfx sent"):
            bgp.add_column(col)
        for n in status.bgp.neighbors:
            bgp.add_row(n.address, names.get(n.address, n.name), str(n.remote_as or "?"),
                        Text(n.state, style="green" if n.established else "red"),
                        _age(n.established_for).removesuffix(" ago") if n.established else "-",
                        str(n.prefixes_received if n.prefixes_received is not None else "-"),
                        str(n.prefixes_sent if n.prefixes_sent is not None else "-"))
        parts.append(bgp)
        routes = Table(title=f"{status.machine}: routes learned by BGP", title_justify="left")
        for col in ("prefix", "via", "installed"):
            routes.add_column(col)
        for r in status.bgp.routes:
            routes.add_row(r.prefix, ", ".join(r.nexthops),
                           Text("yes", style="green") if r.installed else Text("no", style="red"))
        if not status.bgp.routes:
            routes.add_row("-", "none", "")
        parts.append(routes)
    for source, why in status.errors.items():
        parts.append(Text(f"{source}: {why}", style="yellow"))
    return Group(*parts)


def status(
    topology: Path | None = typer.Argument(None, help=TOPOLOGY_HELP),
    node: str | None = typer.Option(None, "--node", "-n", help=NODE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh until Ctrl-C."),
    interval: float = typer.Option(2.0, "--interval", help="Seconds between refreshes."),
    ssh: bool = typer.Option(False, "--ssh", help="Read --node over its `ssh:` target "
                                                  "instead of this machine."),
    known_hosts: Path | None = KNOWN_HOSTS, identity: Path | None = IDENTITY,
    netns: Path | None = NETNS,
    intent: bool = typer.Option(True, "--intent/--no-intent", help=INTENT_HELP),
) -> None:
    """Tunnels (endpoint as seen, handshake, bytes), BGP sessions and routes of a machine.

    Exit 0 shown, 1 the machine cannot be reached (--ssh), 2 bad input.
    """
    plans = _plans(topology, as_json)
    executor: Executor = LocalExecutor()
    if plans is None and intent and not ssh:
        plans, node = _from_intent(node, executor)
    if ssh:
        if topology is None or node is None:
            fail("--ssh needs the topology and --node", "e.g. wgbgp status T.yaml -n vps --ssh")
        topo, _ = read_topology(topology)
        try:
            executor = machine_executors(topo, [node], ssh=SshOptions(
                known_hosts, identity, netns))[node]
        except (NoRoute, ValueError) as exc:
            fail(str(exc))
        if not isinstance(executor, SSHExecutor):
            fail(f"{node} has no `ssh:` target in {topology}", "add `ssh: root@HOST` to it")
        _reach(executor, node)
    name = _identify(plans, node, executor)
    plan = plans[name] if plans and name else None
    names = peer_names(plans)

    def take() -> MachineStatus:
        return collect(executor, plan)

    if as_json:
        if watch:
            try:
                while True:
                    print(json.dumps(take().to_json(names), default=str), flush=True)
                    time.sleep(interval)
            except KeyboardInterrupt:
                return
        emit_json(take().to_json(names))
        return
    if not watch:
        out.print(status_tables(take(), names))
        return
    try:
        with Live(status_tables(take(), names), console=out, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(status_tables(take(), names), refresh=True)
    except KeyboardInterrupt:
        return


_MARK = {"fail": "[bold red]FAIL[/]", "warn": "[yellow]WARN[/]", "ok": "[green] ok [/]",
         "skip": "[dim]skip[/]"}


def print_report(report: Report, show_all: bool = False) -> None:
    findings = report.findings
    for i, c in enumerate(findings):
        lead = "root cause" if i == 0 and c.verdict == "fail" else ""
        out.print(f"{_MARK[c.verdict]} [bold]{c.code}[/] on {c.machine}"
                  + (f" [dim]({lead})[/]" if lead else ""), markup=True)
        out.print(f"     {c.message}", markup=False)
        for e in c.evidence:
            out.print(f"     · {e}", markup=False)
        if c.fix:
            out.print(f"     fix: {c.fix}", markup=False)
    if show_all:
        table = Table(title="all checks, bottom-up", title_justify="left")
        for col in ("layer", "machine", "check", "subject", "verdict", "detail"):
            table.add_column(col)
        for c in report.checks:
            table.add_row(str(c.layer), c.machine, c.code, c.subject,
                          Text.from_markup(_MARK[c.verdict]),
                          c.message if c.verdict != "skip" else f"because {c.because}")
        out.print(table)
    counts = {v: sum(1 for c in report.checks if c.verdict == v)
              for v in ("ok", "warn", "fail", "skip")}
    seen = ", ".join(report.machines) or "none"
    extra = f"; not inspected: {', '.join(report.unobserved)}" if report.unobserved else ""
    verdict = "[green]healthy[/]" if report.healthy else "[bold red]problems found[/]"
    out.print(f"{verdict}: {plural(len(report.checks), 'check')} on {seen}{extra} "
              f"({counts['ok']} ok, {counts['fail']} failed, "
              f"{plural(counts['warn'], 'warning')}, "
              f"{counts['skip']} skipped as consequences)", markup=True)


def _ssh_executors(plans: dict[str, Plan], topology: Path,
                   skip: str | None) -> dict[str, SSHExecutor]:
    topo, _ = read_topology(topology)
    targets = {**{n: h.ssh for n, h in topo.hubs.items()},
               **{n: c.ssh for n, c in topo.nodes.items()}}
    # The topology's `ssh:` section (identity, known_hosts, netns) applies here too.
    options = with_topology_defaults(SshOptions(), topo)
    return {n: ssh_executor(n, t, options) for n, t in targets.items() if t and n != skip}


def doctor(
    topology: Path | None = typer.Argument(None, help=TOPOLOGY_HELP),
    node: str | None = typer.Option(None, "--node", "-n", help=NODE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    probe: bool = typer.Option(True, "--probe/--no-probe",
                               help="Send pings and TCP probes through the tunnels."),
    ssh: bool = typer.Option(False, "--ssh", help="Also inspect the machines that have an "
                                                  "`ssh:` target in the topology."),
    show_all: bool = typer.Option(False, "--all", help="List every check, not only problems."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 on warnings too."),
    save: Path | None = typer.Option(None, "--save", help="Also write the raw observation "
                                     "(keys redacted) to FILE, e.g. for a bug report."),
    replay: Path | None = typer.Option(None, "--from", help="Judge a saved observation "
                                       "instead of this machine."),
    codes: bool = typer.Option(False, "--codes", help="List every finding code and exit."),
    intent: bool = typer.Option(True, "--intent/--no-intent", help=INTENT_HELP),
) -> None:
    """Find what is wrong, bottom-up (tunnel, forwarding, BGP, routes, MTU), and how to fix it.

    Exit 0 healthy, 1 problems found, 2 bad input.
    """
    if codes:
        _print_codes(as_json)
        return
    if replay is not None:
        obs, plans = _load_observation(replay, topology)
    else:
        plans = _plans(topology, as_json)
        executor = LocalExecutor()
        if plans is None and intent:
            plans, node = _from_intent(node, executor)
        name = _identify(plans, node, executor) or "localhost"
        executor = LocalExecutor(name)
        executors: dict[str, Executor] = {name: executor}
        if ssh and plans and topology is not None:
            executors.update(_ssh_executors(plans, topology, name))
        obs = gather(executors, plans, probe=probe)
        if save is not None:
            save.write_text(json.dumps(obs.to_json(), indent=1) + "\n")
    report = diagnose(obs, plans)
    if as_json:
        emit_json(report.to_json())
    else:
        print_report(report, show_all)
    unhealthy = not report.healthy or (strict and any(c.verdict == "warn"
                                                      for c in report.checks))
    raise typer.Exit(EXIT_UNHEALTHY if unhealthy else EXIT_OK)


def _print_codes(as_json: bool) -> None:
    if as_json:
        emit_json([{"code": c.name, "layer": LAYERS[c.layer], "meaning": c.meaning}
                   for c in CODES.values()])
        return
    table = Table(title="doctor finding codes, bottom-up", title_justify="left")
    for col in ("layer", "code", "meaning"):
        table.add_column(col)
    for c in sorted(CODES.values(), key=lambda c: c.layer):
        table.add_row(LAYERS[c.layer], c.name, c.meaning)
    out.print(table)


def _load_observation(path: Path, topology: Path | None
                      ) -> tuple[Observation, dict[str, Plan] | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        obs = Observation.from_json(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fail(f"cannot read observation {path}: {exc}",
             "pass a file written by `wgbgp doctor --save`", EXIT_BAD_INPUT)
    if topology is not None:
        return obs, _plans(topology)
    if data.get("topology"):
        from ..model import parse
        return obs, compile_topology(parse(data["topology"], str(path))[0])
    return obs, None


def exporter(
    topology: Path | None = typer.Argument(None, help=TOPOLOGY_HELP),
    node: str | None = typer.Option(None, "--node", "-n", help=NODE_HELP),
    listen: str = typer.Option(DEFAULT_LISTEN, "--listen", help="ADDRESS:PORT to serve on."),
) -> None:
    """Serve Prometheus metrics (handshake age, bytes, BGP state, uptime, prefixes)."""
    from prometheus_client import start_http_server
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        fail(str(exc))
    plans = _plans(topology)
    executor = LocalExecutor()
    if plans is None:
        plans, node = _from_intent(node, executor)
    name = _identify(plans, node, executor)
    if name:
        executor = LocalExecutor(name)
    registry = registry_for(executor, plans[name] if plans and name else None, plans)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        fail(f"cannot listen on {listen}: {exc.strerror}", "pick another --listen address")
    err.print(f"serving metrics on http://{listen}/metrics (Ctrl-C stops)", markup=False)
    try:
        while thread.is_alive():
            thread.join(1)
    except KeyboardInterrupt:
        server.shutdown()
