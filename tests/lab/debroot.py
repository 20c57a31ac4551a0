"""A minimal Debian root (debootstrap minbase + sshd) for bootstrap tests, cached.

Built once under /var/cache/wgbgp-test from the Debian mirror apt is configured with
(about 2 minutes), with a local package repository inside it: the .deb files bootstrap
may install, downloaded once through that mirror. So a test machine installs with real
apt and dpkg, from Debian's own packages, without any traffic leaving the lab's
namespaces; reruns only copy the cached root.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from wgbgp.apply.bootstrap import CANDIDATES

CACHE = Path("/var/cache/wgbgp-test")
SUITE = "bookworm"
PRISTINE = CACHE / f"{SUITE}-minbase"
READY = ".wgbgp-ready"
REPO = "/srv/wgbgp-repo"  # inside the root


def mirror() -> str:
    """The Debian mirror apt uses on this host (deb822 or one-line sources)."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob(
            "*"))]:
        if not path.is_file():
            continue
        text = path.read_text()
        for block in re.split(r"\n\s*\n", text):
            uri = re.search(r"(?m)^URIs:\s*(\S+)", block)
            if uri and re.search(rf"(?m)^Suites:.*\b{SUITE}\b", block) and "security" not in \
                    uri.group(1):
                return uri.group(1)
        for m in re.finditer(rf"(?m)^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", text):
            if "security" not in m.group(1):
                return m.group(1)
    return "http://deb.debian.org/debian"


def _run(argv: list[str], timeout: float = 900) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=timeout)


def _packages_file(repo: Path) -> str:
    """A Packages index for the .deb files in `repo` (what dpkg-scanpackages writes)."""
    entries = []
    for deb in sorted(repo.glob("*.deb")):
        control = subprocess.run(["dpkg-deb", "-f", str(deb)], check=True,
                                 capture_output=True, text=True).stdout.rstrip("\n")
        data = deb.read_bytes()
        entries.append(f"{control}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
                       f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
    return "\n".join(entries)


def pristine_root() -> tuple[Path, float]:
    """The cached root (built now if missing) and the seconds building it took (0: cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building it
        if (PRISTINE / READY).exists():
            return PRISTINE, 0.0
        start = time.monotonic()
        build = CACHE / f"build-{os.getpid()}"
        shutil.rmtree(build, ignore_errors=True)
        _run(["debootstrap", "--variant=minbase", "--include=openssh-server", SUITE,
              str(build), mirror()])
        shutil.copy("/etc/resolv.conf", build / "etc/resolv.conf")
        _run(["chroot", str(build), "apt-get", "update", "-q"])
        _run(["chroot", str(build), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get",
              "install", "-q", "-y", "--download-only", "--no-install-recommends",
              *CANDIDATES])
        repo = build / REPO.lstrip("/")
        repo.mkdir(parents=True)
        for deb in (build / "var/cache/apt/archives").glob("*.deb"):
            shutil.move(deb, repo / deb.name)
        (repo / "Packages").write_text(_packages_file(repo))
        # A fresh machine: no package lists yet, one source (the local copy of Debian's).
        for lists in (build / "var/lib/apt/lists").glob("*"):
            if lists.is_file():
                lists.unlink()
        (build / "etc/apt/sources.list").write_text(f"deb [trusted=yes] file:{REPO} ./\n")
        for extra in (build / "etc/apt/sources.list.d").glob("*"):
            extra.unlink()
        (build / "etc/resolv.conf").unlink()
        (build / READY).write_text(f"built in {time.monotonic() - start:.0f} s\n")
        shutil.rmtree(PRISTINE, ignore_errors=True)
        build.rename(PRISTINE)
        return PRISTINE, time.monotonic() - start


def fresh_copy(name: str) -> Path:
    """A throwaway copy of the pristine root for one test (a few seconds)."""
    target = CACHE / f"run-{name}"
    shutil.rmtree(target, ignore_errors=True)
    _run(["cp", "-a", "--reflink=auto", str(PRISTINE), str(target)])
    return target
