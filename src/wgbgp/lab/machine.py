"""Lab machines: a network namespace plus a persistent mount and UTS namespace.

Inside a machine the real-host paths work unchanged: `/etc/wireguard`, `/etc/frr`,
`/etc/bird`, `/run/frr`, `/run/bird`, `/run/wireguard`, ... are private to it (bind mounts
of per-machine directories under the lab's state dir, so they are inspectable from the host), plain
`wg`, `vtysh` and `/usr/lib/frr/frrinit.sh` reach this machine's own daemons, and the
hostname is the machine's name. Apply and observe code runs unchanged through
`Machine.executor()`.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, overload

from wgbgp.apply.changes import FRR_DAEMONS
from wgbgp.lab.state import LAB_ROOT, NETNS_DIR, LabState, lab_dir, namespace_pids, ns_inodes
from wgbgp.lab.underlay import netns_name
from wgbgp.transport import LocalExecutor

# Private directories: path inside the machine -> (owner, mode). `/run` must stay last:
# binding it hides the lab's state dir, where the sources of the other binds live.
PRIVATE_DIRS: dict[str, tuple[str, int]] = {
    "/etc/wireguard": ("root", 0o700),
    "/etc/frr": ("frr", 0o750),
    "/var/log/frr": ("frr", 0o750),
    "/etc/bird": ("bird", 0o750),  # BIRD nodes (daemon: bird); its socket is in /run/bird
    "/etc/wgbgp": ("root", 0o755),
    "/var/lib/wgbgp": ("root", 0o755),
    "/etc/sysctl.d": ("root", 0o755),
    "/etc/nftables.d": ("root", 0o755),
    "/run": ("root", 0o755),  # a fresh /run, like a booted host: /run/frr, /run/wireguard
}
RUN_DIRS: dict[str, tuple[str, int]] = {  # created inside the machine's /run
    "frr": ("frr", 0o755), "wireguard": ("root", 0o755), "lock": ("root", 0o755),
    "bird": ("bird", 0o755),
}
FRR_DAEMONS_ON = ("zebra", "bgpd", "staticd", "bfdd")
# wg-quick falls back to wireguard-go only with this set; harmless where the kernel
# module exists (wg-quick tries the module first).
# Where a spawned process's output goes: a file, subprocess.PIPE/DEVNULL/STDOUT, or inherited.
Stream = int | IO[str] | IO[bytes] | None
MACHINE_ENV = {"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"}


class MachineError(RuntimeError):
    """A machine could not be created."""


@dataclass(frozen=True)
class Machine:
    """One lab machine (hub or client), addressed by lab and machine name."""

    lab: str
    name: str

    @property
    def netns(self) -> str:
        return netns_name(self.lab, self.name)

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    @property
    def root(self) -> Path:
        """Host directory holding this machine's private directories."""
        return lab_dir(self.lab) / "machines" / self.name

    @property
    def mnt_file(self) -> Path:
        return lab_dir(self.lab) / "ns" / f"{self.name}.mnt"

    @property
    def uts_file(self) -> Path:
        return lab_dir(self.lab) / "ns" / f"{self.name}.uts"

    def host_path(self, inside: str) -> Path:
        """Where a path inside the machine (under a private dir) lives on the host."""
        if inside.startswith("/var/run/"):  # a symlink to /run on Debian
            inside = inside[len("/var"):]
        for private in sorted(PRIVATE_DIRS, key=len, reverse=True):
            if inside == private or inside.startswith(private.rstrip("/") + "/"):
                return self.root / _dirname(private) / inside[len(private):].lstrip("/")
        raise ValueError(f"{inside} is not inside one of the machine's private directories")

    def prefix(self) -> list[str]:
        """Command prefix that runs a command inside this machine."""
        return ["nsenter", f"--mount={self.mnt_file}", f"--uts={self.uts_file}",
                f"--net={self.netns_path}", "--"]

    def executor(self) -> LocalExecutor:
        """An executor for apply/observe code; runs every command inside the machine."""
        return LocalExecutor(self.name, prefix=self.prefix(), env=dict(MACHINE_ENV))

    def exec(self, argv: list[str]) -> int:
        """Run a command interactively inside the machine (stdio inherited); its exit code.

        Like a shell, wgbgp ignores Ctrl-C while the command runs: the terminal delivers
        it to the command, which decides (an interactive shell or vtysh survives it).
        """
        env = {**os.environ, **MACHINE_ENV}
        proc = subprocess.Popen([*self.prefix(), *argv], env=env, cwd="/")
        # Ignore only after the child exists: an ignored SIGINT would be inherited.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            code = proc.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
        return 128 - code if code < 0 else code  # killed by signal N -> 128+N, as shells do

    @overload
    def spawn(self, argv: list[str], *, stdout: Stream = None, stderr: Stream = None,
              text: Literal[True]) -> subprocess.Popen[str]: ...

    @overload
    def spawn(self, argv: list[str], *, stdout: Stream = None, stderr: Stream = None,
              text: Literal[False] = False) -> subprocess.Popen[bytes]: ...

    def spawn(self, argv: list[str], *, stdout: Stream = None, stderr: Stream = None,
              text: bool = False) -> subprocess.Popen[str] | subprocess.Popen[bytes]:
        """Start a background process inside the machine; its pid goes into the lab state.

        Teardown kills it with everything else in the machine's namespaces.
        """
        env = {**os.environ, **MACHINE_ENV}
        proc = subprocess.Popen([*self.prefix(), *argv], env=env, cwd="/", stdout=stdout,
                                stderr=stderr, text=text)
        state = LabState.load(self.lab)
        if state is not None:
            state.record(pids=[{"pid": proc.pid, "machine": self.name, "argv": argv}])
        return proc

    def pids(self) -> list[int]:
        """Every process running in this machine (its network or mount namespace)."""
        return namespace_pids(ns_inodes([self.netns_path, self.mnt_file]))

    def exists(self) -> bool:
        return self.netns_path.exists() and self.mnt_file.exists()


def _dirname(inside: str) -> str:
    """Per-machine directory name for a private path: /etc/frr -> etc-frr."""
    return inside.strip("/").replace("/", "-")


def create_machines(lab: str, names: list[str], state: LabState, workers: int = 4) -> list[Machine]:
    """Give each machine (whose network namespace exists) its mount/UTS namespace and dirs."""
    machines = [Machine(lab, n) for n in names]
    nsdir = lab_dir(lab) / "ns"
    nsdir.mkdir(exist_ok=True)
    # `unshare --mount=FILE` needs FILE on a private mount; otherwise the namespace handle
    # would propagate into other mount namespaces and keep each other alive.
    state.record(mounts=[str(nsdir)], ns_files=[str(p) for m in machines
                                                for p in (m.mnt_file, m.uts_file)])
    if not _is_mountpoint(nsdir):
        _check(["mount", "--bind", str(nsdir), str(nsdir)])
    _check(["mount", "--make-private", str(nsdir)])
    for inside in PRIVATE_DIRS:
        # Bind targets must exist in the host's tree (machines start as a copy of it).
        # Created only when missing, and never removed: rmdir of a mount point would
        # detach it in every running machine of every lab.
        Path(inside).mkdir(parents=True, exist_ok=True)
    for m in machines:
        _prepare_dirs(m)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_unshare, machines))
    return machines


def _chown(path: Path, owner: str, mode: int) -> None:
    try:
        uid, gid = pwd.getpwnam(owner).pw_uid, grp.getgrnam(owner).gr_gid
    except KeyError:  # no frr user: FRR is not installed; root-owned dirs still work
        uid, gid = 0, 0
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def _prepare_dirs(m: Machine) -> None:
    for inside, (owner, mode) in PRIVATE_DIRS.items():
        d = m.root / _dirname(inside)
        d.mkdir(parents=True, exist_ok=True)
        _chown(d, owner, mode)
    for sub, (owner, mode) in RUN_DIRS.items():
        d = m.root / "run" / sub
        d.mkdir(exist_ok=True)
        _chown(d, owner, mode)
    _seed_frr(m.root / "etc-frr")


# Debian 12's pristine /etc/frr/frr.conf and vtysh.conf (the host's may be customised).
FRR_DEFAULT_CONF = "# default to using syslog. /etc/rsyslog.d/45-frr.conf places the log in\n" \
    "# /var/log/frr/frr.log\nlog syslog informational\n"
VTYSH_CONF = "service integrated-vtysh-config\n"


def _seed_frr(etc_frr: Path) -> None:
    """What a fresh Debian install puts in /etc/frr, with the daemons wgbgp uses enabled."""
    files = {"frr.conf": FRR_DEFAULT_CONF, "vtysh.conf": VTYSH_CONF}
    daemons = Path(FRR_DAEMONS)
    if daemons.exists():  # the daemon options come from the installed package
        text = daemons.read_text()
        for daemon in FRR_DAEMONS_ON:
            text = re.sub(rf"(?m)^{daemon}=\w+", f"{daemon}=yes", text)
        files["daemons"] = text
    for name, text in files.items():
        dst = etc_frr / name
        dst.write_text(text)
        _chown(dst, "frr", 0o640)


def setup_script(m: Machine) -> str:
    """Shell run as the machine's first process, inside its new namespaces."""
    lines = [
        "set -e",
        # The new mount namespace copied every namespace handle of the host (other
        # machines, /run/netns). Drop them, or this machine would keep other labs'
        # namespaces alive after they are deleted.
        # Whole directories of handles go in one call each (every unmount costs an RCU
        # grace period); then any stray handle. Entries may vanish meanwhile when another
        # lab builds or tears down: ignore errors, then insist none is left.
        f"umount -l {NETNS_DIR} {LAB_ROOT}/*/ns 2>/dev/null || true",
        "drop() { findmnt -rn -t nsfs -o TARGET | xargs -r umount -l 2>/dev/null || true; }",
        "drop; if findmnt -rn -t nsfs >/dev/null; then drop; fi",
        "if findmnt -rn -t nsfs >/dev/null; then echo 'namespace handles remain' >&2; exit 1; fi",
        f"hostname {m.name}",
        # sysfs shows the network devices of the namespace that mounts it.
        "mount -t sysfs -o nosuid,nodev,noexec sysfs /sys",
    ]
    for inside in PRIVATE_DIRS:
        lines.append(f"mount --bind {m.root / _dirname(inside)} {inside}")
    return "\n".join(lines) + "\n"


def _unshare(m: Machine) -> None:
    for f in (m.mnt_file, m.uts_file):
        f.touch()
    # unshare pins the new namespaces on the files, then nsenter joins the network
    # namespace before the setup script mounts sysfs.
    _check(["unshare", f"--mount={m.mnt_file}", f"--uts={m.uts_file}",
            "--propagation", "private",
            "nsenter", f"--net={m.netns_path}", "sh", "-c", setup_script(m)], m.name)


def _is_mountpoint(path: Path) -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        return any(line.split()[4] == str(path) for line in fh)


def _check(argv: list[str], what: str = "") -> None:
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        where = f" for machine {what}" if what else ""
        raise MachineError(f"`{' '.join(argv[:2])} ...`{where} failed: "
                           f"{(res.stderr or res.stdout).strip()}")
