"""`wgbgp keygen` and `wgbgp pubkey`: keys made where they are used, never printed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from ..apply import KeygenError, remote_keygen
from ..compile.plan import KEY_DIR
from ..model import Topology, TopologyError, parse
from ..model.edit import EditError, set_public_key
from ..model.keys import InvalidKey, generate_private_key, public_key
from ..model.schema import NAME_RE
from ..transport import CommandFailed, SshOptions, ssh_executor, with_topology_defaults
from .common import fail, read_topology


def write_private_key(path: Path, key: str) -> None:
    """Create the key file 0600 from the start: it is never readable by others, even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")


def keygen(
    node: str = typer.Argument(..., help="Machine the key is for (its name in the topology)."),
    directory: Path = typer.Option(Path(KEY_DIR), "--dir", help="Where to keep the key files."),
    force: bool = typer.Option(False, "--force", help="Replace an existing key pair."),
    ssh: str | None = typer.Option(None, "--ssh", help="Make it on that machine "
                                   "([user@]host[:port]); only the public key comes back."),
    known_hosts: Path | None = typer.Option(None, "--known-hosts", help="known_hosts file."),
    identity: Path | None = typer.Option(None, "--identity", "-i", help="SSH private key."),
    netns: Path | None = typer.Option(None, "--ssh-netns", help="Connect from this netns."),
    fetch: bool = typer.Option(False, "--fetch", help="With --ssh: only read the public key "
                               "of the key already there (made by cloud-init); never make one."),
    into: Path | None = typer.Option(None, "--into", metavar="TOPOLOGY", help="Also write "
                                     "the public key as NODE's public_key in TOPOLOGY."),
) -> None:
    """Make a WireGuard key pair for NODE; keep the private key (0600), print the public key."""
    if not NAME_RE.match(node):
        # The name becomes a file name: no '/', '..' or other surprises.
        fail(f"{node!r} is not a machine name", "use its name in the topology: lowercase "
             "letters, digits and '-', starting with a letter")
    if fetch and (ssh is None or force):
        fail("--fetch reads the key on a machine reached by --ssh, and never replaces it",
             "pass --ssh [user@]host, without --force")
    options = SshOptions(known_hosts, identity, netns)
    if into is not None:
        # The topology's `ssh:` section (identity, known_hosts, netns) applies here too.
        options = with_topology_defaults(options, _check_into(into, node))
    if ssh is not None:
        pub = _remote_keygen(node, ssh, str(directory), force, options, fetch=fetch)
        typer.echo(pub)
        if into is not None:
            _write_into(into, node, pub)
        return
    key_path = directory / f"{node}.key"
    if key_path.exists() and not force:
        fail(f"{key_path} already exists",
             "its public key: `wgbgp pubkey < " + str(key_path) + "`; --force replaces the pair")
    private = generate_private_key()
    pub = public_key(private)
    try:
        if force and key_path.exists():
            key_path.unlink()
        write_private_key(key_path, private)
        (directory / f"{node}.pub").write_text(pub + "\n")
    except OSError as exc:
        fail(f"cannot write {key_path}: {exc.strerror}", "run as root or pass --dir")
    typer.echo(pub)
    if into is not None:
        _write_into(into, node, pub)
        return
    print(f"private key kept in {key_path} (0600); paste the public key above into the "
          f"topology as {node}'s public_key", file=sys.stderr)


def _check_into(topology: Path, node: str) -> Topology:
    """Before any key is made: TOPOLOGY is readable and has NODE."""
    topo, _ = read_topology(topology)
    if node not in topo.machines:
        fail(f"{node} is not a machine of {topology}", f"machines: {', '.join(topo.machines)}")
    return topo


def _write_into(topology: Path, node: str, key: str) -> None:
    """NODE's public_key line in TOPOLOGY set to `key`, every other byte kept."""
    topo, _ = read_topology(topology)
    section = "hubs" if node in topo.hubs else "nodes"
    try:
        text = set_public_key(topology.read_text(encoding="utf-8"), section, node, key)
        parse(text, str(topology))
        tmp = topology.with_name(topology.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, topology)
    except (EditError, TopologyError, OSError) as exc:
        fail(f"cannot write {node}'s public key into {topology}: {exc}",
             f"paste it by hand as {section}.{node}.public_key")
    print(f"{section}.{node}.public_key in {topology} set to it", file=sys.stderr)


def _remote_keygen(node: str, target: str, directory: str, force: bool,
                   options: SshOptions, fetch: bool = False) -> str:
    """The key pair is made on the remote machine (umask 077); its private key stays there."""
    try:
        x = ssh_executor(node, target, options)
    except ValueError as exc:
        fail(str(exc), "write the target as [user@]host[:port]")
    try:
        key = remote_keygen(x, node, directory=directory, rotate=force, fetch=fetch)
    except (KeygenError, CommandFailed) as exc:
        fail(str(exc), "a hub made by cloud-init has its key once first boot is done (its "
             "console shows `wgbgp: hub ... public key`); try again then" if fetch else "")
    finally:
        x.close()
    state = "made" if key.created else "kept (it existed; --force replaces it)"
    print(f"private key {state} in {key.key_file} on {target}", file=sys.stderr)
    return key.public_key


def pubkey() -> None:
    """Read a private key on stdin and print its public key (like `wg pubkey`)."""
    try:
        typer.echo(public_key(sys.stdin.buffer.read().decode("ascii")))
    except UnicodeDecodeError:
        fail("stdin is not a WireGuard private key: not base64 text",
             "pipe the key file in: wgbgp pubkey < KEY")
    except InvalidKey as exc:
        # Never echo the input: it is meant to be a secret.
        fail(f"stdin is not a WireGuard private key: {exc}",
             "pipe the key file in: wgbgp pubkey < KEY")
