"""A throwaway three-machine rig (hub + two clients) for observe's own tests and fixtures.

Not the lab, on purpose: no carrier, no NAT, no sshd, no apply (files are written and
daemons started directly), so a fault in wgbgp.lab or apply cannot hide behind an
observe test; just enough to run real wireguard-go and a real FRR with
the configs wgbgp renders, so collectors can be tested against the real tools and their
outputs captured as fixtures. Each machine is a network namespace plus a private mount
namespace held open by a `sleep` process (private /etc/wireguard, /etc/frr, /run/frr,
/run/wireguard), so the plain host paths and `wg`/`vtysh` work unchanged inside it.

Manual use (root):  python tests/observe/obsrig.py up TAG | down TAG | exec TAG NODE CMD...
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # labwait, run as a script
from labwait import wait_until
from wgbgp.compile import Plan, compile_topology
from wgbgp.model import parse
from wgbgp.model.examples import classic_text
from wgbgp.model.keys import generate_private_key, public_key
from wgbgp.render import render_machine
from wgbgp.transport import CommandFailed, LocalExecutor

ENV = {"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"}
PRIVATE = ("/etc/wireguard", "/etc/frr", "/etc/wgbgp", "/run/frr", "/run/wireguard")
STATE_DIR = Path("/tmp/wgbgp-observe-rig")
HUB_PORT = 51820


def _sh(argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def requirements_missing() -> str | None:
    """Why the rig cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ip", "wg", "wg-quick", "wireguard-go", "vtysh", "nsenter", "unshare", "nft"):
        if _sh(["sh", "-c", f"command -v {tool}"], check=False).returncode != 0:
            return f"{tool} not installed"
    if not Path("/usr/lib/frr/bgpd").exists():
        return "FRR not installed"
    return None


@dataclass
class Node:
    name: str
    netns: str
    holder: int

    def executor(self) -> LocalExecutor:
        return LocalExecutor(self.name, prefix=["nsenter", "-t", str(self.holder), "-m", "-n",
                                                "--"], env=dict(ENV))


def rig_topology(keys: dict[str, str], endpoint: str) -> str:
    """The classic example with the rig's keys and hub endpoint."""
    text = classic_text().replace("203.0.113.10:51820", endpoint)
    for name, priv in keys.items():
        text = re.sub(rf"(?m)^(  {name}:.*\n(?:    .*\n)*?    public_key: )\S+",
                      lambda m, p=priv: m.group(1) + public_key(p), text)
    return text


class Rig:
    """Hub `vps` and clients `laptop`, `friend`, from the classic example."""

    def __init__(self, tag: str) -> None:
        if not re.fullmatch(r"[a-z0-9]{1,8}", tag):
            raise ValueError("tag: 1-8 lowercase letters/digits")
        self.tag = tag
        self.nodes: dict[str, Node] = {}
        self.keys: dict[str, str] = {}
        self.plans: dict[str, Plan] = {}
        self.topology_text = ""

    @property
    def state_file(self) -> Path:
        return STATE_DIR / f"{self.tag}.json"

    def ns(self, name: str) -> str:
        return f"wgobs-{self.tag}-{name}"

    # -- lifecycle -------------------------------------------------------------------
    def up(self, frr: bool = True) -> Rig:
        STATE_DIR.mkdir(exist_ok=True)
        names = ["vps", "laptop", "friend"]
        self.keys = {n: generate_private_key() for n in names}
        hub_ip = "192.168.201.1"
        self.topology_text = rig_topology(self.keys, f"{hub_ip}:{HUB_PORT}")
        topo, _ = parse(self.topology_text, "rig.yaml")
        self.plans = compile_topology(topo)
        self._save()
        try:
            for n in names:
                _sh(["ip", "netns", "add", self.ns(n)])
                self._save(extra_ns=n)
            for i, client in enumerate(names[1:], start=1):
                hub_if, sub = f"c{i}", f"192.168.{200 + i}"
                _sh(["ip", "link", "add", hub_if, "netns", self.ns("vps"), "type", "veth",
                     "peer", "name", "eth0", "netns", self.ns(client)])
                self._ip("vps", "addr", "add", f"{sub}.1/24", "dev", hub_if)
                self._ip("vps", "link", "set", hub_if, "up")
                self._ip(client, "addr", "add", f"{sub}.2/24", "dev", "eth0")
                self._ip(client, "link", "set", "eth0", "up")
                self._ip(client, "route", "add", "default", "via", f"{sub}.1")
            for n in names:
                self._ip(n, "link", "set", "lo", "up")
                self.nodes[n] = Node(n, self.ns(n), self._holder(n))
                self._save()
            for n in names:
                self._configure(n, frr=frr)
        except BaseException:
            self.down()
            raise
        return self

    def _ip(self, node: str, *args: str) -> None:
        _sh(["ip", "-n", self.ns(node), *args])

    def _holder(self, node: str) -> int:
        script = "; ".join([
            "set -e",
            # Drop the copies of other namespaces' handles, or we would keep them alive.
            "findmnt -rn -t nsfs -o TARGET | xargs -r umount -l",
            *(f"mkdir -p {d} && mount -t tmpfs -o mode=755 tmpfs {d}" for d in PRIVATE),
            "chown frr:frr /etc/frr /run/frr",
            "chmod 750 /etc/frr",
            "echo ready",
            "exec sleep infinity",
        ])
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(node), "unshare", "--mount", "--propagation",
             "private", "sh", "-c", script],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        line = proc.stdout.readline() if proc.stdout else ""
        if line.strip() != "ready":
            why = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"holder for {node} failed: {why}")
        return proc.pid

    def _configure(self, name: str, frr: bool) -> None:
        ex = self.nodes[name].executor()
        plan = self.plans[name]
        for f in render_machine(plan, self.keys[name]):
            if f.kind == "sysctl":
                continue
            ex.write_file(f.path, f.text, f.mode)
        ex.run(["sysctl", "-qw", f"net.ipv4.ip_forward={1 if plan.ip_forward else 0}"])
        if plan.role == "hub":
            ex.run(["nft", "-f", "/etc/wgbgp/nftables.nft"])
        for t in plan.tunnels:
            ex.run(["wg-quick", "up", t.interface])
        if plan.bgp:
            for prefix in plan.bgp.originate:
                ex.run(["ip", "addr", "add", str(prefix), "dev", "lo"])
            if frr:
                self.start_frr(name)

    def start_frr(self, name: str) -> None:
        ex = self.nodes[name].executor()
        ex.run(["chown", "frr:frr", "/etc/frr/frr.conf"])
        for daemon in ("zebra", "staticd", "bgpd"):
            ex.run([f"/usr/lib/frr/{daemon}", "-d", "-A", "127.0.0.1", "-f", "/etc/frr/frr.conf"])

    def stop_frr(self, name: str) -> None:
        ex = self.nodes[name].executor()
        for daemon in ("bgpd", "staticd", "zebra"):
            pid = ex.read_file(f"/run/frr/{daemon}.pid")
            if pid and pid.strip().isdigit():
                _kill(int(pid.strip()))
        time.sleep(0.5)

    def vtysh(self, name: str, *commands: str) -> str:
        argv = ["vtysh"]
        for c in commands:
            argv += ["-c", c]
        return self.nodes[name].executor().run(argv).stdout

    def executors(self) -> dict[str, LocalExecutor]:
        return {n: node.executor() for n, node in self.nodes.items()}

    def established(self) -> bool:
        """Every session Established, and the neighbour's prefixes received."""
        try:
            states = [json.loads(self.vtysh(n, "show bgp summary json"))
                      for n in ("laptop", "friend")]
            return all(p.get("state") == "Established" and bool(p.get("pfxRcd"))
                       for s in states for p in s["ipv4Unicast"]["peers"].values())
        except (CommandFailed, KeyError, json.JSONDecodeError):  # not up yet
            return False

    def wait_established(self, timeout: float = 30) -> None:
        """AssertionError unless `established` within `timeout` seconds."""
        wait_until("the rig's sessions Established with prefixes", self.established, timeout)

    def down(self) -> None:
        data = self._load()
        namespaces = data.get("namespaces", [])
        holders = data.get("holders", [])
        for ns in namespaces:
            res = _sh(["ip", "netns", "pids", ns], check=False)
            for pid in res.stdout.split():
                _kill(int(pid))
        for pid in holders:
            _kill(pid)
        time.sleep(0.2)
        for ns in namespaces:
            _sh(["ip", "netns", "del", ns], check=False)
        self.state_file.unlink(missing_ok=True)

    # -- state -----------------------------------------------------------------------
    def _save(self, extra_ns: str | None = None) -> None:
        data = self._load()
        namespaces = set(data.get("namespaces", []))
        if extra_ns:
            namespaces.add(self.ns(extra_ns))
        data = {
            "namespaces": sorted(namespaces),
            "holders": sorted({*data.get("holders", []), *(n.holder for n in self.nodes.values())}),
            "nodes": {n: [node.netns, node.holder] for n, node in self.nodes.items()},
            "keys": self.keys,
            "topology": self.topology_text,
        }
        STATE_DIR.mkdir(exist_ok=True)
        self.state_file.write_text(json.dumps(data))
        os.chmod(self.state_file, 0o600)

    def _load(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    @classmethod
    def attach(cls, tag: str) -> Rig:
        rig = cls(tag)
        data = rig._load()
        rig.nodes = {n: Node(n, ns, pid) for n, (ns, pid) in data.get("nodes", {}).items()}
        rig.keys = data.get("keys", {})
        rig.topology_text = data.get("topology", "")
        if rig.topology_text:
            rig.plans = compile_topology(parse(rig.topology_text, "rig.yaml")[0])
        return rig


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


if __name__ == "__main__":
    cmd, tag, *rest = sys.argv[1:]
    if cmd == "up":
        r = Rig(tag).up()
        r.wait_established()
        print("established")
    elif cmd == "down":
        Rig.attach(tag).down()
    elif cmd == "exec":
        node, *argv = rest
        sys.exit(subprocess.call([*Rig.attach(tag).nodes[node].executor().prefix, *argv],
                                 env={**os.environ, **ENV}))
    elif cmd == "topology":
        print(Rig.attach(tag).topology_text)
