"""The lab the hostile-peer tests share (tests/lab/test_hostile.py, test_bird_node.py):
built by `wgbgp lab up` from a topology whose sessions carry MD5 secrets, and a handle
(`Net`) that reads each machine's BGP view. `cli_lab` builds it, yields the handle and
always tears it down."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import TypeVar

from labwait import wait_until
from wgbgp.compile import compile_topology
from wgbgp.lab import Lab, open_lab
from wgbgp.lab.state import lab_dir
from wgbgp.model import parse

FLOOD = 10_000  # prefixes in one flood


def wgbgp(net: Net | None, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "wgbgp", *args], capture_output=True,
                          text=True, timeout=300)
    if net is not None:
        net.transcript.append(f"$ wgbgp {' '.join(args)}\n{proc.stdout}{proc.stderr}")
    if check and proc.returncode != 0:
        raise AssertionError(f"wgbgp {' '.join(args)} -> {proc.returncode}\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class Net:
    name: str
    lab: Lab
    topology_file: Path          # the lab's copy (lab keys, absolute secret paths)
    addr: dict[str, str]         # tunnel address by machine
    secrets: list[str]           # every secret value this lab has used
    transcript: list[str] = field(default_factory=list)

    def x(self, machine: str):
        return self.lab.machines[machine].executor()

    def sh(self, machine: str, script: str, check: bool = True) -> str:
        res = self.x(machine).run(["sh", "-c", script], check=check, timeout=120)
        return res.stdout

    def vtysh(self, machine: str, *commands: str) -> str:
        argv = ["vtysh"]
        for c in commands:
            argv += ["-c", c]
        return self.x(machine).run(argv, timeout=120).stdout

    def conf(self, machine: str, *lines: str) -> None:
        self.vtysh(machine, "conf t", *lines)

    def peers(self, machine: str) -> dict[str, dict]:
        """BGP neighbours by name: state, prefixes received, uptime (ms)."""
        names = {a: n for n, a in self.addr.items()}
        data = json.loads(self.vtysh(machine, "show bgp summary json"))
        return {names[a]: p for a, p in data["ipv4Unicast"]["peers"].items()}

    def states(self, machine: str) -> dict[str, str]:
        return {n: p["state"] for n, p in self.peers(machine).items()}

    def bgp_paths(self, machine: str, prefix: str) -> list[str]:
        """Who `machine` has a BGP path for `prefix` from (empty: none)."""
        names = {a: n for n, a in self.addr.items()}
        data = json.loads(self.vtysh(machine, f"show ip bgp {prefix} json") or "{}")
        return sorted(names.get(p.get("peer", {}).get("peerId"), "self")
                      for p in data.get("paths", []))

    def installed(self, machine: str) -> set[str]:
        data = json.loads(self.vtysh(machine, "show ip route bgp json"))
        return {p for p, routes in data.items() if any(r.get("installed") for r in routes)}

    def wait(self, what: str, check, timeout: float = 30.0) -> None:
        wait_until(what, check, timeout)

    def honest_ok(self) -> None:
        """alice and bob: Established with each other, each other's routes installed."""
        assert self.states("alice")["bob"] == "Established"
        assert self.states("bob")["alice"] == "Established"
        assert "100.100.2.0/24" in self.installed("alice")
        assert {"100.100.1.0/24", "172.16.77.0/24"} <= self.installed("bob")

    def ping(self, machine: str, target: str, source: str | None = None, count: int = 2
             ) -> bool:
        argv = ["ping", "-n", "-q", "-c", str(count), "-W", "1", target]
        if source:
            argv[1:1] = ["-I", source]
        return self.x(machine).run(argv, check=False, timeout=30).ok


N = TypeVar("N", bound=Net)


def secret() -> str:
    """A fresh MD5 password (URL-safe base64)."""
    return base64.b64encode(os.urandom(12)).decode().rstrip("=").replace("/", "_") \
        .replace("+", "-")


def write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")


@contextmanager
def cli_lab(cls: type[N], root: Path, topology: str, name: str, secrets: list[str]
            ) -> Iterator[N]:
    """`wgbgp lab up` of `topology` (written under `root`, beside its secrets/), then the
    handle of class `cls` on the lab's copy of it; `wgbgp lab down` however the test ends."""
    (root / "topology.yaml").write_text(topology)
    placeholder = cls(name, None, root / "lab.yaml", {}, secrets)  # type: ignore[arg-type]
    try:
        # No agent: these tests put faults in place on purpose, and an agent would repair them.
        wgbgp(placeholder, "lab", "up", str(root / "topology.yaml"), "--name", name, "--no-agent")
        lab = open_lab(name)
        assert lab is not None
        shutil.copy(lab_dir(name) / "topology.yaml", root / "lab.yaml")
        plans = compile_topology(parse((root / "lab.yaml").read_text())[0])
        yield cls(name, lab, root / "lab.yaml",
                  {n: str(p.tunnels[0].address.ip) for n, p in plans.items()}, secrets,
                  placeholder.transcript)
    finally:
        wgbgp(None, "lab", "down", "--name", name, check=False)


def flood(net: Net, base: str, verb: str) -> None:
    start = IPv4Network(base).network_address
    batch = "".join(f"route {verb} blackhole {start + i}/32\n" for i in range(FLOOD))
    path = Path(f"/tmp/wgbgp-{net.name}-flood.batch")
    path.write_text(batch)
    try:
        net.x("mallory").run(["ip", "-force", "-batch", str(path)], check=False, timeout=120)
    finally:
        path.unlink()
