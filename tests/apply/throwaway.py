"""Throwaway machines for apply's lab tests: a network namespace plus a persistent private
mount namespace, with an overlay over /etc (writes stay private, Debian's /etc/frr defaults
are visible as on a fresh install) and private /run/frr, /run/wireguard, /var/log/frr.

Stand-in until `wgbgp.lab` provides machines; the executor it hands out is an ordinary
LocalExecutor with an `nsenter` prefix, which is what the lab will provide too.
Everything is torn down by namespace name and pid; nothing outside the state dir changes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from wgbgp.apply.executor import LocalExecutor


def sh(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True, input=input)


@dataclass
class Machine:
    name: str
    netns: str
    mnt: Path
    root: Path
    address: str = ""

    def executor(self) -> LocalExecutor:
        return LocalExecutor(
            self.name,
            prefix=["nsenter", f"--mount={self.mnt}", f"--net=/var/run/netns/{self.netns}", "--"],
        )

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("nsenter", f"--mount={self.mnt}", f"--net=/var/run/netns/{self.netns}", "--",
                  *argv, check=check)

    def pids(self) -> list[int]:
        out = sh("ip", "netns", "pids", self.netns, check=False).stdout.split()
        return [int(p) for p in out]


@dataclass
class Lab:
    """A switch namespace with a bridge, and machines attached to it."""

    root: Path
    tag: str
    machines: dict[str, Machine] = field(default_factory=dict)
    subnet: str = "192.0.2"  # TEST-NET-1, only ever inside these namespaces

    @classmethod
    def create(cls) -> Lab:
        root = Path(tempfile.mkdtemp(prefix="wgbgp-apply-lab-"))
        lab = cls(root, uuid.uuid4().hex[:6])
        (root / "ns").mkdir()
        sh("mount", "--bind", str(root / "ns"), str(root / "ns"))
        sh("mount", "--make-private", str(root / "ns"))
        sh("ip", "netns", "add", lab.switch)
        sh("ip", "-n", lab.switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", lab.switch, "link", "set", "br0", "up")
        return lab

    @property
    def switch(self) -> str:
        return f"wgbgp-ta-{self.tag}-sw"

    def add(self, name: str) -> Machine:
        index = len(self.machines) + 1
        netns = f"wgbgp-ta-{self.tag}-{name}"[:40]
        m = Machine(name, netns, self.root / "ns" / f"{name}.mnt", self.root / name,
                    f"{self.subnet}.{index}")
        self.machines[name] = m
        for d in ("upper", "work", "run-frr", "run-wireguard", "log-frr"):
            (m.root / d).mkdir(parents=True)
        shutil.chown(m.root / "run-frr", "frr", "frr")
        shutil.chown(m.root / "log-frr", "frr", "frr")
        sh("ip", "netns", "add", netns)
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        port = f"p{index}-{self.tag}"[:15]
        sh("ip", "-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", netns)
        sh("ip", "-n", self.switch, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", netns, "address", "add", f"{m.address}/24", "dev", "eth0")
        sh("ip", "-n", netns, "link", "set", "eth0", "up")
        m.mnt.touch()
        mounts = (
            f"mount -t overlay overlay -o lowerdir=/etc,upperdir={m.root}/upper,"
            f"workdir={m.root}/work /etc && "
            f"mount --bind {m.root}/run-frr /run/frr && "
            f"mount --bind {m.root}/run-wireguard /run/wireguard && "
            f"mount --bind {m.root}/log-frr /var/log/frr"
        )
        sh("unshare", f"--mount={m.mnt}", "--propagation", "private", "sh", "-c", mounts)
        return m

    def destroy(self) -> None:
        errors = []
        for m in self.machines.values():
            for pid in m.pids():
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for m in self.machines.values():
            while m.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
            for pid in m.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for m in self.machines.values():
            r = sh("ip", "netns", "del", m.netns, check=False)
            if r.returncode:
                errors.append(r.stderr)
            if m.mnt.exists():
                sh("umount", str(m.mnt), check=False)
        sh("ip", "netns", "del", self.switch, check=False)
        sh("umount", str(self.root / "ns"), check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise RuntimeError("lab teardown: " + "; ".join(errors))
