"""`wgbgp join` (on the joining machine) and `wgbgp node add` (on the topology owner's):
a friend joins without anyone editing YAML by hand, and no secret travels."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from ..apply.lockfile import read_lock
from ..compile.plan import KEY_DIR
from ..model import Topology, TopologyError, allocate, parse
from ..model.addressing import allocate6
from ..model.edit import EditError, add_machine
from ..model.join import (
    JoinRequest,
    JoinRequestError,
    decode,
    encode,
    fingerprint,
    validate,
)
from ..model.keys import InvalidKey, generate_private_key, public_key
from .common import HELP_MARKUP, emit_json, err, fail, out, read_topology
from .keys import write_private_key

app = typer.Typer(help="Add machines to a topology.", no_args_is_help=True,
                  rich_markup_mode=HELP_MARKUP)


def _own_key(name: str, directory: Path) -> tuple[str, bool]:
    """(public key of NAME's key pair in `directory`, whether it was made now). An
    existing key is kept: running `join` again prints the same request."""
    key_path = directory / f"{name}.key"
    if key_path.exists():
        try:
            return public_key(key_path.read_text(encoding="ascii")), False
        except (OSError, UnicodeDecodeError, InvalidKey) as exc:
            fail(f"{key_path} exists but is not a readable WireGuard private key "
                 f"({getattr(exc, 'strerror', None) or exc})",
                 "check its permissions, or move it away and run join again")
    private = generate_private_key()
    pub = public_key(private)
    try:
        write_private_key(key_path, private)
        (directory / f"{name}.pub").write_text(pub + "\n")
    except OSError as exc:
        fail(f"cannot write {key_path}: {exc.strerror}", "run as root or pass --dir")
    return pub, True


def join(
    name: str = typer.Option(..., "--name", help="This machine's name in the topology."),
    asn: int = typer.Option(..., "--asn", help="This machine's private ASN."),
    announce: list[str] = typer.Option(..., "--announce",
                                       help="A prefix this machine announces (repeatable)."),
    directory: Path = typer.Option(Path(KEY_DIR), "--dir", help="Where to keep the key files."),
    daemon: str = typer.Option("frr", "--daemon", help="BGP daemon here: frr or bird."),
    ssh: str | None = typer.Option(None, "--ssh", help="How the owner's wgbgp reaches this "
                                   "machine ([user@]host[:port]), if it should."),
) -> None:
    """Make this machine's key pair here (the private key stays, 0600) and print a one-line
    join request (public key and declaration) for the topology's owner, who runs
    `wgbgp node add TOPOLOGY REQUEST`."""
    draft = {"name": name, "asn": asn, "announce": announce, "public_key": "A" * 43 + "=",
             "daemon": daemon, **({"ssh": ssh} if ssh else {})}
    try:
        validate(draft)  # before a key is made: a refused request leaves nothing behind
    except JoinRequestError as exc:
        fail(str(exc), "fix the option: --name, --asn, --announce, --daemon or --ssh")
    pub, made = _own_key(name, directory)
    request = JoinRequest(name, asn, validate(draft).announce, pub, daemon, ssh)
    typer.echo(encode(request))
    print(f"private key {'made' if made else 'kept (it existed)'} in "
          f"{directory / (name + '.key')} (0600); it never leaves this machine.\n"
          f"Send the line above to the topology's owner, and read them this fingerprint "
          f"to compare: {fingerprint(pub)}", file=sys.stderr)


def _collisions(topo: Topology, req: JoinRequest) -> list[tuple[str, str]]:
    """(what collides, how to fix it) for each way the request clashes with the topology."""
    found = []
    if req.name in topo.hubs or req.name in topo.nodes:
        found.append((f"a machine named {req.name!r} is already in the topology",
                      "ask the friend to join under another --name (or remove the old "
                      "entry first if it is theirs)"))
    for section, machines in (("hubs", topo.hubs), ("nodes", topo.nodes)):
        for other, m in machines.items():
            if m.public_key == req.public_key:
                found.append((f"the request's public key is already {section}.{other}'s",
                              "every machine needs its own key: the friend runs `wgbgp join` "
                              "with a fresh --dir (or `wgbgp keygen NAME --force`)"))
    for other, node in topo.nodes.items():
        if node.asn == req.asn and other != req.name:
            found.append((f"ASN {req.asn} is already {other}'s (eBGP would drop their routes)",
                          "ask the friend for a request with another --asn"))
        for prefix in req.announce if other != req.name else ():
            for theirs in node.announce:
                if prefix.version == theirs.version and prefix.overlaps(theirs):
                    found.append((f"{prefix} overlaps {theirs}, announced by {other}",
                                  "each address range belongs to one node: the friend "
                                  "announces a prefix of their own"))
    for hub_name, hub in topo.hubs.items():
        if hub.asn == req.asn:
            found.append((f"ASN {req.asn} is hub {hub_name}'s",
                          "ask the friend for a request with another --asn"))
    return found


def _parse_text(text: str, path: Path, topology: Path) -> Topology:
    lock, _ = read_lock(topology)
    try:
        return parse(text, str(path), recorded=lock.numbers if lock else None)[0]
    except TopologyError as exc:
        for issue in exc.issues:
            err.print(issue.format(), markup=False)
        fail(f"the topology with this node would not be valid, so {topology} is unchanged",
             "fix the problems above (in the request or the topology), then add it again")


@app.command("add")
def add(
    topology: Path = typer.Argument(..., help="Topology file: the node is added to it."),
    request: str = typer.Argument(..., help="The line `wgbgp join` printed (quote it)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Check a join request and add its node to TOPOLOGY, comments and layout kept, with a
    tunnel address allocated and pinned; no other machine's address moves."""
    try:
        req = decode(request)
    except JoinRequestError as exc:
        fail(f"the join request is not usable: {exc}", exc.fix)
    topo, _ = read_topology(topology)  # valid before, and its lock up to date
    clashes = _collisions(topo, req)
    if clashes:
        for message, _fix in clashes[1:]:
            err.print(f"  also: {message}", markup=False)
        fail(f"refused: {clashes[0][0]}", clashes[0][1], machine=req.name)
    text = topology.read_text(encoding="utf-8")
    fields = req.node_fields()
    try:
        draft = add_machine(text, "nodes", req.name, fields)
    except EditError as exc:
        fail(f"cannot add {req.name} to {topology}: {exc}",
             "give the file a block-style 'nodes:' section")
    # The address this node gets, given every recorded one: then pinned in the file, so
    # that the lock and the file agree and no later edit moves it.
    new = _parse_text(draft, topology, topology)
    pins: dict[str, object] = {}
    if req.name in allocate(new):
        pins["address"] = str(allocate(new)[req.name])
    if req.name in allocate6(new):
        pins["address6"] = str(allocate6(new)[req.name])
    fields = {"asn": req.asn, **pins, **{k: v for k, v in fields.items() if k != "asn"}}
    final = add_machine(text, "nodes", req.name, fields)
    checked = _parse_text(final, topology, topology)
    before = {m: allocate(topo).get(m) for m in (*topo.hubs, *topo.nodes)}
    moved = [m for m, a in before.items() if allocate(checked).get(m) != a]
    if moved:  # the allocation promises this; never write a file that breaks it
        fail(f"adding {req.name} would move {', '.join(moved)}", "report this as a bug")
    tmp = topology.with_name(topology.name + ".tmp")
    try:
        tmp.write_text(final, encoding="utf-8")
        os.chmod(tmp, topology.stat().st_mode & 0o777)
        os.replace(tmp, topology)
    except OSError as exc:
        fail(f"cannot write {topology}: {exc.strerror}", "check its permissions")
    read_topology(topology)  # records the new node's number in the lock
    if as_json:
        emit_json({"ok": True, "node": req.name, **pins,
                   "fingerprint": fingerprint(req.public_key)})
        return
    where = ", ".join(f"{v}" for v in pins.values())
    out.print(f"added node {req.name} (AS{req.asn}, {where}) to {topology}", markup=False)
    out.print(f"  its key's fingerprint is {fingerprint(req.public_key)}: compare it with "
              f"{req.name} over another channel before applying", markup=False)
    if topo.peerings is not None:
        out.print(f"  note: this topology lists its peerings: add pairs with {req.name} "
                  "under 'peerings:' for it to have sessions", markup=False)
    out.print(f"  next: `wgbgp apply {topology} --all` (hubs and peers learn {req.name}); "
              f"on {req.name}: `wgbgp apply {topology.name} --node {req.name} --local`",
              markup=False)
