"""`wgbgp init`, `check` and `render`: from a topology file to every machine's configs."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import typer

from ..apply.secrets import read_secrets
from ..compile import Plan, compile_topology, neighbour_names, peering_count, session_counts
from ..model import Issue, Topology
from ..model.examples import starter_text
from ..model.keys import InvalidKey, decode_key, public_key
from ..render import RenderedFile, SecretError, render_machine
from .common import (
    EXIT_UNHEALTHY,
    emit_json,
    err,
    fail,
    out,
    plural,
    print_issues,
    read_topology,
    record_deployed,
)


def init(
    path: Path = typer.Argument(Path("topology.yaml"), help="Where to write the starter."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter topology (one VPS hub, two laptops behind CG-NAT)."""
    if path.is_dir():
        fail(f"{path} is a directory", f"name the file to write, e.g. `wgbgp init "
             f"{path / 'topology.yaml'}`")
    if path.exists() and not force:
        fail(f"{path} already exists", "pick another path, or pass --force to overwrite it")
    try:
        path.write_text(starter_text(), encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")
    out.print(f"wrote {path}: fill in the endpoint and public keys, then `wgbgp check {path}`")


@dataclass(frozen=True)
class Summary:
    hubs: int
    nodes: int
    tunnels: int
    bgp_peerings: int  # pairs of machines speaking BGP
    bgp_sessions: int  # sessions: one per peering, hub's plane and address family
    bgp_sessions_ipv4: int
    bgp_sessions_ipv6: int
    prefixes: int


def summarize(topology: Topology) -> Summary:
    """Counts a user can sanity-check at a glance."""
    counts = session_counts(topology)
    return Summary(
        hubs=len(topology.hubs),
        nodes=len(topology.nodes),
        tunnels=len(topology.hubs) * len(topology.nodes),
        bgp_peerings=peering_count(topology),
        bgp_sessions=sum(counts.values()),
        bgp_sessions_ipv4=counts["ipv4"],
        bgp_sessions_ipv6=counts["ipv6"],
        prefixes=sum(len(n.announce) for n in topology.nodes.values()),
    )


def check(
    topology: Path = typer.Argument(..., help="Topology file."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when there are warnings."),
) -> None:
    """Validate and lint a topology: exit 0 clean, 1 warnings (with --strict), 2 errors."""
    topo, warnings = read_topology(topology)
    s = summarize(topo)
    failed = strict and bool(warnings)
    if as_json:
        emit_json({"ok": not failed, "summary": s.__dict__,
                   "issues": [w.to_json() for w in warnings]})
    else:
        print_issues(warnings)
        out.print(f"{topology}: network {topo.network.name!r} ({topo.network.mode}) is valid: "
                  f"{plural(s.hubs, 'hub')}, {plural(s.nodes, 'node')}, "
                  f"{plural(s.tunnels, 'tunnel')}, {_sessions(s)}, "
                  f"{plural(s.prefixes, 'prefix', 'prefixes')}"
                  + (f", {plural(len(warnings), 'warning')}" if warnings else ""))
    if failed:
        raise typer.Exit(EXIT_UNHEALTHY)


def _sessions(s: Summary) -> str:
    """"3 BGP peerings (6 sessions: 3 IPv4, 3 IPv6)"; "3 BGP sessions" when each peering
    has exactly one."""
    if s.bgp_sessions == s.bgp_peerings:
        return plural(s.bgp_sessions, "BGP session")
    by_family = [f"{n} {afi}" for n, afi in ((s.bgp_sessions_ipv4, "IPv4"),
                                              (s.bgp_sessions_ipv6, "IPv6")) if n]
    return (f"{plural(s.bgp_peerings, 'BGP peering')} ({plural(s.bgp_sessions, 'session')}"
            + (f": {', '.join(by_family)}" if len(by_family) > 1 else "") + ")")


def missing_keys(plans: dict[str, Plan], wanted: list[str], topo: Topology) -> list[Issue]:
    """Machines whose configs cannot be rendered because a peer has no public key yet."""
    issues = []
    for name in wanted:
        for tunnel in plans[name].tunnels:
            for peer in tunnel.peers:
                if not peer.public_key:
                    section = "hubs" if peer.name in topo.hubs else "nodes"
                    issues.append(Issue(
                        "error", (section, peer.name, "public_key"),
                        f"{name}'s config needs {peer.name}'s public key, which is not set",
                        f"run `wgbgp keygen {peer.name}` on {peer.name} and paste the public key"))
    return issues


def read_private_key(keys: Path | None, machine: str) -> str | None:
    """The machine's private key from --keys DIR, to inline it; None to leave it on the machine."""
    if keys is None:
        return None
    path = keys / f"{machine}.key"
    if not path.exists():
        return None
    try:
        if path.stat().st_mode & stat.S_IROTH:
            fail(f"{path} is readable by everyone", f"`chmod 600 {path}`, and since others "
                 f"could read it, make a new key: `wgbgp keygen {machine} --force`")
        text = path.read_text(encoding="ascii").strip()
        decode_key(text)
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {getattr(exc, 'strerror', None) or 'not a key file'}",
             f"check its permissions, or `wgbgp keygen {machine} --force`")
    except InvalidKey as exc:
        fail(f"{path} is not a WireGuard private key: {exc}", f"`wgbgp keygen {machine} --force`")
    return text


def render_all(
    topo: Topology, machines: list[str], keys: Path | None, secrets_base: Path | None = None,
) -> dict[str, list[RenderedFile]]:
    """Render every asked-for machine in memory; nothing is written until all succeed.

    Secrets the topology names are read here, where wgbgp runs (relative files from
    `secrets_base`, the topology's directory)."""
    plans = compile_topology(topo, machines)  # only what these machines need
    # Each machine's intent file also holds its neighbours' plans.
    extra = {n for m in machines for n in neighbour_names(plans[m])} - set(plans)
    if extra:
        plans.update(compile_topology(topo, extra))
        plans = {m: plans[m] for m in topo.machines if m in plans}  # the topology's order
    issues = missing_keys(plans, machines, topo)
    if issues:
        fail("cannot render without those public keys", issues=issues)
    try:
        secrets = read_secrets([plans[m] for m in machines], secrets_base)
    except SecretError as exc:
        fail(f"cannot read a secret the topology names: {exc}",
             "create it where the topology says (a 0600 file, or an exported variable)")
    privates = {m: read_private_key(keys, m) for m in machines}
    for m, private in privates.items():
        declared = topo.machine(m).public_key
        # A private key is only ever read from --keys DIR.
        if keys is not None and private and declared and public_key(private) != declared:
            # Peers would expect the declared key: no handshake, ever (classic failure 4).
            fail(f"{keys / (m + '.key')} does not belong to {m}: its public key is "
                 f"{public_key(private)}, the topology declares {declared}",
                 f"paste {public_key(private)} as {m}'s public_key, or use {m}'s own key file")
    return {m: render_machine(plans[m], privates[m], secrets or None, plans=plans)
            for m in machines}


def render(
    topology: Path = typer.Argument(..., help="Topology file."),
    node: list[str] = typer.Option([], "--node", "-n", help="Only this machine (repeatable)."),
    out_dir: Path | None = typer.Option(None, "--out", "-o", help="Write DIR/MACHINE/etc/..."),
    keys: Path | None = typer.Option(
        None, "--keys", help="Inline private keys from DIR/MACHINE.key."),
    cloud_init: str | None = typer.Option(
        None, "--cloud-init", metavar="HUB", help="Print cloud-init user-data that makes a "
        "fresh VPS this hub at first boot (its key made there)."),
) -> None:
    """Render each machine's wg-quick, FRR, sysctl and (hubs) nftables configs."""
    topo, warnings = read_topology(topology)
    print_issues(warnings)
    if cloud_init is not None:
        if node or out_dir or keys:
            fail("--cloud-init prints one hub's user-data", "leave out --node, --out and --keys")
        from .cloudinit import print_user_data
        print_user_data(topo, topology, cloud_init)
        return
    known = list(topo.machines)
    unknown = [n for n in node if n not in known]
    if unknown:
        fail(f"unknown machine {', '.join(unknown)}", f"known: {', '.join(known)}")
    machines = node or known
    if keys is not None and not keys.is_dir():
        fail(f"--keys {keys}: no such directory",
             "pass the directory holding MACHINE.key files (`wgbgp keygen NAME --dir DIR`)")
    rendered = render_all(topo, machines, keys, topology.parent)
    record_deployed(topology, topo, machines)
    if out_dir is None:
        if any(f.holds_secret or f.text.count("PrivateKey")
               for files in rendered.values() for f in files):
            fail("refusing to print private keys, preshared keys or BGP passwords",
                 "pass --out DIR to write them to files only root (and FRR) can read")
        for machine, files in rendered.items():
            for f in files:
                out.print(f"==> {machine}:{f.path} <==", style="bold", markup=False)
                # Byte-exact, so the output can be redirected (rich would expand tabs).
                out.file.write(f.text)
        return
    try:
        for machine, files in rendered.items():
            for f in files:
                write_rendered(out_dir / machine, f)
    except OSError as exc:
        fail(f"cannot write under {out_dir}: {exc.strerror} ({exc.filename})",
             "pass --out a directory you can write to")
    err.print(f"wrote {plural(sum(map(len, rendered.values())), 'file')} for "
              f"{plural(len(rendered), 'machine')} "
              f"under {out_dir}/", markup=False)


def write_rendered(root: Path, f: RenderedFile) -> None:
    """Write one file under root, mirroring its path on the machine, mode set before content."""
    target = root / f.path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, f.mode)
    os.fchmod(fd, f.mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f.text)
    os.replace(tmp, target)
