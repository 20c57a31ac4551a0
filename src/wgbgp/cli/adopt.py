"""`wgbgp adopt`: the topology entries describing a hand-made WireGuard + FRR/BIRD setup
on this machine; `--into TOPOLOGY` merges them. The private key stays on the machine and
is never printed."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import typer

from ..compile.plan import KEY_DIR
from ..model import TopologyError, parse
from ..model.adopt import AdoptError, Adoption, adopt, merge, standalone_text
from ..model.handmade import BgpConf, WgQuick, parse_bird, parse_frr, parse_wg_quick
from ..model.keys import InvalidKey, public_key
from .common import emit_json, err, fail, out, read_topology
from .keys import write_private_key


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}",
             "run adopt as root on the machine itself")


def _wg_config(wg_dir: Path, interface: str | None) -> WgQuick:
    """The wg-quick config whose [Peer] dials a hub (or the one named)."""
    names = [interface] if interface else sorted(p.stem for p in wg_dir.glob("*.conf"))
    found = []
    for name in names:
        text = _read(wg_dir / f"{name}.conf")
        if text is None:
            continue
        try:
            conf = parse_wg_quick(name, text)
        except ValueError as exc:
            fail(f"{wg_dir / (name + '.conf')} cannot be read: {exc}",
                 "check it with `wg-quick strip " + name + "`")
        if any(p.endpoint for p in conf.peers):
            found.append(conf)
    if not found:
        fail(f"no wg-quick config in {wg_dir} dials a hub ([Peer] with an Endpoint)",
             "pass --wg-dir DIR or --interface NAME")
    if len(found) > 1:
        fail(f"several wg-quick configs dial a hub: {', '.join(c.interface for c in found)}",
             "say which with --interface NAME (adopt one hub's tunnel at a time)")
    return found[0]


def _private_key(conf: WgQuick, wg_dir: Path) -> str:
    """The machine's private key, from the config or the file its PostUp names."""
    text = conf.private_key
    if text is None and conf.private_key_file:
        text = _read(Path(conf.private_key_file))
    if not text:
        fail(f"{wg_dir / (conf.interface + '.conf')} has no PrivateKey and names no key file",
             "adopt needs the machine's own key (it stays here, never printed)")
    return text.strip()


def _bgp(frr: Path, bird: Path) -> tuple[BgpConf | None, str]:
    frr_text, bird_text = _read(frr), _read(bird)
    if frr_text and "router bgp" in frr_text:
        return parse_frr(frr_text), str(frr)
    if bird_text and "protocol bgp" in bird_text:
        return parse_bird(bird_text), str(bird)
    return None, ""


def _keep_key(private: str, name: str, key_dir: Path) -> Path:
    """Put the machine's key where wgbgp's configs read it (0600), the same key: the
    hub and peers see no change. Refuses to replace a different key there."""
    path = key_dir / f"{name}.key"
    existing = _read(path)
    if existing is not None:
        try:
            same = public_key(existing) == public_key(private)
        except InvalidKey:
            same = False
        if not same:
            fail(f"{path} holds another key", "move it away, or adopt under another --name")
        return path
    try:
        write_private_key(path, private)
        (key_dir / f"{name}.pub").write_text(public_key(private) + "\n")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}", "run adopt as root, or pass --key-dir")
    return path


def _default_name() -> str:
    import re
    name = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().split(".")[0].lower()).strip("-")
    return name if name[:1].isalpha() else "node"


def _report(a: Adoption, key_path: Path, topology: str) -> None:
    err.print(f"{a.node_name}: {a.interface} and its BGP daemon read; the private key stays "
              f"on this machine, in {key_path} (0600) for wgbgp's configs", markup=False)
    if a.unmapped:
        err.print("not mapped (review these by hand):", markup=False)
        for line in a.unmapped:
            err.print(f"  - {line}", markup=False)
    if a.changes:
        err.print("what changes when wgbgp takes over:", markup=False)
        for line in a.changes:
            err.print(f"  - {line}", markup=False)
    err.print(f"next, on {a.node_name}: `wg-quick down {a.interface}` (and `systemctl "
              f"disable wg-quick@{a.interface}`), then `wgbgp apply {topology} --node "
              f"{a.node_name} --local`", markup=False)


def adopt_command(
    name: str | None = typer.Option(None, "--name", help="This machine's name in the "
                                    "topology (default: its hostname)."),
    into: Path | None = typer.Option(None, "--into", metavar="TOPOLOGY",
                                     help="Merge the entries into this topology file."),
    wg_dir: Path = typer.Option(Path("/etc/wireguard"), "--wg-dir", help="wg-quick configs."),
    interface: str | None = typer.Option(None, "--interface", help="The wg-quick config "
                                         "to adopt (default: the one dialling a hub)."),
    frr: Path = typer.Option(Path("/etc/frr/frr.conf"), "--frr", help="FRR's config."),
    bird: Path = typer.Option(Path("/etc/bird/bird.conf"), "--bird", help="BIRD's config."),
    network: str = typer.Option("adopted", "--network", help="The network's name (new "
                                "topology only)."),
    hub: str | None = typer.Option(None, "--hub", help="The hub's name (default: the "
                                   "comment on its [Peer], else 'hub')."),
    key_dir: Path = typer.Option(Path(KEY_DIR), "--key-dir", help="Where wgbgp's configs "
                                 "read the key (it is copied there, 0600, if absent)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Describe this machine's hand-made WireGuard + FRR/BIRD setup as topology entries
    (printed, or merged --into TOPOLOGY), with what could not be mapped and what changes
    when wgbgp takes over. The private key stays here and is never printed."""
    node = name or _default_name()
    conf = _wg_config(wg_dir, interface)
    private = _private_key(conf, wg_dir)
    try:
        pub = public_key(private)
    except InvalidKey as exc:
        fail(f"the private key of {conf.interface} is not a WireGuard key: {exc}")
    bgp, bgp_source = _bgp(frr, bird)
    try:
        a = adopt(node, conf, bgp, pub, network=network, hub_name=hub)
    except AdoptError as exc:
        fail(str(exc), exc.fix)
    source = f"{wg_dir / (conf.interface + '.conf')}" + (f" and {bgp_source}" if bgp_source
                                                          else "")
    if into is None:
        text = standalone_text(a, source)
        try:
            parse(text, "<adopted>")
        except TopologyError as exc:
            for issue in exc.issues:
                err.print(issue.format(), markup=False)
            err.print("warning: these entries need the edits above before they are a valid "
                      "topology", markup=False)
        key_path = _keep_key(private, node, key_dir)
        if as_json:
            emit_json({"ok": True, "topology": text, "unmapped": a.unmapped,
                       "changes": a.changes})
        else:
            out.file.write(text)
        _report(a, key_path, "TOPOLOGY")
        return
    topo, _ = read_topology(into)
    try:
        merged, notes = merge(into.read_text(encoding="utf-8"), topo, a)
        parse(merged, str(into))
    except AdoptError as exc:
        fail(str(exc), exc.fix)
    except TopologyError as exc:
        for issue in exc.issues:
            err.print(issue.format(), markup=False)
        fail(f"{into} with these entries would not be valid, so it is unchanged",
             "print the entries without --into, and merge them by hand")
    key_path = _keep_key(private, node, key_dir)
    tmp = into.with_name(into.name + ".tmp")
    try:
        tmp.write_text(merged, encoding="utf-8")
        os.replace(tmp, into)
    except OSError as exc:
        fail(f"cannot write {into}: {exc.strerror}")
    read_topology(into)  # the lock records the new machines' numbers
    for note in notes:
        err.print(f"note: {note}", markup=False)
    if as_json:
        emit_json({"ok": True, "topology": str(into), "unmapped": a.unmapped,
                   "changes": a.changes, "notes": notes})
    else:
        out.print(f"merged {a.node_name} into {into}", markup=False)
    _report(a, key_path, str(into))
