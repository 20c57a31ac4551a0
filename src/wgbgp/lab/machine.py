"""Lab machines: a network namespace plus persistent mount, UTS and PID namespaces.

Inside a machine the real-host paths work unchanged: `/etc/wireguard`, `/etc/frr`,
`/etc/bird`, `/run/frr`, `/run/bird`, `/run/wireguard`, ... are private to it (bind mounts
of per-machine directories under the lab's state dir, so they are inspectable from the host), plain
`wg`, `vtysh` and `/usr/lib/frr/frrinit.sh` reach this machine's own daemons, and the
hostname is the machine's name. Apply and observe code runs unchanged through
`Machine.executor()`.

Each machine has its own PID namespace, whose first process (PID 1) is `catatonit -P`: it
only reaps the orphans that daemons leave when they fork into the background. `/proc`
inside the machine is that namespace's, so `pgrep bgpd` in one machine lists only its
own daemons and a `kill` there reaches nothing else. The namespace lives as long as its
PID 1: killing PID 1 kills every process of the machine at once (a power cut, see
`lab/power.py`), and `start_init` gives the machine a new one (it boots).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, overload

from wgbgp.apply.changes import FRR_DAEMONS
from wgbgp.lab.state import (
    LAB_ROOT,
    NETNS_DIR,
    LabState,
    lab_dir,
    namespace_pids,
    ns_inodes,
    ns_pid,
)
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

    @property
    def pid_file(self) -> Path:
        """Handle of the machine's PID namespace (replaced at every boot)."""
        return lab_dir(self.lab) / "ns" / f"{self.name}.pid"

    def host_path(self, inside: str) -> Path:
        """Where a path inside the machine (under a private dir) lives on the host."""
        if inside.startswith("/var/run/"):  # a symlink to /run on Debian
            inside = inside[len("/var"):]
        for private in sorted(PRIVATE_DIRS, key=len, reverse=True):
            if inside == private or inside.startswith(private.rstrip("/") + "/"):
                return self.root / _dirname(private) / inside[len(private):].lstrip("/")
        raise ValueError(f"{inside} is not inside one of the machine's private directories")

    def prefix(self) -> list[str]:
        """Command prefix that runs a command inside this machine.

        nsenter forks to enter the PID namespace and waits outside it, without passing on
        signals; `setpriv --pdeathsig KILL` ends the command when that nsenter dies (an
        executor's timeout kills it, `Popen.kill()` and `terminate()` reach it). To send a
        command a particular signal, use `signal_inside`."""
        return [*self.enter(), "setpriv", "--pdeathsig", "KILL", "--"]

    def enter(self) -> list[str]:
        """nsenter into every namespace of the machine (no signal handling: see prefix)."""
        return ["nsenter", f"--mount={self.mnt_file}", f"--uts={self.uts_file}",
                f"--net={self.netns_path}", f"--pid={self.pid_file}", "--"]

    def executor(self) -> LocalExecutor:
        """An executor for apply/observe code; runs every command inside the machine."""
        return LocalExecutor(self.name, prefix=self.prefix(), env=dict(MACHINE_ENV),
                             popen=MachineProcess)

    def exec(self, argv: list[str]) -> int:
        """Run a command interactively inside the machine (stdio inherited); its exit code.

        Like a shell, wgbgp ignores Ctrl-C while the command runs: the terminal delivers
        it to the command, which decides (an interactive shell or vtysh survives it).
        """
        env = {**os.environ, **MACHINE_ENV}
        # nsenter waits outside the machine's PID namespace and would die of the terminal's
        # Ctrl-C, leaving the command orphaned: it inherits an ignored SIGINT/SIGQUIT, and
        # `env --default-signal` gives the command the defaults back, as a shell does.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        quit_was = signal.signal(signal.SIGQUIT, signal.SIG_IGN)
        try:
            proc = subprocess.Popen([*self.prefix(), "env", "--default-signal=INT,QUIT",
                                     *argv], env=env, cwd="/")
            code = proc.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGQUIT, quit_was)
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
        proc = MachineProcess([*self.prefix(), *argv], env=env, cwd="/", stdout=stdout,
                              stderr=stderr, text=text)
        state = LabState.load(self.lab)
        if state is not None:
            state.record(pids=[{"pid": proc.pid, "machine": self.name, "argv": argv}])
        return proc

    def init_pid(self) -> int | None:
        """Host pid of the machine's PID 1 (its catatonit), or None when it is not running."""
        inits = [p for p in namespace_pids(ns_inodes([self.pid_file]), ("pid",))
                 if ns_pid(p) == 1]
        return inits[0] if inits else None

    def pids(self) -> list[int]:
        """Every process running in this machine (its network or mount namespace)."""
        return namespace_pids(ns_inodes([self.netns_path, self.mnt_file]))

    def exists(self) -> bool:
        return self.netns_path.exists() and self.mnt_file.exists()


class MachineProcess(subprocess.Popen):  # type: ignore[type-arg]  # str or bytes, as opened
    """A command run through `Machine.prefix()`: its signals go to the command itself.

    nsenter waits outside the PID namespace and passes no signal on. Killing it instead
    would orphan the command to the host's init, which need not reap; a zombie in a PID
    namespace keeps that namespace's PID 1 from ever finishing its exit. So
    `send_signal` (and with it `kill()` and `terminate()`) signals the command, and nsenter
    reaps it and exits with its status."""

    def send_signal(self, sig: int) -> None:
        if self.returncode is not None:
            return
        for child in _children(self.pid) or [self.pid]:  # before the fork: nsenter itself
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, sig)


def _children(pid: int) -> list[int]:
    """Direct children of a process (the command nsenter forked)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


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
                                                for p in (m.mnt_file, m.uts_file, m.pid_file)])
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
        list(pool.map(start_init, machines))
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


INIT = "catatonit"  # PID 1 of every machine: reaps orphans, ignores the rest (`-P`)


def start_init(m: Machine, timeout: float = 10) -> int:
    """Give the machine a new PID namespace with its PID 1, and its /proc; the host pid.

    `unshare --pid=FILE` pins the namespace on the machine's pid handle (in the host's
    mount namespace, where the handle lives), its child joins the machine's other
    namespaces and mounts a /proc of the new PID namespace over the machine's /proc, then
    becomes catatonit. unshare itself waits outside, and ends with it.
    """
    if _is_mountpoint(m.pid_file):  # the handle of a previous boot's (dead) namespace
        _check(["umount", str(m.pid_file)], m.name)
    m.pid_file.touch()
    # -n: libmount would leave /run/mount/utab in the fresh /run otherwise.
    script = ("umount -n -l /proc 2>/dev/null || true\n"
              "mount -n -t proc -o nosuid,nodev,noexec proc /proc\n"
              f"echo ready\nexec {INIT} -P >/dev/null 2>&1\n")
    # `setsid -f`: unshare runs detached (its own session, so a Ctrl-C meant for the
    # caller spares it) and the process we start returns at once.
    proc = subprocess.Popen(
        ["setsid", "-f", "unshare", f"--pid={m.pid_file}", "--fork", "nsenter",
         f"--mount={m.mnt_file}", f"--uts={m.uts_file}", f"--net={m.netns_path}",
         "sh", "-c", script],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    # "ready" comes once PID 1 exists: from then on nsenter --pid may fork into it.
    line = proc.stdout.readline()
    proc.stdout.close()
    proc.wait(timeout)
    if line.strip() != b"ready":
        why = proc.stderr.read().decode(errors="replace").strip()
        raise MachineError(f"machine {m.name}: its PID 1 did not start: {why or line!r}")
    proc.stderr.close()
    deadline = time.monotonic() + timeout
    while (pid := m.init_pid()) is None:
        if time.monotonic() > deadline:
            raise MachineError(f"machine {m.name}: its PID 1 did not show up")
        time.sleep(0.02)
    return pid


def _is_mountpoint(path: Path) -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        return any(line.split()[4] == str(path) for line in fh)


def _check(argv: list[str], what: str = "") -> None:
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        where = f" for machine {what}" if what else ""
        raise MachineError(f"`{' '.join(argv[:2])} ...`{where} failed: "
                           f"{(res.stderr or res.stdout).strip()}")
