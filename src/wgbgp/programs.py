"""Every external program wgbgp runs, and the Debian package that provides it.

One registry, so that an install step cannot go missing unnoticed: a fast test scans the
code (argv lists, shell scripts, absolute paths) for the programs it calls and fails when
one is not listed here, or when a package listed here is not installed by
`scripts/install.sh`. apply's preflight quotes it to say what to install; bootstrap can
install from it. Pure data, importable from every layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BASE_PACKAGES",
    "OPTIONAL_PACKAGES",
    "PROGRAMS",
    "SETUP_PACKAGES",
    "Program",
    "install_hint",
    "package_of",
    "packages_for",
]

Scope = Literal["machine", "lab", "tests"]


@dataclass(frozen=True)
class Program:
    """One program: its name as called (or absolute path), its package, who needs it.

    `scope`: "machine" is every machine wgbgp configures; "lab" is the host that runs a lab;
    "tests" is the test suite only. `when` says when it is needed at all, if not always.
    """

    name: str
    package: str
    scope: Scope
    when: str | None = None


def _all(package: str, scope: Scope, *names: str, when: str | None = None) -> list[Program]:
    return [Program(n, package, scope, when) for n in names]


_PROGRAMS: list[Program] = [
    *_all("wireguard-tools", "machine", "wg", "wg-quick"),
    *_all("wireguard-go", "machine", "wireguard-go", when="the kernel has no WireGuard module"),
    *_all("iproute2", "machine", "ip"),
    *_all("nftables", "machine", "nft"),
    *_all("procps", "machine", "sysctl"),
    # The lab's life events find and signal a machine's processes from inside it.
    *_all("procps", "lab", "pgrep", "ps", "kill"),
    *_all("iputils-ping", "machine", "ping"),
    *_all("frr", "machine", "vtysh", "/usr/lib/frr/frrinit.sh", "frrinit.sh",
          *(f"/usr/lib/frr/{d}" for d in ("watchfrr", "zebra", "bgpd", "staticd", "bfdd")),
          when="a machine runs FRR"),
    *_all("frr-pythontools", "machine", "/usr/lib/frr/frr-reload.py", "frr-reload.py",
          when="a machine runs FRR"),
    # On a managed machine only (frr-pythontools depends on it): tests use sys.executable.
    *_all("python3", "machine", "python3", when="a machine runs FRR"),
    *_all("bird2", "machine", "bird", "birdc", when="a machine runs BIRD"),
    *_all("systemd", "machine", "systemctl", when="the machine runs systemd (else none)"),
    *_all("coreutils", "machine", "base64", "sha256sum", "cat", "cp", "mv", "rm", "mkdir",
          "mktemp", "chmod", "chown", "date", "dirname", "id", "sort", "cut", "tr", "stat",
          "sleep", "env", "true", "timeout", "ls", "echo", "uname", "chroot",
          "wc", "readlink"),
    # `wgbgp bootstrap` installs with apt and reads dpkg's database (Debian, Ubuntu).
    *_all("apt", "machine", "apt-get", when="bootstrap installs packages"),
    *_all("sed", "machine", "sed"),
    *_all("grep", "machine", "grep"),
    *_all("mawk", "machine", "awk"),
    *_all("dash", "machine", "sh", "/bin/sh"),
    *_all("bash", "machine", "bash", "/bin/bash"),
    # The apply lock (apply/applylock.py) and the agent started without systemd.
    *_all("util-linux", "machine", "flock", "setsid"),
    *_all("diffutils", "machine", "cmp"),
    *_all("git", "machine", "git", when="the agent follows a topology in git (--source)"),
    *_all("util-linux", "lab", "nsenter", "unshare", "findmnt", "setpriv"),
    # PID 1 of every lab machine's PID namespace: reaps the orphans daemons leave.
    *_all("catatonit", "lab", "catatonit"),
    # `wgbgp lab fault nat-reset`: a carrier forgets its NAT mappings.
    *_all("conntrack", "lab", "conntrack"),
    *_all("mount", "lab", "mount", "umount"),
    *_all("openssh-server", "lab", "/usr/sbin/sshd"),
    *_all("openssh-client", "lab", "ssh-keygen"),
    *_all("graphviz", "lab", "dot", when="drawing a graph as SVG or PNG (`wgbgp graph`, "
          "`wgbgp web`)"),
    *_all("chromium", "tests", "chromium"),
    *_all("chromium-driver", "tests", "chromedriver"),
    *_all("prometheus", "tests", "promtool", "prometheus"),
    *_all("hostname", "tests", "hostname"),
    *_all("dpkg", "machine", "dpkg-query"),
    *_all("dpkg", "tests", "dpkg-deb"),
    # The bootstrap test builds a minimal Debian root (cached under /var/cache/wgbgp-test).
    *_all("debootstrap", "tests", "debootstrap"),
    # `cloud-init schema`: the tests check `render --cloud-init` output with cloud-init's
    # own validator. install.sh keeps it from ever running at boot on the test machine.
    *_all("cloud-init", "tests", "cloud-init"),
]

PROGRAMS: dict[str, Program] = {p.name: p for p in _PROGRAMS}

# Priority "required" on Debian: on every installed system (debootstrap's minbase too), so
# install.sh need not list them.
BASE_PACKAGES = frozenset({"coreutils", "util-linux", "mount", "sed", "grep", "mawk", "dash",
                           "bash", "hostname", "dpkg", "apt", "diffutils"})

# Installed by install.sh for the virtualenv itself, not for a program wgbgp runs.
SETUP_PACKAGES = frozenset({"python3", "python3-venv", "python3-pip"})

# Never installed by install.sh: wgbgp uses systemctl only where systemd already runs.
OPTIONAL_PACKAGES = frozenset({"systemd"})


def package_of(program: str) -> str:
    """The Debian package providing `program` (a name or absolute path). KeyError if unknown."""
    return PROGRAMS[program].package


def packages_for(programs: Iterable[str]) -> list[str]:
    """The packages providing `programs`, in first-seen order, without repeats."""
    return list(dict.fromkeys(package_of(p) for p in programs))


def install_hint(programs: Iterable[str]) -> str:
    """'install frr-pythontools' style advice for missing programs, packages in order."""
    return "install " + " and ".join(packages_for(programs))
