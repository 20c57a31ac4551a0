"""A lab's state file: the record of everything the lab created, and teardown from it.

`up` records each namespace, mount and directory *before* creating it, so `down` can
remove a lab after a crash or a killed `up` by reading the file alone. Teardown only
touches what the file names: the host's own namespace, routes and firewall are never
changed, and another lab's resources are never named in this lab's file.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from wgbgp.lab.spec import LAB_NAME

LAB_ROOT = Path(os.environ.get("WGBGP_LAB_ROOT", "/run/wgbgp"))
NETNS_DIR = Path("/run/netns")  # where `ip netns add` pins network namespaces
STATE_VERSION = 1


class PidRecord(TypedDict):
    """A process started inside a lab machine (`Machine.spawn`)."""

    pid: int
    machine: str
    argv: list[str]


class LabExists(Exception):
    """A lab of that name is already running (or left over from a crash)."""


def lab_dir(lab: str) -> Path:
    """The lab's private directory (state file, machine dirs, namespace handles)."""
    # The name becomes a path that teardown removes: never let it climb out of LAB_ROOT.
    if not LAB_NAME.match(lab):
        raise ValueError(f"invalid lab name {lab!r}: use lowercase letters, digits and '-'")
    return LAB_ROOT / lab


def state_path(lab: str) -> Path:
    return lab_dir(lab) / "state.json"


@dataclass
class LabState:
    """Everything one lab created. Lists only grow while the lab is built."""

    lab: str
    status: str = "building"  # building -> up -> tearing-down
    created: float = field(default_factory=time.time)
    spec: dict[str, Any] = field(default_factory=dict)  # LabSpec.to_dict(): rebuilds the plan
    options: dict[str, bool] = field(default_factory=dict)  # e.g. {"mgmt": true}
    namespaces: list[str] = field(default_factory=list)  # network namespaces (/run/netns)
    ns_files: list[str] = field(default_factory=list)    # nsfs bind mounts (mnt/uts handles)
    mounts: list[str] = field(default_factory=list)      # other host-side mounts
    pids: list[PidRecord] = field(default_factory=list)  # processes started, for the record
    # What life events changed (lab/life.py): "roams" {client: uplink}, "nat" {carrier: epoch}.
    life: dict[str, Any] = field(default_factory=dict)
    version: int = STATE_VERSION

    @classmethod
    def create(cls, lab: str, *, spec: dict[str, Any] | None = None,
               options: dict[str, bool] | None = None) -> LabState:
        """Claim the lab's directory atomically and write the first state.

        Raises LabExists when the directory is already there: `mkdir` is the lock that
        stops two `up`s of the same lab from racing.
        """
        LAB_ROOT.mkdir(parents=True, exist_ok=True)
        try:
            lab_dir(lab).mkdir(mode=0o755)
        except FileExistsError:
            running = is_running(lab)
            what = "is already running" if running else "left state behind (crashed?)"
            raise LabExists(
                f"lab {lab!r} {what}: {lab_dir(lab)}. Run `wgbgp lab down` first, "
                "or pick another lab name.") from None
        state = cls(lab=lab, spec=spec if spec is not None else {},
                    options=options if options is not None else {})
        state.save()
        return state

    @classmethod
    def load(cls, lab: str) -> LabState | None:
        """The recorded state, or None when the lab has no state file."""
        try:
            data = json.loads(state_path(lab).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self) -> None:
        """Write atomically: a reader (or a crash) never sees half a file."""
        with _locked(self.lab):
            self._write()

    def _write(self) -> None:
        path = state_path(self.lab)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state.")
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh, indent=1)
        os.replace(tmp, path)

    def record(self, *, namespaces: Sequence[str] = (), ns_files: Sequence[str] = (),
               mounts: Sequence[str] = (), pids: Sequence[PidRecord] = ()) -> None:
        """Append to the named lists (e.g. namespaces=[...]) and save, before creating them.

        Merges with the file under a lock, so threads and other processes (e.g. `lab exec`
        spawning a daemon during `up`) never lose each other's entries.
        """
        items: dict[str, Sequence[str] | Sequence[PidRecord]] = {
            "namespaces": namespaces, "ns_files": ns_files, "mounts": mounts, "pids": pids}
        with _locked(self.lab):
            disk = LabState.load(self.lab)
            for key, added in items.items():
                current = getattr(self, key)
                merged = list(getattr(disk, key)) if disk else []
                merged += [v for v in current + list(added) if v not in merged]
                setattr(self, key, merged)
            self._write()

    def set_life(self, key: str, value: Any) -> None:
        """Set one entry of `life` and save, merged with the file under the lock."""
        with _locked(self.lab):
            disk = LabState.load(self.lab)
            if disk is not None:
                self.life = dict(disk.life)
            self.life[key] = value
            self._write()

    def set_status(self, status: str) -> None:
        self.status = status
        self.save()


@contextmanager
def _locked(lab: str) -> Iterator[None]:
    """Exclusive lock on the lab's state (threads and processes alike)."""
    with open(lab_dir(lab) / "state.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def list_labs() -> list[str]:
    """Names of labs that have a state directory on this machine."""
    if not LAB_ROOT.is_dir():
        return []
    return sorted(p.name for p in LAB_ROOT.iterdir() if (p / "state.json").exists())


def is_running(lab: str) -> bool:
    """True when the lab's state exists and at least one of its namespaces is alive."""
    state = LabState.load(lab)
    return state is not None and any((NETNS_DIR / ns).exists() for ns in state.namespaces)


@dataclass
class TeardownReport:
    """What teardown removed (for the CLI to print)."""

    lab: str
    killed: list[int] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    unmounted: list[str] = field(default_factory=list)
    removed_dir: bool = False


def teardown(lab: str, grace: float = 2.0) -> TeardownReport:
    """Remove everything lab `lab` created. Idempotent; safe after a crash.

    Order matters: processes first (they pin namespaces and mounts), then the
    namespace handles, then the network namespaces, then the directory.
    """
    report = TeardownReport(lab)
    state = LabState.load(lab)
    directory = lab_dir(lab)
    if state is None and not directory.exists():
        return report
    if state is not None:
        state.status = "tearing-down"
        with suppress(OSError):
            state.save()
        netns_paths = [NETNS_DIR / ns for ns in state.namespaces]
        report.killed = kill_namespace_processes([*netns_paths, *map(Path, state.ns_files)],
                                                 grace)
        report.unmounted = _unmount([*state.ns_files, *reversed(state.mounts)])
        report.namespaces = _delete_netns(state.namespaces)
    # Anything still mounted below the lab dir (a crash mid-mount) must go before rmtree,
    # which would otherwise descend into the mounted file system.
    report.unmounted += _unmount(_mounts_under(directory))
    if directory.exists():
        if _mounts_under(directory):
            raise RuntimeError(f"{directory} still has mounts; not removing it")
        shutil.rmtree(directory, ignore_errors=True)
        report.removed_dir = not directory.exists()
    return report


def ns_inodes(handles: list[Path]) -> set[int]:
    """Inodes of those handles that are live namespace bind mounts (nsfs files)."""
    nsfs = os.stat("/proc/self/ns/net").st_dev
    inodes = set()
    for path in handles:
        try:
            st = path.stat()
        except OSError:
            continue
        if st.st_dev == nsfs:  # an unmounted handle is a plain empty file: skip it
            inodes.add(st.st_ino)
    return inodes


def namespace_pids(inodes: set[int], kinds: tuple[str, ...] = ("net", "mnt")) -> list[int]:
    """Pids of processes whose namespace of one of `kinds` has one of these inodes."""
    if not inodes:
        return []
    me = os.getpid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        for kind in kinds:
            try:
                link = os.readlink(f"/proc/{entry.name}/ns/{kind}")  # e.g. "net:[4026532177]"
            except OSError:
                break  # gone, a zombie, or a kernel thread
            if int(link[link.index("[") + 1:-1]) in inodes:
                found.append(int(entry.name))
                break
    return found


def kill_pid_namespaces(handles: list[Path], timeout: float = 5.0) -> list[int]:
    """KILL the PID 1 of every PID namespace among `handles`; wait until each is empty.

    The kernel then kills every process inside at once, and the nsenters waiting outside
    reap their commands before they exit. Killed in any other order, a command whose
    nsenter died first is orphaned to the host's init, which need not reap it, and the
    namespace's PID 1 waits for that zombie forever."""
    inodes = ns_inodes(handles)
    inits = [p for p in namespace_pids(inodes, ("pid",)) if ns_pid(p) == 1]
    for pid in inits:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while namespace_pids(inodes, ("pid",)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return inits


def ns_pid(pid: int) -> int:
    """A process's pid inside its own PID namespace (the last NSpid field), 0 if gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except OSError:
        return 0
    return pid


def kill_namespace_processes(handles: list[Path], grace: float = 2.0) -> list[int]:
    """Every machine's PID 1 first (see kill_pid_namespaces), then TERM every process in
    these namespaces, then KILL the ones still there after `grace`."""
    inodes = ns_inodes(handles)
    # Everything there now is ended below: directly, or with its namespace's PID 1.
    killed = namespace_pids(inodes)
    kill_pid_namespaces(handles)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        pids = namespace_pids(inodes)
        for pid in pids:
            try:
                os.kill(pid, sig)
                killed.append(pid)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = namespace_pids(inodes)
        if not pids:
            break
    return sorted(set(killed))


def _mountinfo() -> list[str]:
    """Mount points of this mount namespace, in mount order."""
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        # Field 5 is the mount point; octal escapes (\040) only for odd names we never make.
        return [line.split()[4] for line in fh]


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory).rstrip("/") + "/"
    return [m for m in _mountinfo() if m == str(directory) or m.startswith(prefix)]


def _unmount(paths: list[str]) -> list[str]:
    """Unmount those of `paths` that are mount points, deepest first."""
    mounted = set(_mountinfo())
    todo = sorted({p for p in paths if p in mounted}, key=lambda p: -p.count("/"))
    done = []
    for p in todo:
        # A path can be mounted several times over; unmount until it is not.
        while p in _mountinfo():
            res = subprocess.run(["umount", p], capture_output=True, text=True)
            if res.returncode != 0:
                # Busy only if something outside our namespaces uses it; detach lazily.
                res = subprocess.run(["umount", "-l", p], capture_output=True, text=True)
                if res.returncode != 0:
                    break
        done.append(p)
    return done


def _delete_netns(names: list[str]) -> list[str]:
    existing = [n for n in names if (NETNS_DIR / n).exists()]
    if existing:
        # -force: keep going past a namespace that vanished meanwhile.
        script = "".join(f"netns del {n}\n" for n in existing)
        subprocess.run(["ip", "-force", "-batch", "-"], input=script, text=True,
                       capture_output=True)
    return existing
